r"""Framework-free formulas of weighted mixup (CIW-M and CICW-M), shared by the adapters.

Mixup replaces each example :math:`(x_i, y_i)` of a batch by
:math:`(r_i x_i + (1 - r_i) x_j,\; r_i y_i + (1 - r_i) y_j)` for a partner
:math:`j = \pi(i)`.  The weighted variants use the instance weights
:math:`w` of the batch (from :func:`~divweights.instance_weights`):

=====================  ===============================================  ====================================
mode                   partners :math:`\pi(i)`                          ratio :math:`r_i`
=====================  ===============================================  ====================================
``"plain"``            random permutation                               :math:`\mathrm{Beta}(\alpha, \alpha)`
``"sample"``           i.i.d., :math:`P(j) \propto w_j^{p}`             :math:`\mathrm{Beta}(\alpha, \alpha)`
``"weight"``           random permutation                               :math:`w_i / (w_i + w_j)`
``"sample_weight"``    i.i.d., :math:`P(j) \propto w_j^{p}` (CICW-M)    :math:`w_i / (w_i + w_j)`
``"label_smoothing"``  random permutation, after smoothing (CIW-M)      :math:`\mathrm{Beta}(\alpha, \alpha)`
=====================  ===============================================  ====================================

The modes are :data:`MIXUP_MODES`.  This module holds the formulas, safe at
zero weights: the partner distribution (:func:`partner_probabilities`), the
ratio (:func:`mixup_ratio`) and the CIW-M label smoothing
(:func:`smoothing_factors`, :func:`smooth_targets`).  Drawing the partners
and the Beta ratios needs a random generator and lives in the adapters
(``divweights_torch.weighted_mixup``, ``divweights_jax.weighted_mixup``).

Every function takes arrays of one array-API library, returns arrays of that
library, and treats its inputs as constants (no gradient flows back).

Validation: weights must be finite and nonnegative.  These functions run
in every training step, so the check reads values only where that is free:
NumPy (and array-api-strict) arrays and concrete JAX arrays in host memory.
It is skipped under ``jax.jit``, on accelerators, and for torch tensors (the
torch adapter's step makes no host reads); there a row with a NaN weight
gives NaN (never a silently uniform distribution), an infinite weight gives
NaN, and ``torch.multinomial`` / ``jax.random.choice`` receive NaN
probabilities.  Validate weights yourself before the step if they come from
outside :func:`~divweights.instance_weights`.
"""

from __future__ import annotations

import math

from ._array import check_scalar, prepare, quiet
from ._inputs import check_values, detach, same_library

__all__ = ["MIXUP_MODES", "mixup_ratio", "partner_probabilities", "smooth_targets", "smoothing_factors"]

#: The weighted-mixup modes of both adapters (see the table above).
MIXUP_MODES: tuple[str, ...] = ("plain", "sample", "weight", "sample_weight", "label_smoothing")


def _nan_rows(xp, x, out):
    """Rows of ``x`` holding a NaN give all-NaN rows of ``out``."""
    bad = xp.any(xp.isnan(x), axis=-1, keepdims=True)
    return xp.where(bad, xp.full_like(out, math.nan), out)


def mixup_ratio(w_i, w_j):
    r"""Mixing ratio :math:`r = w_i / (w_i + w_j)`; :math:`1/2` when both weights are zero.

    Parameters
    ----------
    w_i, w_j : array
        Nonnegative finite weights of the examples and of their partners
        (broadcastable, same array library).

    Returns
    -------
    ratio : array
        In :math:`[0, 1]`, in the namespace and dtype of ``w_i`` (integers
        promoted to the default floating dtype).

    Raises
    ------
    ValueError
        A NaN, infinite or negative weight (checked eagerly only).
    TypeError
        ``w_j`` from another array library than ``w_i``.

    Examples
    --------
    >>> import numpy as np
    >>> from divweights.mixup import mixup_ratio
    >>> mixup_ratio(np.array([0.3, 0.0, 0.0]), np.array([0.1, 0.0, 0.2]))
    array([0.75, 0.5 , 0.  ])
    """
    a, work = prepare(detach(w_i), "w_i", min_ndim=0)
    xp = work.xp
    b = detach(same_library(xp, w_j, "w_j", w_i, "w_i"))
    b = xp.astype(b, work.dtype)
    check_values(xp, a, "w_i", hot=True)
    check_values(xp, b, "w_j", hot=True)
    total = a + b
    pos = total > 0
    ratio = xp.where(pos, a / xp.where(pos, total, xp.ones_like(total)), xp.full_like(total, 0.5))
    return work.finish(ratio)


def partner_probabilities(weights, power: float = 1.0):
    r"""Sampling distribution :math:`P(j) \propto w_j^{p}` over the last axis.

    Parameters
    ----------
    weights : array, shape (..., n)
        Nonnegative finite instance weights; only their ratios matter.
    power : float or 0-d array, default 1.0
        Exponent :math:`p`, finite and ``> 0`` (larger: partners concentrate
        on the heaviest examples).

    Returns
    -------
    probs : array, shape (..., n)
        On the simplex along the last axis; uniform where all weights are
        zero; NaN rows where a weight is NaN (only reachable under tracing).

    Raises
    ------
    ValueError
        ``power`` not finite and ``> 0``; a NaN, infinite or negative weight
        (checked eagerly only).

    Examples
    --------
    >>> import numpy as np
    >>> from divweights.mixup import partner_probabilities
    >>> partner_probabilities(np.array([0.1, 0.3, 0.0]), power=2.0)
    array([0.1, 0.9, 0. ])
    """
    check_scalar("power", power, positive=True, allow_inf=False)
    w, work = prepare(detach(weights), "weights")
    xp = work.xp
    check_values(xp, w, "weights", hot=True)
    with quiet(xp):
        w = xp.maximum(w, xp.zeros_like(w))
        wp = w ** detach(power)
        total = xp.sum(wp, axis=-1, keepdims=True)
        n = w.shape[-1]
        probs = xp.where(total > 0, wp / xp.where(total > 0, total, xp.ones_like(total)), xp.full_like(wp, 1.0 / n))
        probs = _nan_rows(xp, w, probs)
    return work.finish(probs)


def smoothing_factors(weights):
    r"""CIW-M smoothing factors :math:`s_i = w_i / \max_j w_j` over the last axis (``1`` where all are zero).

    :math:`s_i = 1` keeps the label of the heaviest example; an example of
    weight zero gets :math:`s_i = 0`, its label replaced by the prediction
    (see :func:`smooth_targets`).

    Parameters
    ----------
    weights : array, shape (..., n)
        Nonnegative finite instance weights.

    Returns
    -------
    s : array, shape (..., n)
        In :math:`[0, 1]`; namespace and dtype of ``weights``.

    Examples
    --------
    >>> import numpy as np
    >>> from divweights.mixup import smoothing_factors
    >>> smoothing_factors(np.array([0.2, 0.5, 0.3]))
    array([0.4, 1. , 0.6])
    >>> smoothing_factors(np.zeros(2))
    array([1., 1.])
    """
    w, work = prepare(detach(weights), "weights")
    xp = work.xp
    check_values(xp, w, "weights", hot=True)
    top = xp.max(w, axis=-1, keepdims=True)
    s = xp.where(top > 0, w / xp.where(top > 0, top, xp.ones_like(top)), xp.ones_like(w))
    return work.finish(s)


def smooth_targets(targets, weights, predictions):
    r"""CIW-M label smoothing: pull each label towards the predicted class by its relative weight.

    .. math::

        \tilde y_i = s_i\, y_i + (1 - s_i)\, e_{\arg\max_c \hat p_{ic}},
        \qquad s_i = \frac{w_i}{\max_j w_j}

    (:func:`smoothing_factors`; labels are kept when all weights are zero).
    Trusted examples keep their label; examples the reweighting distrusts
    take the model's prediction.  Both adapters apply it before plain mixup
    in the ``"label_smoothing"`` mode.

    Parameters
    ----------
    targets : array, shape (..., n, k)
        Floating label distributions (one-hot or soft).
    weights : array, shape (..., n)
        Nonnegative finite instance weights.
    predictions : array, shape (..., n, k)
        Logits or probabilities; only the argmax is used (the first one on ties).

    Returns
    -------
    smoothed : array, shape (..., n, k)
        Rows on the simplex when the targets are; namespace and dtype of
        ``targets``.

    Raises
    ------
    TypeError
        Integer targets, or arrays from different libraries.
    ValueError
        Shapes that do not match; a NaN, infinite or negative weight
        (checked eagerly only).

    Examples
    --------
    >>> import numpy as np
    >>> from divweights.mixup import smooth_targets
    >>> y = np.array([[1.0, 0.0], [1.0, 0.0]])
    >>> logits = np.array([[2.0, 0.0], [0.0, 2.0]])
    >>> smooth_targets(y, np.array([0.8, 0.2]), logits)
    array([[1.  , 0.  ],
           [0.25, 0.75]])
    """
    if not hasattr(targets, "dtype"):
        raise TypeError(f"targets must be an array; got {type(targets).__name__}")
    y, work = prepare(detach(targets), "targets", min_ndim=2)
    xp = work.xp
    if not xp.isdtype(targets.dtype, "real floating"):
        raise TypeError(
            f"targets must be floating label distributions of shape (..., n, k); got dtype {targets.dtype} "
            "(convert integer labels to one-hot first)"
        )
    w = detach(same_library(xp, weights, "weights", targets, "targets"))
    pred = detach(same_library(xp, predictions, "predictions", targets, "targets"))
    if tuple(w.shape) != tuple(y.shape[:-1]):
        raise ValueError(f"weights must have shape targets.shape[:-1] = {tuple(y.shape[:-1])}; got {tuple(w.shape)}")
    if tuple(pred.shape) != tuple(y.shape):
        raise ValueError(f"predictions must have the shape of targets {tuple(y.shape)}; got {tuple(pred.shape)}")
    s = smoothing_factors(xp.astype(w, work.dtype))[..., None]
    k = y.shape[-1]
    best = xp.argmax(pred, axis=-1)
    classes = xp.arange(k, dtype=best.dtype, device=work.device)
    onehot = xp.astype(best[..., None] == classes, work.dtype)
    return work.finish(s * y + (1 - s) * onehot)
