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
  :func:`divweights._root.solve_increasing`.  Its bracket ends are the
  limits: at the upper end :math:`v = y` to rounding (:math:`\gamma = 0`, or
  all target classes equally good).

Every target class keeps a positive weight, at least the smallest normal
number of the dtype returned to the caller (``float16`` results are computed
in ``float32``: their floor is float16's), so that :math:`\mathrm{KL}(y\|v)`
stays finite in every dtype.  Raising a weight that small to the floor only
lowers :math:`\mathrm{KL}(y\|v)`.
"""

from __future__ import annotations

import math

from .._array import clip, logsumexp
from .._root import solve_increasing, zero_strength
from .total_variation import move_onehot

__all__ = ["reverse_kl_class", "reverse_kl_class_onehot", "reverse_kl_label_keep", "reverse_kl_label_keep_float"]


def _floor(work) -> float:
    """Smallest weight of a target class: the smallest normal number of the output dtype."""
    return float(work.xp.finfo(work.out_dtype).smallest_normal)


def reverse_kl_label_keep(xp, gamma, work):
    """Mass the label keeps under a reverse-KL radius ``gamma``: ``exp(-gamma)``, at least the
    smallest normal number of the output dtype (it underflows for large ``gamma``)."""
    return clip(xp, xp.exp(-gamma), min=_floor(work))


def reverse_kl_label_keep_float(gamma: float, work) -> float:
    """:func:`reverse_kl_label_keep` for a Python number (NumPy's small-batch path)."""
    return max(math.exp(-gamma), _floor(work))


def reverse_kl_class_onehot(L, onehot, gamma, work):
    """Closed form for one-hot targets: ``v_y = exp(-gamma)``, the rest on the argmin."""
    xp = work.xp
    return move_onehot(xp, L, onehot, reverse_kl_label_keep(xp, gamma, work))


def _stay_fun(xp, gamma_s):
    """``make_fun(d, log_y, log_d, y0)``: ``f(t) = gamma - h(t)`` for the mass-stays case (``d``
    only gives a sketch of the rows its extremes; the function reads ``log d`` on the support,
    ``log y`` and ``y``, computed once by the caller)."""

    def make_fun(d, log_y, log_d, y0):
        def fun(t, slope):
            log_x = xp.logaddexp(log_d, t)  # t off the support: finite, so y0 * log_x is 0 there
            a = log_y - log_x
            lse = logsumexp(xp, a)
            h = xp.sum(y0 * log_x, axis=-1, keepdims=True) + lse
            if not slope:
                return gamma_s - h, None
            sigma = xp.exp(t - log_x)
            pi = xp.exp(a - lse)
            return gamma_s - h, xp.sum((pi - y0) * sigma, axis=-1, keepdims=True)

        return fun

    return make_fun


def reverse_kl_class(L, y, gamma, work):
    """General (soft target) solution; rows that are one-hot give the closed form."""
    xp = work.xp
    zeros = xp.zeros_like(L)
    inf = xp.full_like(L, math.inf)
    tiny = float(work.finfo.smallest_normal)
    supp = y > 0
    d = L - xp.min(L, axis=-1, keepdims=True)
    log_y = xp.log(y)  # y >= 0: -inf off the support (the callers silence NumPy's warning)
    y0 = y  # a distribution: zero off the support
    log_d = xp.where(supp, xp.log(d), -math.inf)  # d >= 0: log(0) = -inf, no NaN

    d_in = xp.min(xp.where(supp, d, inf), axis=-1, keepdims=True)
    d_out = xp.min(xp.where(supp, inf, d), axis=-1, keepdims=True)
    out_best = (~supp) & (d == d_out)

    # Case B: mass leaves the support for the best outside class (d_out = 0 < d_in).
    can_leave = d_out < d_in
    d_b = xp.where(supp & can_leave, d - d_out, xp.ones_like(d))
    log_db = xp.log(d_b)
    e_log = xp.sum(y0 * log_db, axis=-1, keepdims=True)
    h_b = e_log + logsumexp(xp, log_y - log_db)
    leave = can_leave & (gamma >= h_b)
    v_in = xp.exp(e_log - gamma + log_y - log_db)
    v_in = xp.where(supp, xp.clip(v_in, min=_floor(work)), v_in)  # no underflow to 0 on the support
    rest = xp.clip(1.0 - xp.sum(v_in, axis=-1, keepdims=True), min=0.0)
    ob = xp.astype(out_best, L.dtype)
    v_leave = v_in + rest * ob / xp.clip(xp.sum(ob, axis=-1, keepdims=True), min=1.0)

    # Case A: v ∝ y / (d + e^t) on the support.
    # finiteness tests are 4 operations on torch (abs, ne, eq, and): compare with inf instead
    d_in0 = xp.where(d_in < math.inf, d_in, 0.0)
    spread = xp.clip(xp.max(xp.where(supp, d, zeros), axis=-1, keepdims=True) - d_in0, min=tiny)
    pos_d = xp.min(xp.where(supp & (d > 0), d, inf), axis=-1, keepdims=True)
    pos_d = xp.where(pos_d < math.inf, pos_d, spread)
    gamma_s = xp.clip(gamma, min=tiny)
    y_min_set = xp.sum(xp.where(supp & (d == 0), y0, zeros), axis=-1, keepdims=True)
    # Upper end: h <= spread e^{-t} <= gamma there (v = y to rounding at gamma -> 0).
    # Lower end: the best target classes hold all but ~exp(-60) of the mass.
    t_hi = xp.log(spread) - xp.log(gamma_s)
    k = 60.0 + gamma_s / xp.clip(1.0 - y_min_set, min=1e-3)
    t_lo = xp.minimum(xp.log(pos_d) - k, t_hi)
    # past either end the weights only move further toward the end's limit: the Newton step may pass them
    rows = (d, log_y, log_d, y0)
    t = solve_increasing(xp, _stay_fun(xp, gamma_s), rows, t_lo, t_hi, steps=work.polish, past_ends=True)
    a = log_y - xp.logaddexp(log_d, t)
    v_stay = xp.exp(a - logsumexp(xp, a))
    v_stay = xp.where(supp, xp.clip(v_stay, min=_floor(work)), v_stay)
    v_stay = v_stay / xp.sum(v_stay, axis=-1, keepdims=True)
    return zero_strength(xp, gamma, y0, xp.where(leave, v_leave, v_stay))
