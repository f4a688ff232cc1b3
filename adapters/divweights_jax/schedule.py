r"""Burn-in and annealing of the reweighting strength, safe under ``jax.jit``.

The published training recipe uses uniform weights (and no class
reweighting) for a burn-in period, then starts the reweighting ``start_factor``
times weaker than the target and anneals it linearly to the target strength.
Both functions here return arrays computed with ``jnp.where``, so the step
counter can be a traced value and a jitted training step compiles once for
the whole run (burn-in, annealing and after): no Python number that changes
from step to step is baked into the compiled graph.

This is the single JAX implementation of the schedule: JAX training loops
(the training program's JAX backend included) call
``scaled_strength(*anneal_factor(step, ...), lam=...)`` inside their jitted
step.  The names and signatures of :func:`anneal_factor` and
:func:`scaled_strength` are stable.  The factor is the one of the PyTorch
adapter's ``AnnealSchedule`` (tested against it).

Examples
--------
A jitted step that takes the step counter as an argument traces once:

>>> import jax, jax.numpy as jnp
>>> from divweights_jax import anneal_factor, reweighted_loss, scaled_strength
>>> @jax.jit
... def loss_at(step, logits, labels):
...     kw = scaled_strength(*anneal_factor(step, burnin_steps=2, anneal_steps=3), temperature=0.5)
...     return reweighted_loss(logits, labels, **kw)[0]
>>> z, y = jnp.zeros((4, 3)), jnp.array([0, 1, 2, 0])
>>> [round(float(loss_at(t, z, y)), 4) for t in range(6)]
[1.0986, 1.0986, 1.0986, 1.0986, 1.0986, 1.0986]
>>> loss_at._cache_size()
1
"""

from __future__ import annotations

import numbers

import jax.numpy as jnp

from divweights.strength import KINDS, OFF, Strength

__all__ = ["anneal_factor", "scaled_strength"]

_OFF = OFF  # "infinitely weak" lam / temperature during the burn-in (see divweights.strength.OFF)


def _check_nonnegative(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__}")
    if not value >= 0:
        raise ValueError(f"{name} must be >= 0; got {value!r}")


def anneal_factor(step, *, burnin_steps, anneal_steps, start_factor=10.0):
    r"""Weakening factor of the reweighting at ``step``, and whether it is on.

    ``active`` is ``False`` while ``step < burnin_steps``.  From
    ``burnin_steps`` on, ``factor`` decreases linearly from ``start_factor`` to
    ``1`` over ``anneal_steps`` steps, then stays at ``1``.  Apply it with
    :func:`scaled_strength`: temperatures and ``lam`` are multiplied by the
    factor, ``delta`` is divided by it.

    Parameters
    ----------
    step : int or 0-d array
        Current optimisation step (may be traced: pass it as an argument of
        the jitted step, not as a closure constant).
    burnin_steps, anneal_steps : int
        Lengths of the two phases, ``>= 0`` (``anneal_steps = 0``: no
        annealing).
    start_factor : float, default 10.0
        Factor at the first active step, finite and ``> 0`` (``> 1`` for a
        weaker start).

    Returns
    -------
    factor : 0-d float32 array
    active : 0-d bool array

    Examples
    --------
    >>> from divweights_jax import anneal_factor
    >>> for step in (0, 100, 150, 200, 300):
    ...     f, on = anneal_factor(step, burnin_steps=100, anneal_steps=100)
    ...     print(step, bool(on), round(float(f), 2))
    0 False 10.0
    100 True 10.0
    150 True 5.5
    200 True 1.0
    300 True 1.0
    """
    _check_nonnegative("burnin_steps", burnin_steps)
    _check_nonnegative("anneal_steps", anneal_steps)
    _check_nonnegative("start_factor", start_factor)
    if not 0 < start_factor < float("inf"):
        raise ValueError(f"start_factor must be finite and > 0; got {start_factor!r}")
    step = jnp.asarray(step)
    active = step >= burnin_steps
    if anneal_steps == 0:
        return jnp.ones((), jnp.float32), active
    # clip before converting: an integer step stays exact however long the run
    since = jnp.clip(step - burnin_steps, 0, anneal_steps).astype(jnp.float32)
    factor = start_factor + (1.0 - start_factor) * (since / anneal_steps)
    return factor.astype(jnp.float32), active


def scaled_strength(factor, active=True, *, lam=None, delta=None, temperature=None, gamma=None):
    r"""Keyword arguments for :func:`~divweights_jax.reweighted_loss` at a given factor.

    Scales exactly one of ``temperature`` (``* factor``), ``lam``
    (``* factor``) or ``delta`` (``/ factor``) with
    :meth:`divweights.Strength.scaled`, the rule shared with the PyTorch
    adapter.  Where ``active`` is ``False`` the strength is switched off,
    giving uniform weights: ``temperature`` and ``lam`` become ``1e30``
    (effectively infinite),
    ``delta`` becomes ``0``, and ``gamma`` (if given; it is not annealed)
    becomes ``0``.

    Parameters
    ----------
    factor : float or 0-d array
        From :func:`anneal_factor`.
    active : bool or 0-d bool array, default True
        From :func:`anneal_factor`.
    lam, delta, temperature : float or 0-d array
        Exactly one: the target strength.
    gamma : float or 0-d array, optional
        Radius of the class constraint, switched off during burn-in.

    Returns
    -------
    dict
        Float32 0-d arrays (traced under ``jit``), to be passed as
        ``**kwargs`` to :func:`~divweights_jax.reweighted_loss`.

    Raises
    ------
    ValueError
        Not exactly one strength, or a strength out of range (checked when
        its value is known, as in :class:`divweights.Strength`).

    Examples
    --------
    >>> from divweights_jax import anneal_factor, scaled_strength
    >>> factor, active = anneal_factor(150, burnin_steps=100, anneal_steps=100)
    >>> kw = scaled_strength(factor, active, temperature=0.1, gamma=0.2)
    >>> sorted(kw), round(float(kw["temperature"]), 3), round(float(kw["gamma"]), 3)
    (['gamma', 'temperature'], 0.55, 0.2)
    >>> kw = scaled_strength(*anneal_factor(0, burnin_steps=100, anneal_steps=100), delta=0.5)
    >>> float(kw["delta"])
    0.0
    """
    given = {k: v for k, v in zip(KINDS, (lam, delta, temperature)) if v is not None}
    if len(given) != 1:
        names = " and ".join(given) if given else "none"
        raise ValueError(f"exactly one of lam, delta, temperature must be given; got {names}")
    ((kind, value),) = given.items()
    factor = jnp.asarray(factor, dtype=jnp.float32)
    active = jnp.asarray(active, dtype=bool)
    # the core's Strength holds the rule (lam, temperature * factor; delta / factor; "off" values)
    out = Strength(kind, jnp.asarray(value, dtype=jnp.float32)).scaled(factor, active).as_kwargs()
    if gamma is not None:
        out["gamma"] = jnp.where(active, jnp.asarray(gamma, dtype=jnp.float32), 0.0)
    return out
