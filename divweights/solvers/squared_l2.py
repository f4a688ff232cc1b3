r"""Squared Euclidean distance, :math:`\|v - y\|_2^2`.

Class problem :math:`\min_{v\in\Delta}\langle v, \ell\rangle` s.t.
:math:`\|v - y\|^2 \le \gamma`: the KKT conditions give
:math:`v(t) = \Pi_\Delta(y - t\,\ell)` (Euclidean projection onto the simplex)
with :math:`t = 1/(2\eta) \ge 0`; :math:`g(t) = \|v(t) - y\|^2` is nondecreasing
and piecewise quadratic, and :math:`t` is found by safeguarded Newton in
:math:`\log t` with the exact bracket

* :math:`t \ge \sqrt{\gamma} / \|\ell - \bar\ell\|` (the projection is
  1-Lipschitz and invariant to adding a constant to all coordinates), and
* :math:`t \le 3 / g_{\min}` where :math:`g_{\min}` is the smallest positive gap
  :math:`\ell_j - \min\ell`: beyond it :math:`v(t)` is the projection of
  :math:`y` onto the face of minimisers, the unconstrained optimum closest to
  :math:`y`.

The instance problem under ``SquaredL2`` is the chi-squared problem with
rescaled strength (``||w - u||^2 = chi^2(w || u) / n``) and is solved there.
"""

from __future__ import annotations

import math

import array_api_compat

from .._root import solve_increasing

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
    return xp.maximum(x - theta, xp.zeros_like(x))


def squared_l2_class(L, y, gamma, work):
    xp = work.xp
    zeros = xp.zeros_like(L)
    one = work.const(1.0)
    tiny = work.const(float(work.finfo.smallest_normal))
    lmin = xp.min(L, axis=-1, keepdims=True)
    d = xp.where(L == lmin, zeros, L - lmin)
    minimisers = d == 0
    floor = xp.full_like(L, -2.0)  # below -1 every coordinate projects to zero

    def project_at(t):
        return project_simplex(xp, xp.maximum(y - t * d, floor))

    v_lim = project_simplex(xp, xp.where(minimisers, y, floor))
    g_max = xp.sum((v_lim - y) ** 2, axis=-1, keepdims=True)
    binding = (gamma < g_max) & (gamma > 0)
    fin = xp.isfinite(d)
    d_fin = xp.where(fin, d, zeros)
    k_fin = xp.sum(xp.astype(fin, L.dtype), axis=-1, keepdims=True)
    centred = xp.where(fin, d_fin - xp.sum(d_fin, axis=-1, keepdims=True) / k_fin, zeros)
    norm = xp.sqrt(xp.sum(centred * centred, axis=-1, keepdims=True))
    inf = xp.full_like(L, math.inf)
    gap = xp.min(xp.where(d > 0, d, inf), axis=-1, keepdims=True)
    norm = xp.where(binding & (norm > 0), norm, one)
    gap = xp.where(binding & xp.isfinite(gap), gap, one)
    gamma_s = xp.maximum(gamma, tiny)
    lo = 0.5 * xp.log(gamma_s) - xp.log(norm)
    hi = xp.maximum(math.log(3.0) - xp.log(gap), lo)

    def fun(log_t):
        t = xp.exp(log_t)
        v = project_at(t)
        diff = v - y
        g = xp.sum(diff * diff, axis=-1, keepdims=True)
        active = v > 0
        act = xp.astype(active, L.dtype)
        mean_d = xp.sum(act * d_fin, axis=-1, keepdims=True) / xp.maximum(
            xp.sum(act, axis=-1, keepdims=True), one
        )
        dv = xp.where(active, mean_d - d_fin, zeros)
        dg = 2.0 * xp.sum(diff * dv, axis=-1, keepdims=True) * t
        return g - gamma_s, dg

    log_t = solve_increasing(xp, lambda _: fun, (L,), lo, hi, polish=work.polish)
    v = project_at(xp.exp(log_t))
    v = xp.where(binding, v, v_lim)
    return xp.where(gamma <= 0, y, v)
