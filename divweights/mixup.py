r"""Framework-free pieces of weighted mixup (CICW-M).

Weighted mixup pairs example :math:`i` with a partner :math:`j = \pi(i)`,
sampled with probability proportional to :math:`w_j^{p}` (``power``), and
mixes inputs and labels with ratio :math:`r_i = w_i / (w_i + w_j)`.  The
sampling itself needs a random generator and lives in the adapters; these
helpers hold the formulas, safe at zero weights.
"""

from __future__ import annotations

from ._array import prepare

__all__ = ["mixup_ratio", "partner_probabilities"]


def mixup_ratio(w_i, w_j):
    r"""Mixing ratio :math:`w_i / (w_i + w_j)`; :math:`1/2` when both weights are zero.

    Examples
    --------
    >>> import numpy as np
    >>> from divweights.mixup import mixup_ratio
    >>> mixup_ratio(np.array([0.3, 0.0, 0.0]), np.array([0.1, 0.0, 0.2]))
    array([0.75, 0.5 , 0.  ])
    """
    a, work = prepare(w_i, "w_i", min_ndim=0)
    xp = work.xp
    b = xp.astype(w_j, work.dtype)
    total = a + b
    pos = total > 0
    ratio = xp.where(pos, a / xp.where(pos, total, xp.ones_like(total)), xp.full_like(total, 0.5))
    return work.finish(ratio)


def partner_probabilities(weights, power: float = 1.0):
    r"""Sampling distribution :math:`\propto w^{p}` over the last axis (uniform if all weights are zero).

    Examples
    --------
    >>> import numpy as np
    >>> from divweights.mixup import partner_probabilities
    >>> partner_probabilities(np.array([0.1, 0.3, 0.0]), power=2.0)
    array([0.1, 0.9, 0. ])
    """
    if not power > 0:
        raise ValueError(f"power must be > 0; got {power!r}")
    w, work = prepare(weights, "weights")
    xp = work.xp
    w = xp.maximum(w, xp.zeros_like(w))
    wp = w**power
    total = xp.sum(wp, axis=-1, keepdims=True)
    n = w.shape[-1]
    probs = xp.where(total > 0, wp / xp.where(total > 0, total, xp.ones_like(total)), xp.full_like(wp, 1.0 / n))
    return work.finish(probs)
