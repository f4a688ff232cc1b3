r"""Weighted mixup for JAX (CIW-M and CICW-M).

Mixup replaces each example :math:`(x_i, y_i)` by
:math:`(r_i x_i + (1 - r_i) x_j,\; r_i y_i + (1 - r_i) y_j)` for a partner
:math:`j = \pi(i)`.  The weighted variants use the instance weights of the
batch to choose partners (heavier examples are picked more often) and/or to
set the ratio (:math:`r_i \sim \mathrm{Beta}(2\alpha\rho_i, 2\alpha(1 - \rho_i))`
with mean :math:`\rho_i = w_i / (w_i + w_j)`, so the mixed example leans
towards the more trusted one; ``weight_ratio="deterministic"`` takes
:math:`r_i = \rho_i`, the published code's rule).  Formulas come from :mod:`divweights.mixup`;
this module adds the randomness, with an explicit PRNG key.
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

from divweights import mixup as core
from divweights.mixup import MIXUP_MODES, WEIGHT_RATIOS

from .loss import _is_concrete

__all__ = ["MIXUP_MODES", "WEIGHT_RATIOS", "weighted_mixup"]

_SAMPLED = ("sample", "sample_weight")
_WEIGHT_RATIO = ("weight", "sample_weight")


def _labels(targets, n, num_classes, dtype):
    targets = jnp.asarray(targets)
    if jnp.issubdtype(targets.dtype, jnp.integer):
        if num_classes is None:
            raise ValueError("num_classes is required with integer targets")
        if targets.shape != (n,):
            raise ValueError(f"integer targets must have shape ({n},); got {targets.shape}")
        if _is_concrete(targets):
            concrete = np.asarray(targets)
            lo, hi = int(concrete.min()), int(concrete.max())
            if lo < 0 or hi >= num_classes:
                raise ValueError(
                    f"integer targets must lie in [0, {num_classes}) for num_classes={num_classes}; "
                    f"got values in [{lo}, {hi}]"
                )
        return jax.nn.one_hot(targets, num_classes, dtype=dtype)
    if jnp.issubdtype(targets.dtype, jnp.floating):
        if targets.ndim != 2 or targets.shape[0] != n:
            raise ValueError(f"probability targets must have shape ({n}, k); got {targets.shape}")
        if num_classes is not None and targets.shape[1] != num_classes:
            raise ValueError(f"targets have {targets.shape[1]} classes but num_classes={num_classes}")
        return targets.astype(dtype)
    raise TypeError(f"targets must be integer labels or floating probabilities; got dtype {targets.dtype}")


def _run_checks(targets, weights, k):
    check = checkify.check
    if jnp.issubdtype(targets.dtype, jnp.integer):
        lo, hi = jnp.min(targets), jnp.max(targets)
        check(
            (lo >= 0) & (hi < k),
            f"integer targets must lie in [0, {k}) for num_classes={k}; got values in [{{lo}}, {{hi}}]",
            lo=lo,
            hi=hi,
        )
    bad = ~(jnp.isfinite(weights) & (weights >= 0))
    first = jnp.argmax(bad)
    check(~jnp.any(bad), "weights must be finite and nonnegative; weight {i} is {w}", i=first, w=weights[first])


def weighted_mixup(
    key,
    inputs,
    targets,
    weights,
    *,
    mode,
    num_classes=None,
    power=1.0,
    alpha=1.0,
    predictions=None,
    checked=False,
    weight_ratio="beta",
    smoothing_floor=0.0,
):
    r"""Mix a batch with partners and ratios chosen from instance weights.

    =====================  ===========================================  ====================================
    ``mode``               partner :math:`j = \pi(i)`                    ratio :math:`r_i`
    =====================  ===========================================  ====================================
    ``"plain"``            random permutation                           :math:`\mathrm{Beta}(\alpha,\alpha)`
    ``"sample"``           i.i.d., :math:`P(j) \propto w_j^{p}`         :math:`\mathrm{Beta}(\alpha,\alpha)`
    ``"weight"``           random permutation                           :math:`\mathrm{Beta}(2\alpha\rho_i, 2\alpha(1-\rho_i))`
    ``"sample_weight"``    i.i.d., :math:`P(j) \propto w_j^{p}`         :math:`\mathrm{Beta}(2\alpha\rho_i, 2\alpha(1-\rho_i))` (CICW-M)
    ``"label_smoothing"``  random permutation                           :math:`\mathrm{Beta}(\alpha,\alpha)` (CIW-M)
    =====================  ===========================================  ====================================

    In ``"label_smoothing"`` mode each label is first pulled towards the
    predicted class by its relative weight :math:`s_i = w_i / \max_j w_j`:
    :math:`y_i \leftarrow s_i y_i + (1 - s_i)\,e_{\arg\max_c \hat p_{ic}}`,
    then plain mixup is applied.  Inputs and labels always share the ratio.
    The weighted ratio has mean :math:`\rho_i = w_i / (w_i + w_{\pi(i)})`
    (:math:`1/2` when both weights are zero, never 0/0), is plain mixup's
    :math:`\mathrm{Beta}(\alpha, \alpha)` at equal weights, and is exactly 1
    against a partner of weight zero
    (:func:`divweights.mixup.weighted_beta_parameters`).

    Parameters
    ----------
    key : jax PRNG key
        Source of randomness (split internally).
    inputs : float array, shape (n, ...)
    targets : array
        Integer labels ``(n,)`` (``num_classes`` required) or probabilities
        ``(n, k)``.
    weights : array, shape (n,)
        Nonnegative instance weights, e.g. ``aux["weights"]`` from
        :func:`~divweights_jax.reweighted_loss`; only their ratios matter.
        Treated as constants (no gradient).
    mode : str
        One of :data:`divweights.mixup.MIXUP_MODES` (re-exported here).
    num_classes : int, optional
        Number of classes for integer targets.
    power : float, default 1.0
        Exponent :math:`p` of the partner distribution (sampled modes).
    alpha : float, default 1.0
        Concentration :math:`\alpha` of the ratios: ``Beta(alpha, alpha)`` in
        ``"plain"``, ``"sample"`` and ``"label_smoothing"``,
        :math:`\mathrm{Beta}(2\alpha\rho_i, 2\alpha(1 - \rho_i))` in
        ``"weight"`` and ``"sample_weight"`` (unused with
        ``weight_ratio="deterministic"``).
    predictions : array, shape (n, k), optional
        Logits or probabilities of the model; required for
        ``"label_smoothing"`` (only the argmax is used).
    checked : bool, default False
        Also check traced values with :func:`jax.experimental.checkify.check`:
        integer targets in ``[0, num_classes)`` and weights finite and
        nonnegative.  Without it these value checks run only for concrete
        host arrays (not under ``jit``): an out-of-range traced label
        silently becomes an all-zero label row, a negative or NaN weight
        gives meaningless partners.  Wrap the caller in
        :func:`checkify.checkify <jax.experimental.checkify.checkify>` as for
        :func:`~divweights_jax.reweighted_loss`.
    weight_ratio : {"beta", "deterministic"}, default "beta"
        Ratio of ``"weight"`` and ``"sample_weight"``
        (:data:`divweights.mixup.WEIGHT_RATIOS`): ``"beta"`` draws it from the
        weighted Beta above; ``"deterministic"`` is the published code's
        :math:`r_i = \rho_i`, :math:`\approx 1/2` for near-uniform weights
        (every input a midpoint of two examples: CICW-M fell to chance with
        it on two-moons).  Ignored by the other modes.
    smoothing_floor : float, default 0.0
        Least kept share :math:`f` of each label in ``"label_smoothing"``
        (:math:`s_i = \max(w_i / \max_j w_j, f)`, see
        :func:`divweights.mixup.stable_label_share`); ``0``: the published rule.

    Returns
    -------
    mixed_inputs : array, shape and dtype of ``inputs``
    mixed_targets : array, shape (n, k)
        Probabilities.
    info : dict
        The keys of the PyTorch adapter: ``'partners'`` (n,) int indices
        :math:`\pi(i)`, ``'ratios'`` (n,) :math:`r_i`, and for
        ``"label_smoothing"`` also ``'smoothing'`` (n,) the per-example
        smoothing amount :math:`s_i` and ``'smoothed_targets'`` (n, k) the
        smoothed labels before mixing.  ``'ratio'`` is the same array as
        ``'ratios'``, kept for one release (deprecated; it will be removed,
        no warning is emitted since ``info`` is a plain dict that must stay
        a JAX pytree).

    Notes
    -----
    Padded rows (``mask`` in :func:`~divweights_jax.reweighted_loss`) have
    weight zero, so the sampled modes never pick them as partners and the
    weight ratio never mixes them in; the permutation modes with a Beta
    ratio (``"plain"``, ``"label_smoothing"``) can, so drop padding first.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from divweights_jax import weighted_mixup
    >>> x = jnp.array([[1.0], [2.0], [3.0], [4.0]])
    >>> y = jnp.array([0, 1, 0, 1])
    >>> w = jnp.array([0.4, 0.4, 0.2, 0.0])
    >>> xm, ym, info = weighted_mixup(jax.random.key(0), x, y, w,
    ...                               mode="sample_weight", num_classes=2)
    >>> bool(jnp.all(info["partners"] != 3))  # weight-0 examples are never partners
    True
    >>> bool(jnp.allclose(ym.sum(-1), 1.0)) and xm.shape == x.shape
    True
    >>> _, _, info = weighted_mixup(jax.random.key(0), x, y, w, mode="sample_weight",
    ...                             num_classes=2, weight_ratio="deterministic")
    >>> bool(jnp.allclose(info["ratios"], w / (w + w[info["partners"]])))
    True
    """
    if mode not in MIXUP_MODES:
        raise ValueError(f"mode must be one of {MIXUP_MODES}; got {mode!r}")
    if weight_ratio not in WEIGHT_RATIOS:
        raise ValueError(f"weight_ratio must be one of {WEIGHT_RATIOS}; got {weight_ratio!r}")
    for name, value in (("power", power), ("alpha", alpha)):
        if isinstance(value, numbers.Real) and not value > 0:
            raise ValueError(f"{name} must be > 0; got {value!r}")
    inputs = jnp.asarray(inputs)
    if inputs.ndim < 1:
        raise ValueError("inputs must have a leading batch axis")
    if not jnp.issubdtype(inputs.dtype, jnp.floating):
        raise TypeError(f"inputs must be floating (convert images to float first); got dtype {inputs.dtype}")
    n = inputs.shape[0]
    if n == 0:
        raise ValueError("cannot mix an empty batch")
    weights = jax.lax.stop_gradient(jnp.asarray(weights))
    if weights.shape != (n,):
        raise ValueError(f"weights must have shape ({n},); got {weights.shape}")
    dtype = jnp.promote_types(inputs.dtype, jnp.float32)
    weights = weights.astype(dtype)
    y = _labels(targets, n, num_classes, dtype)
    if checked:
        _run_checks(jnp.asarray(targets), weights, y.shape[1])

    info = {}
    if mode == "label_smoothing":
        if predictions is None:
            raise ValueError('mode="label_smoothing" needs predictions (logits or probabilities of shape (n, k))')
        predictions = jnp.asarray(predictions)
        if predictions.shape != y.shape:
            raise ValueError(f"predictions must have shape {y.shape}; got {predictions.shape}")
        # the CIW-M rule lives in the core (divweights.mixup), shared with the torch adapter
        info["smoothing"] = core.smoothing_factors(weights, floor=smoothing_floor)
        y = core.smooth_targets(y, weights, predictions, floor=smoothing_floor)
        info["smoothed_targets"] = y

    key_partner, key_ratio = jax.random.split(key)
    if mode in _SAMPLED:
        p = core.partner_probabilities(weights, power=power)
        partners = jax.random.choice(key_partner, n, shape=(n,), replace=True, p=p)
    else:
        partners = jax.random.permutation(key_partner, n)

    if mode in _WEIGHT_RATIO and weight_ratio == "deterministic":
        ratio = core.mixup_ratio(weights, weights[partners]).astype(dtype)
    elif mode in _WEIGHT_RATIO:
        a, b = core.weighted_beta_parameters(weights, weights[partners], alpha)
        # Beta(a, 0) is the point mass at 1 and Beta(0, b) the one at 0: draw with a positive floor, pin them
        tiny = jnp.finfo(dtype).tiny
        draw = jax.random.beta(key_ratio, jnp.maximum(a, tiny), jnp.maximum(b, tiny), dtype=dtype)
        ratio = jnp.where(a <= 0, 0.0, jnp.where(b <= 0, 1.0, draw)).astype(dtype)  # NaN shapes stay NaN
    else:
        ratio = jax.random.beta(key_ratio, alpha, alpha, shape=(n,), dtype=dtype)

    r_x = ratio.reshape((n,) + (1,) * (inputs.ndim - 1)).astype(inputs.dtype)
    mixed_inputs = r_x * inputs + (1 - r_x) * inputs[partners]
    mixed_targets = ratio[:, None] * y + (1 - ratio[:, None]) * y[partners]
    info["partners"] = partners
    info["ratios"] = ratio
    info["ratio"] = ratio  # deprecated alias of "ratios", removed in the next release
    return mixed_inputs, mixed_targets, info
