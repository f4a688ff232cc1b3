"""JAX adapter of divweights: reweighted cross-entropy, weighted mixup, schedules.

Thin, pure functions around the framework-free core :mod:`divweights`:

* :func:`reweighted_loss` -- CIW / CICW loss ``sum_i w_i l~_i`` with the
  weights held constant; ``jit``/``grad``/``vmap``-safe, data-parallel via
  ``axis_name``.
* :func:`weighted_mixup` -- plain, weight-sampled and weight-ratio mixup
  (CIW-M, CICW-M) with an explicit PRNG key.
* :func:`anneal_factor`, :func:`scaled_strength` -- burn-in and linear
  annealing of the reweighting strength with traced values (no recompilation).
* :mod:`divweights_jax.baselines` -- the robust losses the method is compared
  with: bi-tempered logistic loss, NCE+RCE, generalized and symmetric
  cross-entropy (per-example losses).

Examples
--------
>>> import jax.numpy as jnp
>>> from divweights_jax import reweighted_loss
>>> loss, aux = reweighted_loss(jnp.zeros((4, 3)), jnp.array([0, 1, 2, 0]))
>>> round(float(loss), 4), [round(float(w), 2) for w in aux["weights"]]
(1.0986, [0.25, 0.25, 0.25, 0.25])
"""

from .loss import DEFAULT_DELTA, reweighted_loss
from .mixup import MIXUP_MODES, weighted_mixup
from .schedule import anneal_factor, scaled_strength

__all__ = [
    "DEFAULT_DELTA",
    "MIXUP_MODES",
    "anneal_factor",
    "reweighted_loss",
    "scaled_strength",
    "weighted_mixup",
]
