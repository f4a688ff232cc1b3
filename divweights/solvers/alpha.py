r"""Alpha divergences, :math:`D_\alpha(w\|u) = \sum_i u_i f_\alpha(w_i/u_i)` with
:math:`f_\alpha(t) = \dfrac{t^\alpha - 1 - \alpha(t-1)}{\alpha(\alpha-1)}`.

The KKT conditions of the instance problem with uniform :math:`u` give the
power (Tsallis, :math:`q = 2-\alpha`) weights

.. math::

    w_i \propto \big[(1-\alpha)\,\ell'_i + c\big]_+^{1/(\alpha-1)},
    \qquad \ell' = \ell - \min\ell,

for a scalar :math:`c > 0`.  Writing :math:`c = e^{s}`,
:math:`y_i = (1-\alpha)\ell'_i` and :math:`r_i(s) = \log(1 + y_i e^{-s})`
(:math:`-\infty` when the bracket is negative),
:math:`w = \mathrm{softmax}(p\,r)` with :math:`p = 1/(\alpha-1)`.  Since
:math:`p\,r_i \le 0`, with equality at the minimisers, the softmax needs no
shift.  Everything below is a monotone scalar equation in :math:`s`:

* penalty :math:`\lambda`: normalisation gives the power mean identity
  :math:`\lambda = M_p\big((1-\alpha)\ell' + c\big)`, i.e.
  :math:`s + \Lambda(1)/p = \log\lambda` with
  :math:`\Lambda(t) = \log \operatorname{mean}_i e^{t p r_i}`, and
  :math:`c/\lambda` lies between :math:`1` and :math:`n^{\alpha-1}`;
* radius :math:`\delta`: :math:`D_\alpha(w\|u) = \operatorname{expm1}(\Lambda(\alpha) - \alpha\Lambda(1)) / (\alpha(\alpha-1))`
  decreases in :math:`s` (for :math:`\alpha = 0`, reverse KL,
  :math:`D = \Lambda(1) - p\,\operatorname{mean}_i r_i`);
* temperature :math:`T` (the published parameterisation): :math:`c` is given,
  applied to the raw losses, :math:`w \propto [(1-\alpha)\ell + T]_+^{1/(\alpha-1)}`.

Examples with infinite loss get zero weight and the divergence is measured on
the remaining examples.  The radius bracket is built so that its ends are the
limits: at the lower end every non-minimiser is clamped to zero
(:math:`\alpha > 1`) or weighs less than :math:`e^{-60}` of a minimiser, the
answer when the radius cannot bind; at the upper end the weights are uniform
to rounding, the answer for :math:`\delta = 0`.
"""

from __future__ import annotations

import math

from .._array import safe_log, softmax_or, uniform_on_minimisers
from .._root import solve_increasing, zero_strength

__all__ = ["alpha_constrained", "alpha_penalty", "alpha_temperature"]


def alpha_temperature(losses, a: float, temperature, work):
    """Published parameterisation: ``w ∝ max((1-a) losses + T, 0) ** (1/(a-1))``.

    When every weight clamps to zero (``a > 1``, tiny ``T``) the result is the
    limit, uniform on the minimisers.  For ``a < 1`` a nonpositive bracket
    (possible only for negative losses) is treated as the limit of an
    infinitely large weight.
    """
    xp = work.xp
    p = 1.0 / (a - 1.0)
    base = (1.0 - a) * losses + temperature
    base = xp.clip(base, min=0.0 if a > 1 else float(work.finfo.smallest_normal))
    return softmax_or(xp, p * xp.log(base), xp.log(uniform_on_minimisers(xp, losses)))


class _Power:
    """The power family on the shifted losses ``lp`` (``+inf``: excluded) of one set of rows,
    evaluated in log space: ``r(s) = log(1 + y e^{-s})`` from ``log|y| - s`` never overflows."""

    def __init__(self, xp, lp, a: float, work):
        self.xp, self.a, self.p = xp, a, 1.0 / (a - 1.0)
        self.tiny = float(work.finfo.smallest_normal)
        self.big = 1.0 / self.tiny
        self.log_ay = safe_log(xp, lp) + math.log(abs(1.0 - a))  # log|y|: -inf at the minimisers
        self.support = lp < math.inf
        self.count = xp.sum(xp.astype(self.support, lp.dtype), axis=-1, keepdims=True)

    def r(self, s):
        """``log(1 + y e^{-s})``; ``-inf`` where the bracket is clamped (``a > 1``)."""
        xp = self.xp
        u = self.log_ay - s
        if self.a < 1:  # y >= 0
            return xp.logaddexp(xp.zeros_like(u), u)
        return xp.log1p(-xp.clip(xp.exp(u), max=1.0))

    def inv_one_plus_z(self, r):
        """``1 / (1 + y e^{-s}) = e^{-r}``, kept finite where the bracket is clamped."""
        return self.xp.clip(self.xp.exp(-r), max=self.big)

    def weights(self, s):
        xp = self.xp
        e = xp.exp(self.p * self.r(s))  # p r <= 0: no shift needed
        return e / xp.sum(e, axis=-1, keepdims=True)


def _steps(a: float, work) -> dict:
    """Root-finder settings: one Newton step more than KL (whose residual is nearly
    linear in ``log beta``).  For ``a > 1`` the equations have a kink wherever a
    weight reaches zero, and for ``a > 2`` a weight leaves zero like
    ``(c - c_k)^{1/(a-1)}``, with an infinite slope: the steps are safeguarded
    by bisection, and more of them are taken."""
    if a <= 1:
        return {"steps": work.polish + 1}
    if a <= 2:
        return {"steps": 2 * work.polish + 4, "safeguarded": True}
    return {"steps": 4 * work.polish + 8, "safeguarded": True}


def _shifted(xp, losses):
    """``losses - min(losses)``: exact zeros at the minimisers, ``+inf`` kept."""
    return losses - xp.min(losses, axis=-1, keepdims=True)


def alpha_penalty(losses, a: float, lam, work):
    """Exact solution of ``min <w, losses> + lam * D_a(w || u)`` over the simplex.

    ``lam`` is clipped to ``[tiny, 1 / tiny]``: a strength that underflows to
    zero gives the limit (uniform on the minimisers) rather than NaN.
    """
    xp = work.xp
    tiny = float(work.finfo.smallest_normal)
    lp = _shifted(xp, losses)
    p = 1.0 / (a - 1.0)
    log_lam = xp.log(xp.clip(lam, min=tiny, max=1.0 / tiny))
    span = (a - 1.0) * xp.log(_Power(xp, lp, a, work).count)
    lo = log_lam + xp.clip(span, max=0.0)
    hi = log_lam + xp.clip(span, min=0.0)

    def make_fun(lp_rows):
        fam = _Power(xp, lp_rows, a, work)
        log_count = xp.log(fam.count)

        def fun(s, slope):
            r = fam.r(s)
            e = xp.exp(p * r)  # <= 1, and 1 at the minimisers
            s0 = xp.sum(e, axis=-1, keepdims=True)
            g = s + (xp.log(s0) - log_count) / p - log_lam
            if not slope:
                return g, None
            # dg/ds = E_w[e^{-r}]; clamped entries weigh 0 (and e^{-r} is kept finite)
            return g, xp.sum(e * fam.inv_one_plus_z(r), axis=-1, keepdims=True) / s0

        return fun

    s = solve_increasing(xp, make_fun, (lp,), lo, hi, **_steps(a, work))
    return _Power(xp, lp, a, work).weights(s)


def _divergence_fun(xp, fam, delta_s):
    """``fun(s, slope)`` with ``f = delta - D_a(w(s) || u)`` (increasing in ``s``).

    ``D`` is infinite at the lower end of the bracket for ``a <= 0`` (weights
    underflow to 0); it is clipped to the largest finite number."""
    a, p = fam.a, fam.p
    big = float(xp.finfo(fam.log_ay.dtype).max)
    log_count = xp.log(fam.count)
    neg_inf = xp.full_like(fam.log_ay, -math.inf) if a < 0 else None

    def fun(s, slope):
        r = fam.r(s)
        logits = p * r  # <= 0, 0 at the minimisers
        e1 = xp.exp(logits)
        s1 = xp.sum(e1, axis=-1, keepdims=True)
        lam1 = xp.log(s1) - log_count
        if slope:
            rho = xp.clip(xp.expm1(-r), max=fam.big)  # finite where clamped
            m1 = xp.sum(e1 * rho, axis=-1, keepdims=True) / s1
        if a == 0.0:  # reverse KL: D = Lambda(1) - p mean(r) on the support
            on = fam.support
            mean_r = xp.sum(xp.where(on, r, xp.zeros_like(r)), axis=-1, keepdims=True) / fam.count
            value = xp.clip(lam1 - p * mean_r, max=big)
            if not slope:
                return delta_s - value, None
            mean_rho = xp.sum(xp.where(on, rho, xp.zeros_like(rho)), axis=-1, keepdims=True) / fam.count
            return delta_s - value, -p * (m1 - mean_rho)
        if a < 0:  # a * logits >= 0: shift by the largest one on the support
            logits_a = xp.where(fam.support, a * logits, neg_inf)
            top = xp.max(logits_a, axis=-1, keepdims=True)
            ea = xp.exp(logits_a - top)
            sa = xp.sum(ea, axis=-1, keepdims=True)
            lam_a = xp.log(sa) + top
        else:  # a * logits <= 0, 0 at the minimisers
            ea = xp.exp(a * logits)
            sa = xp.sum(ea, axis=-1, keepdims=True)
            lam_a = xp.log(sa)
        gap = lam_a - log_count - a * lam1
        value = xp.clip(xp.expm1(gap) / (a * (a - 1.0)), max=big)
        if not slope:
            return delta_s - value, None
        ma = xp.sum(ea * rho, axis=-1, keepdims=True) / sa
        return delta_s - value, -xp.exp(gap) * (ma - m1) / ((a - 1.0) ** 2)

    return fun


def alpha_constrained(losses, a: float, delta, work):
    """Exact solution of ``min <w, losses>  s.t.  D_a(w || u) <= delta``."""
    xp = work.xp
    tiny = float(work.finfo.smallest_normal)
    lp = _shifted(xp, losses)
    p = 1.0 / (a - 1.0)
    fam = _Power(xp, lp, a, work)
    delta_s = xp.clip(delta, min=tiny)
    # |y| over the examples with positive finite loss: largest (tiny if none) and smallest
    ay = abs(1.0 - a) * xp.where(fam.support, lp, xp.zeros_like(lp))
    y_max = xp.clip(xp.max(ay, axis=-1, keepdims=True), min=tiny)
    gap = xp.min(xp.where(ay > 0, ay, xp.full_like(ay, math.inf)), axis=-1, keepdims=True)
    # Upper end: the weights deviate from uniform by at most ~|p| y_max e^{-s}, so
    # D <= delta / 8 there (and y_max e^{-s} <= e^{-2} / 2: nothing is clamped).
    hi = xp.log(y_max) + xp.clip(math.log(2.0 * abs(p)) - 0.5 * xp.log(delta_s), min=math.log(2.0)) + 2.0
    if a > 1:  # lower end: every non-minimiser is clamped, the limit
        lo = xp.log(gap) - 1.0
    else:
        # Lower end: every non-minimiser has n w_i <= e^{-k'} with e^{s} w_i/w_min <= (gap e^{-s})^p.
        # k' = 60 makes the weights the limit (uniform on the minimisers) to e^{-60}; for a <= 0,
        # where D is unbounded, also D >= ((n - m) / n) f(e^{-k'}) >= delta: with r = n / (n - m),
        # k' >= 1 + delta r (a = 0) or log(1 + delta a (a - 1) r) / |a| (a < 0).
        m = xp.sum(xp.astype(fam.support & (lp == 0), lp.dtype), axis=-1, keepdims=True)
        r = fam.count / xp.clip(fam.count - m, min=1.0)
        d_r = xp.clip(delta_s, max=1e3) * r
        if a == 0:
            k = xp.clip(1.0 + d_r, min=60.0)
        elif a < 0:
            k = xp.clip(xp.log1p(a * (a - 1.0) * d_r) / abs(a), min=60.0)
        else:
            k = 60.0
        lo = xp.log(gap) - (k + xp.log(fam.count)) / abs(p)
    lo = xp.minimum(lo, hi)

    def make_fun(lp_rows):
        return _divergence_fun(xp, _Power(xp, lp_rows, a, work), delta_s)

    s = solve_increasing(xp, make_fun, (lp,), lo, hi, **_steps(a, work))
    return zero_strength(xp, delta, xp.astype(fam.support, lp.dtype) / fam.count, fam.weights(s))
