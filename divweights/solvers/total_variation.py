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

Instance weights exclude examples with infinite loss (zero weight, uniform
prior over the rest), like every other divergence.  With the L1 convention :math:`\|w-q\|_1 \le \delta_1` use
:math:`\delta = \delta_1/2`.
"""

from __future__ import annotations

import math

from .kl import shifted

__all__ = ["tv_constrained", "tv_penalty"]


def _receive(xp, base, removal, minimisers):
    moved = xp.sum(removal, axis=-1, keepdims=True)
    mm = xp.astype(minimisers, base.dtype)
    return base - removal + mm * (moved / xp.sum(mm, axis=-1, keepdims=True))


def _uniform_finite(xp, l):
    """Uniform prior over the examples with finite loss (infinite ones are excluded)."""
    finite = xp.astype(l < math.inf, l.dtype)
    return finite / xp.sum(finite, axis=-1, keepdims=True)


def tv_constrained(l, budget, work, prior=None):
    """Solve ``min <w, l>  s.t.  1/2 ||w - prior||_1 <= budget``.

    The default prior is uniform over the examples with finite loss.
    """
    xp = work.xp
    zeros = xp.zeros_like(l)
    lmin = xp.min(l, axis=-1, keepdims=True)
    minimisers = l == lmin
    if prior is None:
        base = _uniform_finite(xp, l)
        s = xp.sort(l, axis=-1, descending=True)
        finite_count = xp.sum(xp.astype(l < math.inf, l.dtype), axis=-1, keepdims=True)
        cap_sorted = xp.where((s == lmin) | (s == math.inf), zeros, 1.0 / finite_count)
    else:
        base = prior
        order = xp.argsort(l, axis=-1, descending=True, stable=True)
        s = xp.take_along_axis(l, order, axis=-1)
        cap_sorted = xp.take_along_axis(xp.where(minimisers, zeros, prior), order, axis=-1)
    cap = xp.where(minimisers, zeros, base)
    before = xp.cumulative_sum(cap_sorted, axis=-1) - cap_sorted
    inf = xp.full_like(l, math.inf)
    tau = xp.min(xp.where(before <= budget, s, inf), axis=-1, keepdims=True)
    above = l > tau
    at = l == tau
    y_gt = xp.sum(xp.where(above, cap, zeros), axis=-1, keepdims=True)
    y_eq = xp.sum(xp.where(at, cap, zeros), axis=-1, keepdims=True)
    safe = xp.where(y_eq > 0, y_eq, xp.ones_like(y_eq))
    frac = xp.clip((budget - y_gt) / safe, 0.0, 1.0)
    removal = xp.where(above, cap, xp.where(at, frac * cap, zeros))
    return _receive(xp, base, removal, minimisers)


def tv_penalty(l, lam, work, prior=None):
    """Solve ``min <w, l> + lam * 1/2 ||w - prior||_1`` (prior: uniform by default)."""
    xp = work.xp
    base = _uniform_finite(xp, l) if prior is None else prior
    lp = shifted(xp, l)
    minimisers = lp == 0
    removal = xp.where(lp > lam, base, xp.zeros_like(l))
    return _receive(xp, base, removal, minimisers)
