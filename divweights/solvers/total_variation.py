r"""Total variation, :math:`\mathrm{TV}(w, q) = \tfrac12 \|w - q\|_1` (half the L1 norm).

Both problems are linear programs whose solution moves mass from the
highest-loss coordinates to the lowest-loss ones:

* constraint :math:`\mathrm{TV}(w, q) \le \delta`: take :math:`\delta` mass from
  the coordinates with the highest losses (each can give its whole prior mass
  :math:`q_i`), in decreasing order of loss, and put it on the minimisers.
  Ties are treated symmetrically: the threshold level :math:`\tau` at which
  the budget runs out gives up the same fraction of each tied coordinate's
  mass, and the minimisers share the moved mass equally.  For a one-hot
  ``q = e_y`` this is hard bootstrapping,
  :math:`\langle v, \ell\rangle = (1-\delta)\ell_y + \delta \min_j \ell_j`.
* penalty :math:`\lambda\,\mathrm{TV}`: moving mass from :math:`i` to a minimiser
  pays off exactly when :math:`\ell_i - \min\ell > \lambda`; those coordinates
  give all their mass.

The threshold needs no full sort.  With a uniform prior every coordinate can
give the same mass :math:`1/n`, so :math:`\tau` is the
:math:`(\lfloor \delta n\rfloor + 1)`-th largest removable loss: a partition
(``np.partition``) for NumPy, one sort for the other array libraries.  For a
general prior over few classes :math:`\tau` is read from the pairwise
comparison of the classes (:math:`O(k^2)`, no sort); over many classes from a
sort.

Instance weights exclude examples with infinite loss (zero weight, uniform
prior over the rest), like every other divergence.  With the L1 convention
:math:`\|w-q\|_1 \le \delta_1` use :math:`\delta = \delta_1/2`.
"""

from __future__ import annotations

import math

import array_api_compat

from .._array import clip, is_eager_numpy

__all__ = [
    "move_labels_numpy",
    "move_onehot",
    "tv_class_onehot",
    "tv_constrained",
    "tv_label_keep",
    "tv_label_keep_float",
    "tv_penalty",
]

#: class problems with at most this many classes find the threshold by pairwise comparison
PAIRWISE_MAX = 64


def _receive(xp, base, removal, minimisers):
    """``base - removal``, with the removed mass shared equally by the minimisers."""
    mm = xp.astype(minimisers, base.dtype)
    moved = xp.sum(removal, axis=-1, keepdims=True) / xp.sum(mm, axis=-1, keepdims=True)
    return base - removal + mm * moved


def _uniform_finite(xp, losses):
    """Uniform prior over the examples with finite loss (infinite ones are excluded)."""
    finite = xp.astype(losses < math.inf, losses.dtype)
    return finite / xp.sum(finite, axis=-1, keepdims=True)


def move_onehot(xp, L, onehot, keep):
    """One-hot target ``y``: ``keep`` of the mass on the label, the rest shared by the
    minimisers; rows whose label is a minimiser keep the label.

    ``onehot`` must be exactly one-hot (zeros and a single one per row), ``keep`` in
    ``[0, 1]`` (any shape that broadcasts against the rows).  NumPy's integer labels take
    :func:`move_labels_numpy` instead (:func:`divweights.class_weights`)."""
    lmin = xp.min(L, axis=-1, keepdims=True)
    minimisers = xp.astype(L == lmin, L.dtype)
    count = xp.sum(minimisers, axis=-1, keepdims=True)
    # 1 where the label is a minimiser, else 0 (exactly: a sum of 0/1 products with one nonzero term)
    label_best = xp.sum(onehot * minimisers, axis=-1, keepdims=True)
    keep = xp.maximum(keep, label_best)
    return keep * onehot + ((1.0 - keep) / count) * minimisers


def move_labels_numpy(L, labels, keep: float):
    """:func:`move_onehot` for NumPy class losses ``L`` of shape ``(..., k)`` holding no NaN and
    integer ``labels`` of shape ``(...)`` in ``[0, k)`` (both checked by the caller), without
    building the one-hot targets: the small-batch path of :func:`divweights.class_weights`,
    where every NumPy call is a visible share of the time.  ``keep`` in ``[0, 1]``."""
    import numpy as np

    k = L.shape[-1]
    flat = L.reshape(-1, k)
    rows = np.arange(flat.shape[0])
    y = labels.reshape(-1)
    # row minima: NumPy reduces a short last axis slowly (5 us for 128 x 10); down the columns
    # of the transposed copy it is one vectorised pass (under 2 us)
    lmin = np.minimum.reduce(np.ascontiguousarray(flat.T), axis=0)
    minimisers = (flat == lmin[:, None]).astype(flat.dtype)
    count = minimisers @ np.ones(k, dtype=flat.dtype)  # exact: sums of 0/1 entries
    # a label among the minimisers keeps all its mass
    keep_rows = np.where(flat[rows, y] == lmin, 1.0, keep)
    minimisers *= ((1.0 - keep_rows) / count)[:, None]
    minimisers[rows, y] += keep_rows
    return minimisers.reshape(L.shape)


def tv_label_keep(xp, gamma):
    """Mass the label keeps under a total-variation radius ``gamma``: ``1 - min(gamma, 1)``."""
    return 1.0 - clip(xp, gamma, max=1.0)


def tv_label_keep_float(gamma: float) -> float:
    """:func:`tv_label_keep` for a Python number (NumPy's small-batch path)."""
    return 1.0 - min(gamma, 1.0)


def tv_class_onehot(L, onehot, gamma, work):
    """Hard bootstrapping: ``v = (1 - gamma) e_y + gamma * (uniform on the argmin)`` (``gamma <= 1``)."""
    xp = work.xp
    return move_onehot(xp, L, onehot, tv_label_keep(xp, gamma))


def _kth_largest(xp, key, k):
    """The ``k``-th largest entry (0-based, per row; ``-inf`` if ``k`` is past the end)."""
    n = key.shape[-1]
    if is_eager_numpy(xp, key):  # a partition, not a sort: O(n)
        import numpy as np

        kth = np.asarray(k, dtype=np.int64).reshape(key.shape[:-1])
        out = np.empty(key.shape[:-1] + (1,), dtype=key.dtype)
        for index in np.ndindex(*key.shape[:-1]):
            j = int(kth[index])
            out[index] = -np.inf if j >= n else np.partition(key[index], n - 1 - j)[n - 1 - j]
        return xp.asarray(out)
    s = xp.sort(key, axis=-1, descending=True)
    idx = xp.arange(n, dtype=key.dtype, device=array_api_compat.device(key))
    return xp.min(xp.where(idx <= k, s, xp.full_like(s, math.inf)), axis=-1, keepdims=True)


def _removal_pairwise(xp, losses, cap, budget):
    """Mass each coordinate gives up, from the pairwise comparison of the coordinates:
    with ``A_i`` the capacity strictly above ``losses_i`` and ``E_i`` the capacity at its
    level, ``cap_i * clip((budget - A_i) / E_i, 0, 1)`` (all of it above the threshold
    level, the same fraction of every tied coordinate at it, none below)."""
    row = losses[..., None, :]
    col = losses[..., :, None]
    if is_eager_numpy(xp, cap):  # NumPy: a matrix product is several times faster than where + sum
        above = (xp.astype(row > col, cap.dtype) @ cap[..., None])[..., 0]
        level = (xp.astype(row == col, cap.dtype) @ cap[..., None])[..., 0]
    else:  # fewer kernels
        zero = xp.zeros((), dtype=cap.dtype, device=array_api_compat.device(cap))
        capacity = cap[..., None, :]
        above = xp.sum(xp.where(row > col, capacity, zero), axis=-1)
        level = xp.sum(xp.where(row == col, capacity, zero), axis=-1)
    tiny = float(xp.finfo(cap.dtype).smallest_normal)
    return cap * xp.clip((budget - above) / xp.clip(level, min=tiny), min=0.0, max=1.0)


def _removal_sorted(xp, losses, cap, budget, tau):
    """Mass each coordinate gives up, given the threshold level ``tau``."""
    zeros = xp.zeros_like(cap)
    above = losses > tau
    at = losses == tau
    y_gt = xp.sum(xp.where(above, cap, zeros), axis=-1, keepdims=True)
    y_eq = xp.sum(xp.where(at, cap, zeros), axis=-1, keepdims=True)
    frac = xp.clip((budget - y_gt) / xp.clip(y_eq, min=float(xp.finfo(cap.dtype).smallest_normal)), min=0.0, max=1.0)
    return xp.where(above, cap, xp.where(at, frac * cap, zeros))


def _level(xp, losses, cap, budget):
    """Threshold level ``tau``: the lowest loss such that the capacity strictly above it fits the budget."""
    order = xp.argsort(losses, axis=-1, descending=True, stable=True)
    s = xp.take_along_axis(losses, order, axis=-1)
    cap_sorted = xp.take_along_axis(cap, order, axis=-1)
    before = xp.cumulative_sum(cap_sorted, axis=-1) - cap_sorted
    return xp.min(xp.where(before <= budget, s, xp.full_like(s, math.inf)), axis=-1, keepdims=True)


def tv_constrained(losses, budget, work, prior=None):
    """Solve ``min <w, losses>  s.t.  1/2 ||w - prior||_1 <= budget``.

    The default prior is uniform over the examples with finite loss.
    """
    xp = work.xp
    lmin = xp.min(losses, axis=-1, keepdims=True)
    minimisers = losses == lmin
    if prior is None:
        finite = losses < math.inf
        count = xp.sum(xp.astype(finite, losses.dtype), axis=-1, keepdims=True)
        base = xp.astype(finite, losses.dtype) / count
        removable = finite & ~minimisers
        cap = xp.where(removable, base, xp.zeros_like(base))
        # every removable example gives 1 / count: tau is the (floor(budget * count) + 1)-th largest
        kth = xp.clip(xp.floor(budget * count), max=float(losses.shape[-1]))
        tau = _kth_largest(xp, xp.where(removable, losses, xp.full_like(losses, -math.inf)), kth)
        removal = _removal_sorted(xp, losses, cap, budget, tau)
    else:
        base = prior
        cap = xp.where(minimisers, xp.zeros_like(prior), prior)
        if losses.shape[-1] <= PAIRWISE_MAX:
            removal = _removal_pairwise(xp, losses, cap, budget)
        else:
            removal = _removal_sorted(xp, losses, cap, budget, _level(xp, losses, cap, budget))
    return _receive(xp, base, removal, minimisers)


def tv_penalty(losses, lam, work, prior=None):
    """Solve ``min <w, losses> + lam * 1/2 ||w - prior||_1`` (prior: uniform by default)."""
    xp = work.xp
    base = _uniform_finite(xp, losses) if prior is None else prior
    lp = losses - xp.min(losses, axis=-1, keepdims=True)
    removal = xp.where(lp > lam, base, xp.zeros_like(base))
    return _receive(xp, base, removal, lp == 0)
