r"""Class problem under reverse KL: :math:`\min_{v\in\Delta}\langle v, \ell\rangle`
s.t. :math:`\mathrm{KL}(y \,\|\, v) \le \gamma` (the published code's ``'kl'`` option).

Stationarity gives :math:`v_j = \eta\, y_j / (\ell_j + \mu)` on the support of
:math:`y`; classes outside the support receive mass only at
:math:`\mu = -\min_{j \notin \mathrm{supp}\,y} \ell_j`.  Two cases, with
:math:`d = \ell - \min_j \ell_j`:

* **mass leaves the support** (some class outside the support is strictly
  better than every class inside, and
  :math:`\gamma \ge h_B = \sum_j y_j \log d_j + \log\sum_j y_j/d_j`):
  :math:`\eta = \exp(\sum_j y_j \log d_j - \gamma)`,
  :math:`v_j = \eta y_j / d_j` on the support, the remaining
  :math:`1 - \sum_j v_j` on the best class outside it.  For one-hot
  :math:`y = e_c`: :math:`v_c = e^{-\gamma}`, i.e. the loss
  :math:`e^{-\gamma}\ell_c + (1 - e^{-\gamma})\min_j \ell_j`.
* **mass stays on the support**: :math:`v \propto y / (d + e^{t})` with
  :math:`h(t) = \sum_j y_j\log x_j + \log\sum_j y_j/x_j = \gamma`,
  :math:`x = d + e^{t}`; :math:`h` decreases in :math:`t` and is solved by
  safeguarded Newton.
"""

from __future__ import annotations

import math

from .._array import logsumexp
from .._root import solve_increasing

__all__ = ["reverse_kl_class", "reverse_kl_class_onehot"]


def reverse_kl_class_onehot(L, onehot, gamma, work):
    """Closed form for one-hot targets: ``v_y = exp(-gamma)``, the rest on the argmin."""
    xp = work.xp
    lmin = xp.min(L, axis=-1, keepdims=True)
    minimisers = xp.astype(L == lmin, L.dtype)
    minimisers = minimisers / xp.sum(minimisers, axis=-1, keepdims=True)
    l_y = xp.sum(onehot * L, axis=-1, keepdims=True)
    # exp(-gamma) underflows for gamma > ~745 (float64): keep the smallest positive mass
    tiny = work.const(float(work.finfo.smallest_normal))
    keep = xp.maximum(xp.exp(-gamma), tiny) * xp.ones_like(l_y)
    keep = xp.where(l_y == lmin, xp.ones_like(keep), keep)
    return keep * onehot + (1.0 - keep) * minimisers


def reverse_kl_class(L, y, gamma, work):
    """General (soft target) solution; rows that are one-hot give the closed form."""
    xp = work.xp
    zeros = xp.zeros_like(L)
    neg_inf = xp.full_like(L, -math.inf)
    inf = xp.full_like(L, math.inf)
    one = work.const(1.0)
    tiny = work.const(float(work.finfo.smallest_normal))
    supp = y > 0
    lmin = xp.min(L, axis=-1, keepdims=True)
    d = xp.where(L == lmin, zeros, L - lmin)
    log_y = xp.where(supp, xp.log(xp.where(supp, y, xp.ones_like(y))), neg_inf)
    y0 = xp.where(supp, y, zeros)

    d_in = xp.min(xp.where(supp, d, inf), axis=-1, keepdims=True)
    d_out = xp.min(xp.where(supp, inf, d), axis=-1, keepdims=True)
    out_best = (~supp) & (d == d_out)

    # Case B: mass leaves the support for the best outside class (d_out = 0 < d_in).
    can_leave = d_out < d_in
    d_b = xp.where(supp, d - d_out, xp.ones_like(d))
    d_b = xp.where(can_leave, d_b, xp.ones_like(d))
    log_db = xp.log(d_b)
    e_log = xp.sum(y0 * log_db, axis=-1, keepdims=True)
    h_b = e_log + logsumexp(xp, log_y - log_db)
    leave = can_leave & (gamma >= h_b)
    v_in = xp.exp(e_log - gamma + log_y - log_db)
    v_in = xp.where(supp, xp.maximum(v_in, tiny), v_in)  # no underflow to 0 on the support
    rest = xp.maximum(1.0 - xp.sum(v_in, axis=-1, keepdims=True), xp.zeros_like(lmin))
    ob = xp.astype(out_best, L.dtype)
    ob = ob / xp.maximum(xp.sum(ob, axis=-1, keepdims=True), one)
    v_leave = v_in + rest * ob

    # Case A: v ∝ y / (d + e^t) on the support.
    log_d = xp.where(supp & (d > 0), xp.log(xp.where(d > 0, d, xp.ones_like(d))), neg_inf)
    spread = xp.max(xp.where(supp, d, zeros), axis=-1, keepdims=True) - xp.where(
        xp.isfinite(d_in), d_in, xp.zeros_like(d_in)
    )
    pos_d = xp.min(xp.where(supp & (d > 0), d, inf), axis=-1, keepdims=True)
    binding = (spread > 0) & (gamma > 0)
    spread_s = xp.where(binding, spread, one)
    pos_d = xp.where(xp.isfinite(pos_d), pos_d, spread_s)
    gamma_s = xp.maximum(gamma, tiny)
    y_min_set = xp.sum(xp.where(supp & (d == 0), y0, zeros), axis=-1, keepdims=True)
    t_hi = xp.log(spread_s) - xp.log(gamma_s)
    k = 60.0 + gamma_s / xp.maximum(1.0 - y_min_set, work.const(1e-3))
    t_lo = xp.minimum(xp.log(pos_d) - k, t_hi)

    def fun(t):
        log_x = xp.logaddexp(log_d, t)
        a = log_y - log_x
        lse = logsumexp(xp, a)
        h = xp.sum(xp.where(supp, y0 * log_x, zeros), axis=-1, keepdims=True) + lse
        sigma = xp.exp(t - log_x)
        pi = xp.exp(a - lse)
        dh = xp.sum(y0 * sigma, axis=-1, keepdims=True) - xp.sum(pi * sigma, axis=-1, keepdims=True)
        return gamma_s - h, -dh

    t = solve_increasing(xp, lambda _: fun, (L,), t_lo, t_hi, polish=work.polish)
    a = log_y - xp.logaddexp(log_d, t)
    v_stay = xp.exp(a - logsumexp(xp, a))
    v_stay = xp.where(binding, v_stay, y0)
    v = xp.where(leave, v_leave, v_stay)
    return xp.where(gamma <= 0, y0, v)
