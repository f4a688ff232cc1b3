r"""Squared Euclidean distance, :math:`\|v - y\|_2^2`.

Class problem :math:`\min_{v\in\Delta}\langle v, \ell\rangle` s.t.
:math:`\|v - y\|^2 \le \gamma`: the KKT conditions give
:math:`v(t) = \Pi_\Delta(y - t\,\ell)` (Euclidean projection onto the simplex)
with :math:`t = 1/(2\eta) \ge 0`; :math:`g(t) = \|v(t) - y\|^2` is nondecreasing
and piecewise quadratic, and :math:`t` is found by
:func:`divweights._root.solve_increasing` in :math:`\log t` on the exact bracket

* :math:`t \ge \sqrt{\gamma} / \|\ell - \bar\ell\| \ge \sqrt{\gamma / k} / \max_j \ell'_j`
  (the projection is 1-Lipschitz and invariant to adding a constant to all
  coordinates), and
* :math:`t \le 3 / g_{\min}` where :math:`g_{\min}` is the smallest positive gap
  :math:`\ell_j - \min\ell`: beyond it :math:`v(t)` is the projection of
  :math:`y` onto the face of minimisers, the unconstrained optimum closest to
  :math:`y`.

The ends of the bracket are the limits: a radius that cannot bind ends at the
upper one (the projection onto the minimisers' face), :math:`\gamma = 0` at
the lower one (:math:`v = y` to rounding).

The instance problem under ``SquaredL2`` is the chi-squared problem with
rescaled strength (``||w - u||^2 = chi^2(w || u) / n``) and is solved there.
"""

from __future__ import annotations

import math

import array_api_compat

from .._root import solve_increasing, zero_strength

__all__ = ["project_simplex", "squared_l2_class"]


def project_simplex(xp, x):
    """Euclidean projection of each row of ``x`` onto the probability simplex (sort-based)."""
    k = x.shape[-1]
    u = xp.sort(x, axis=-1, descending=True)
    css = xp.cumulative_sum(u, axis=-1) - 1.0
    ind = xp.arange(1, k + 1, dtype=x.dtype, device=array_api_compat.device(x))
    cond = (u - css / ind) > 0
    rho = xp.sum(xp.astype(cond, x.dtype), axis=-1, keepdims=True)
    theta = xp.sum(xp.where(ind == rho, css / ind, xp.zeros_like(css)), axis=-1, keepdims=True)
    return xp.clip(x - theta, min=0.0)


def _make_fun(xp, gamma_s):
    """``make_fun(d, y)``: ``||v(e^s) - y||^2 - gamma`` and its derivative in ``s``."""

    def make_fun(d, y):
        fin = xp.isfinite(d)
        d_fin = xp.where(fin, d, xp.zeros_like(d))

        def fun(log_t, slope):
            t = xp.exp(log_t)
            v = project_simplex(xp, xp.clip(y - t * d, min=-2.0))  # below -1 every coordinate is 0
            diff = v - y
            g = xp.sum(diff * diff, axis=-1, keepdims=True) - gamma_s
            if not slope:
                return g, None
            act = xp.astype(v > 0, d.dtype)
            mean_d = xp.sum(act * d_fin, axis=-1, keepdims=True) / xp.clip(xp.sum(act, axis=-1, keepdims=True), min=1.0)
            dv = act * (mean_d - d_fin)
            return g, 2.0 * xp.sum(diff * dv, axis=-1, keepdims=True) * t

        return fun

    return make_fun


def squared_l2_class(L, y, gamma, work):
    xp = work.xp
    zeros = xp.zeros_like(L)
    tiny = float(work.finfo.smallest_normal)
    d = L - xp.min(L, axis=-1, keepdims=True)
    # ||d - mean d|| <= sqrt(k) max d (no squares: no overflow at any scale)
    top = xp.clip(xp.max(xp.where(xp.isfinite(d), d, zeros), axis=-1, keepdims=True), min=tiny)
    gap = xp.min(xp.where(d > 0, d, xp.full_like(L, math.inf)), axis=-1, keepdims=True)
    gap = xp.where(xp.isfinite(gap), gap, xp.ones_like(gap))
    gamma_s = xp.clip(gamma, min=tiny)
    lo = 0.5 * (xp.log(gamma_s) - math.log(L.shape[-1])) - xp.log(top)
    hi = xp.maximum(math.log(3.0) - xp.log(gap), lo)
    # g is piecewise quadratic, with a kink wherever the active set changes: safeguarded Newton
    log_t = solve_increasing(xp, _make_fun(xp, gamma_s), (d, y), lo, hi, steps=2 * work.polish + 4, safeguarded=True)
    return zero_strength(xp, gamma, y, project_simplex(xp, xp.clip(y - xp.exp(log_t) * d, min=-2.0)))
