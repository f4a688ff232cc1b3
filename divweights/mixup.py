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
``"weight"``           random permutation                               weighted Beta, mean :math:`\rho_{ij}`
``"sample_weight"``    i.i.d., :math:`P(j) \propto w_j^{p}` (CICW-M)    weighted Beta, mean :math:`\rho_{ij}`
``"label_smoothing"``  random permutation, after smoothing (CIW-M)      :math:`\mathrm{Beta}(\alpha, \alpha)`
=====================  ===============================================  ====================================

with :math:`\rho_{ij} = w_i / (w_i + w_j)` (:func:`mixup_ratio`).  The weighted
ratio is random: :math:`r_i \sim \mathrm{Beta}(2\alpha\rho_{ij},\, 2\alpha(1 - \rho_{ij}))`
(:func:`weighted_beta_parameters`, :data:`WEIGHT_RATIOS` ``"beta"``): its mean is
:math:`\rho_{ij}`, it is plain mixup's :math:`\mathrm{Beta}(\alpha, \alpha)` when the
two weights are equal, and the published code's deterministic ratio
:math:`r_i = \rho_{ij}` (``"deterministic"``) is its limit :math:`\alpha \to \infty`.
The deterministic ratio is :math:`\approx 1/2` whenever the weights are near
uniform (always during the burn-in), so every training input is then the
midpoint of two examples: on low-dimensional data (two-moons) that is a
different input distribution than the test set's, and CICW-M fell to
chance; see ``docs/derivations/mixup.rst``.

The modes are :data:`MIXUP_MODES`.  This module holds the formulas, safe at
zero weights: the partner distribution (:func:`partner_probabilities`), the
ratio (:func:`mixup_ratio`, :func:`weighted_beta_parameters`) and the CIW-M label smoothing
(:func:`smoothing_factors`, :func:`smooth_targets`), with the least share of a label that keeps a
wrong prediction from sustaining itself (:func:`stable_label_share`), and the CICW-M guard that keeps
the class weights of a batch from moving their mass into one class (:func:`balance_class_shift`).
Drawing the partners
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
import numbers

import array_api_compat

from ._array import check_scalar, prepare, quiet
from ._inputs import check_values, detach, same_library

__all__ = [
    "MIXUP_MODES",
    "WEIGHT_RATIOS",
    "balance_class_shift",
    "mixup_ratio",
    "partner_probabilities",
    "smooth_targets",
    "smoothing_factors",
    "stable_label_share",
    "weighted_beta_parameters",
]

#: The weighted-mixup modes of both adapters (see the table above).
MIXUP_MODES: tuple[str, ...] = ("plain", "sample", "weight", "sample_weight", "label_smoothing")

#: Rules for the ratio of the modes ``"weight"`` and ``"sample_weight"``: ``"beta"`` draws
#: :math:`r_i \sim \mathrm{Beta}(2\alpha\rho_{ij}, 2\alpha(1 - \rho_{ij}))`
#: (:func:`weighted_beta_parameters`; the default), ``"deterministic"`` takes
#: :math:`r_i = \rho_{ij} = w_i / (w_i + w_j)` (:func:`mixup_ratio`; the published code's rule).
WEIGHT_RATIOS: tuple[str, ...] = ("beta", "deterministic")


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
    # zero total: half and half; a NaN weight (unchecked under tracing) stays NaN, as the weights of a batch
    # with a NaN loss do, rather than mixing as if the weights were equal (NaN <= 0 is false)
    zero = total <= 0
    ratio = xp.where(zero, xp.full_like(total, 0.5), a / xp.where(zero, xp.ones_like(total), total))
    return work.finish(ratio)


def weighted_beta_parameters(w_i, w_j, alpha):
    r"""Parameters of the weighted mixing ratio :math:`r \sim \mathrm{Beta}(a, b)`.

    .. math::

        a = 2\alpha\,\rho, \qquad b = 2\alpha\,(1 - \rho), \qquad
        \rho = \frac{w_i}{w_i + w_j}\quad(\rho = 1/2 \text{ when both weights are zero}).

    The ratio keeps the published ratio :math:`\rho` (:func:`mixup_ratio`) as
    its mean, :math:`\mathbb{E}[r] = a / (a + b) = \rho`, but spreads it like
    plain mixup, :math:`\mathrm{Var}[r] = \rho(1 - \rho) / (2\alpha + 1)`:

    * equal weights give :math:`\mathrm{Beta}(\alpha, \alpha)`, plain mixup
      (uniform weights, as in the burn-in, are plain mixup with the partners
      of the mode);
    * a partner of weight zero gives :math:`b = 0`, i.e. :math:`r = 1`: the
      example is kept whole; an example of weight zero gives :math:`r = 0`:
      it is replaced by its partner;
    * :math:`\alpha \to \infty` gives :math:`r = \rho`, the published
      deterministic rule.

    With the deterministic rule, near-uniform weights make every ratio
    :math:`\approx 1/2`: mixup with :math:`\alpha = \infty`, whose inputs are
    all midpoints of two examples (on two-moons CICW-M fell to chance with
    it; the measurements are in ``docs/derivations/mixup.rst``).

    Parameters
    ----------
    w_i, w_j : array
        Nonnegative finite weights of the examples and of their partners
        (broadcastable, same array library).
    alpha : float or 0-d array
        Concentration :math:`\alpha`, finite and ``> 0`` (``--mixup-alpha``).

    Returns
    -------
    a, b : array
        Nonnegative, :math:`a + b = 2\alpha`; namespace and dtype of
        ``w_i`` (integers promoted to the default floating dtype).  One of
        them is ``0`` exactly when one weight is zero and the other is not:
        :math:`\mathrm{Beta}(a, 0)` is the point mass at 1 and
        :math:`\mathrm{Beta}(0, b)` the one at 0 (the adapters return those
        values without drawing).

    Raises
    ------
    ValueError
        ``alpha`` not finite and ``> 0``; a NaN, infinite or negative weight
        (checked eagerly only).

    Examples
    --------
    >>> import numpy as np
    >>> from divweights.mixup import weighted_beta_parameters
    >>> a, b = weighted_beta_parameters(np.array([0.3, 0.2, 0.0]), np.array([0.1, 0.2, 0.5]), 1.0)
    >>> a, b
    (array([1.5, 1. , 0. ]), array([0.5, 1. , 2. ]))
    >>> a / (a + b)  # the mean is the deterministic ratio w_i / (w_i + w_j)
    array([0.75, 0.5 , 0.  ])
    """
    check_scalar("alpha", alpha, positive=True, allow_inf=False)
    rho = mixup_ratio(w_i, w_j)
    if isinstance(alpha, numbers.Real):
        two_alpha = 2.0 * float(alpha)
    else:  # a 0-d array (possibly traced): in rho's dtype, so the result keeps it
        xp = array_api_compat.array_namespace(rho)
        two_alpha = 2 * xp.astype(detach(alpha), rho.dtype)
    return two_alpha * rho, two_alpha * (1 - rho)


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


def stable_label_share(rate: float, num_classes: int) -> float:
    r"""The least share of each label that moving mass to the prediction must keep to stay stable.

    .. math::

        \kappa^\star(\pi, K) = \frac{1}{2 - \pi K / (K - 1)}

    Under symmetric label noise at rate :math:`\pi` over :math:`K` classes,
    a rule that moves a share :math:`1 - \kappa` of every label to the
    model's favourite class (CIW-M's smoothing, bootstrapping, one-hot class
    weights) lets a *wrong* favourite sustain itself when
    :math:`\kappa < \kappa^\star`: the labels of the true class then keep
    less mass than the prediction collects.  :math:`\kappa^\star` is
    :math:`1/2` on clean labels and grows to :math:`1` where the labels carry
    no information (derivation: ``docs/derivations/mixup.rst``).

    Parameters
    ----------
    rate : float
        Noise rate :math:`\pi` in ``[0, 1]``; rates at or above
        :math:`(K-1)/K` give ``1`` (keep every label).
    num_classes : int
        :math:`K \ge 2`.

    Returns
    -------
    share : float
        In ``[1/2, 1]``.

    Examples
    --------
    >>> from divweights.mixup import stable_label_share
    >>> [round(stable_label_share(r, k), 4) for r, k in [(0.0, 10), (0.4, 2), (0.8, 10)]]
    [0.5, 0.8333, 0.9]
    """
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= float(rate) <= 1.0:
        raise ValueError(f"rate must be a number in [0, 1]; got {rate!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2; got {num_classes!r}")
    informative = 2.0 - float(rate) * num_classes / (num_classes - 1)
    return 1.0 if informative <= 1.0 else 1.0 / informative


def smoothing_factors(weights, floor: float = 0.0):
    r"""CIW-M smoothing factors :math:`s_i = \max(w_i / \max_j w_j, f)` over the last axis (``1`` where all are zero).

    :math:`s_i = 1` keeps the label of the heaviest example; an example of
    weight zero gets :math:`s_i = f`, the rest of its label replaced by the
    prediction (see :func:`smooth_targets`).  The floor :math:`f` (default
    ``0``, the published rule) keeps that share of every label; with
    :func:`stable_label_share` of the noise rate it keeps a wrong prediction
    from sustaining itself.

    Parameters
    ----------
    weights : array, shape (..., n)
        Nonnegative finite instance weights.
    floor : float, default 0.0
        :math:`f` in ``[0, 1]``.

    Returns
    -------
    s : array, shape (..., n)
        In :math:`[f, 1]`; namespace and dtype of ``weights``.

    Examples
    --------
    >>> import numpy as np
    >>> from divweights.mixup import smoothing_factors
    >>> smoothing_factors(np.array([0.2, 0.5, 0.3]))
    array([0.4, 1. , 0.6])
    >>> smoothing_factors(np.array([0.2, 0.5, 0.3]), floor=0.5)
    array([0.5, 1. , 0.6])
    >>> smoothing_factors(np.zeros(2))
    array([1., 1.])
    """
    floor = _check_floor(floor)
    w, work = prepare(detach(weights), "weights")
    xp = work.xp
    check_values(xp, w, "weights", hot=True)
    top = xp.max(w, axis=-1, keepdims=True)
    zero = top <= 0  # all weights zero: full smoothing; a NaN weight stays NaN (NaN <= 0 is false)
    s = xp.where(zero, xp.ones_like(w), w / xp.where(zero, xp.ones_like(top), top))
    if floor > 0.0:
        s = xp.maximum(s, xp.full_like(s, floor))
    return work.finish(s)


def _check_floor(floor) -> float:
    if isinstance(floor, bool) or not isinstance(floor, (int, float)) or not 0.0 <= float(floor) <= 1.0:
        raise ValueError(f"floor must be a number in [0, 1]; got {floor!r}")
    return float(floor)


def smooth_targets(targets, weights, predictions, floor: float = 0.0):
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
    floor : float, default 0.0
        Least share of each label kept (:func:`smoothing_factors`).

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
    s = smoothing_factors(xp.astype(w, work.dtype), floor=floor)[..., None]
    k = y.shape[-1]
    best = xp.argmax(pred, axis=-1)
    classes = xp.arange(k, dtype=best.dtype, device=work.device)
    onehot = xp.astype(best[..., None] == classes, work.dtype)
    return work.finish(s * y + (1 - s) * onehot)


def balance_class_shift(class_weights, targets):
    r"""Shrink a batch's class-weight shift towards the labels by how much of it is a net flow between classes.

    With the shifts :math:`d_i = v_i - y_i` of the class weights :math:`v_i` from the
    labels :math:`y_i` (rows on the simplex, so each :math:`d_i` sums to zero), the batch's
    net flow is :math:`\sum_i d_i` and its gross flow :math:`\sum_i \lVert d_i\rVert_1`:

    .. math::

        v'_i = y_i + s\,(v_i - y_i), \qquad
        s = 1 - \frac{\lVert \sum_i d_i \rVert_1}{\sum_i \lVert d_i \rVert_1} \in [0, 1]

    (:math:`s = 1` when nothing moves).  Shifts that exchange mass between classes
    in both directions (some examples of class a moved to b, some of b to a: label
    noise) are kept; a shift that moves the batch's mass into one class, which feeds
    itself in CICW-M (the mixed targets carry it to every partner, the model follows,
    the class weights move further: an entropy-minimising collapse to one class), is
    shrunk towards the labels.  Each :math:`v'_i` is a convex combination of
    :math:`y_i` and :math:`v_i`, so it stays on the simplex and, for any divergence
    convex in its first argument, within the class radius:
    :math:`D(v'_i \Vert y_i) \le s\,D(v_i \Vert y_i)`.

    Parameters
    ----------
    class_weights : array, shape (..., n, k)
        Class weights :math:`v` of a batch of ``n`` examples (from
        :func:`~divweights.class_weights`); rows on the simplex.
    targets : array, shape (..., n, k)
        The labels :math:`y` they were computed from (one-hot or soft).  Rows
        that must not count (ignored examples) should hold ``v_i = y_i``.

    Returns
    -------
    balanced : array, shape (..., n, k)
        :math:`v'`; namespace and dtype of ``class_weights`` (NaN rows of the
        input make the whole batch NaN, as a NaN loss would).

    Raises
    ------
    TypeError
        Integer inputs, or arrays from different libraries.
    ValueError
        Shapes that differ or have fewer than two axes.

    Examples
    --------
    A shift from class 0 to class 1 in one example and an equal one back in another
    is kept; 0.6 moved into class 1 against 0.2 moved back (net flow 0.8 of a gross
    flow 1.6) is halved; every shift into one class is undone:

    >>> import numpy as np
    >>> from divweights.mixup import balance_class_shift
    >>> y = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> balance_class_shift(np.array([[0.5, 0.5], [0.5, 0.5]]), y)
    array([[0.5, 0.5],
           [0.5, 0.5]])
    >>> balance_class_shift(np.array([[0.4, 0.6], [0.2, 0.8]]), y)
    array([[0.7, 0.3],
           [0.1, 0.9]])
    >>> balance_class_shift(np.array([[0.5, 0.5], [0.0, 1.0]]), np.array([[1.0, 0.0], [1.0, 0.0]]))
    array([[1., 0.],
           [1., 0.]])
    """
    for name, a in (("class_weights", class_weights), ("targets", targets)):
        if not hasattr(a, "dtype"):
            raise TypeError(f"{name} must be an array; got {type(a).__name__}")
    v, work = prepare(detach(class_weights), "class_weights", min_ndim=2)
    xp = work.xp
    y = detach(same_library(xp, targets, "targets", class_weights, "class_weights"))
    for name, a in (("class_weights", class_weights), ("targets", y)):
        if not xp.isdtype(a.dtype, "real floating"):
            raise TypeError(f"{name} must be floating class distributions of shape (..., n, k); got dtype {a.dtype}")
    if tuple(y.shape) != tuple(v.shape):
        raise ValueError(f"targets must have the shape of class_weights {tuple(v.shape)}; got {tuple(y.shape)}")
    y = xp.astype(y, work.dtype)
    d = v - y
    net = xp.sum(xp.abs(xp.sum(d, axis=-2, keepdims=True)), axis=-1, keepdims=True)
    gross = xp.sum(xp.sum(xp.abs(d), axis=-1, keepdims=True), axis=-2, keepdims=True)
    moved = ~(gross <= 0)  # NaN counts as moved: a NaN batch gives NaN, not the labels
    s = 1 - net / xp.where(moved, gross, xp.ones_like(gross))
    s = xp.where(moved, xp.clip(s, 0.0, 1.0), xp.ones_like(s))  # rounding can leave [0, 1]; NaN stays NaN
    return work.finish(y + s * d)
