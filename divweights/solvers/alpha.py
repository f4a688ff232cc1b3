r"""Alpha divergences, :math:`D_\alpha(w\|u) = \sum_i u_i f_\alpha(w_i/u_i)` with
:math:`f_\alpha(t) = \dfrac{t^\alpha - 1 - \alpha(t-1)}{\alpha(\alpha-1)}`.

The KKT conditions of the instance problem with uniform :math:`u` give the
power (Tsallis, :math:`q = 2-\alpha`) weights

.. math::

    w_i \propto \big[(1-\alpha)\,\ell'_i + c\big]_+^{1/(\alpha-1)},
    \qquad \ell' = \ell - \min\ell,

for a scalar :math:`c > 0`.  Writing :math:`c = e^{s}`,
:math:`y_i = (1-\alpha)\ell'_i` and :math:`r_i(s) = \log(1 + y_i e^{-s})`
(clipped at :math:`-\infty` when the bracket is negative),
:math:`w = \mathrm{softmax}(p\,r)` with :math:`p = 1/(\alpha-1)`.  Everything
below is a monotone scalar equation in :math:`s`:

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
the remaining examples.
"""

from __future__ import annotations

import math

from .._array import logsumexp, softmax_or
from .._root import solve_increasing
from .kl import shifted

__all__ = ["alpha_temperature", "alpha_penalty", "alpha_constrained", "alpha_limit"]


def _mask_mul(xp, w, x):
    """``w * x`` with ``0 * inf = 0``."""
    return xp.where(w > 0, w * x, xp.zeros_like(w))


def alpha_limit(xp, l):
    """Uniform weights on the minimisers of ``l`` (the strong-reweighting limit)."""
    minimisers = l == xp.min(l, axis=-1, keepdims=True)
    m = xp.astype(minimisers, l.dtype)
    return m / xp.sum(m, axis=-1, keepdims=True)


def alpha_temperature(l, a: float, temperature, work):
    """Published parameterisation: ``w ∝ max((1-a) l + T, 0) ** (1/(a-1))``.

    When every weight clamps to zero (``a > 1``, tiny ``T``) the result is the
    limit, uniform on the minimisers.  For ``a < 1`` a nonpositive bracket
    (possible only for negative losses) is treated as the limit of an
    infinitely large weight.
    """
    xp = work.xp
    p = 1.0 / (a - 1.0)
    base = (1.0 - a) * l + temperature
    if a > 1:
        base = xp.maximum(base, xp.zeros_like(base))
    else:
        base = xp.maximum(base, xp.full_like(base, float(work.finfo.smallest_normal)))
    logits = p * xp.log(base)
    fallback = xp.log(alpha_limit(xp, l))
    return softmax_or(xp, logits, fallback)


class _Family:
    """The power family on shifted losses, with infinite losses excluded."""

    def __init__(self, lp, a: float, work):
        """``lp``: losses minus their minimum, ``+inf`` for excluded examples."""
        xp = self.xp = work.xp
        l = lp
        self.a = a
        self.p = 1.0 / (a - 1.0)
        self.work = work
        support = lp < math.inf
        self.support = support
        on = xp.astype(support, l.dtype)
        self.count = xp.sum(on, axis=-1, keepdims=True)
        self.lp = lp
        self.y = (1.0 - a) * self.lp  # >= 0 for a < 1, <= 0 for a > 1
        self.minimisers = support & (lp == 0)
        self.m = xp.sum(xp.astype(self.minimisers, l.dtype), axis=-1, keepdims=True)
        inf = xp.full_like(l, math.inf)
        fin_y = xp.where(support & (lp > 0), xp.abs(self.y), xp.zeros_like(l))
        self.y_max = xp.max(fin_y, axis=-1, keepdims=True)
        self.gap = xp.min(xp.where(support & (lp > 0), xp.abs(self.y), inf), axis=-1, keepdims=True)
        self.neg_inf = xp.full_like(l, -math.inf)

    def r(self, s):
        xp = self.xp
        y = self.y
        # no 0 * inf, and infinite y stays infinite even if exp(-s) flushes to zero
        z = xp.where(y == 0, xp.zeros_like(y), xp.where(xp.isinf(y), y, y * xp.exp(-s)))
        z = xp.maximum(z, xp.full_like(z, -1.0))
        return xp.log1p(z)

    def lmean(self, logits):
        """log of the mean of exp(logits) over the support."""
        xp = self.xp
        return logsumexp(xp, xp.where(self.support, logits, self.neg_inf)) - xp.log(self.count)

    def weights(self, s):
        xp = self.xp
        logits = self.p * self.r(s)
        return xp.exp(logits - logsumexp(xp, logits))

    def limit(self):
        xp = self.xp
        mm = xp.astype(self.minimisers, self.lp.dtype)
        return mm / xp.sum(mm, axis=-1, keepdims=True)


def _shifted_inf(xp, l):
    """``l - min l`` with ``+inf`` kept for infinite losses."""
    support = ~(xp.isinf(l) & (l > 0))
    lp = shifted(xp, l, support)
    return xp.where(support, lp, xp.full_like(lp, math.inf))


def alpha_penalty(l, a: float, lam, work):
    """Exact solution of ``min <w, l> + lam * D_a(w || u)`` over the simplex."""
    xp = work.xp
    lp = _shifted_inf(xp, l)
    fam = _Family(lp, a, work)
    p = fam.p
    log_lam = xp.log(lam)
    span = (a - 1.0) * xp.log(fam.count)
    lo = log_lam + xp.minimum(span, xp.zeros_like(span))
    hi = log_lam + xp.maximum(span, xp.zeros_like(span))

    def make(lp_rows):
        f = _Family(lp_rows, a, work)

        def fun(s):
            r = f.r(s)
            logits = p * r
            lse = logsumexp(xp, logits)
            w = xp.exp(logits - lse)
            g = s + (lse - xp.log(f.count)) / p - log_lam
            dg = xp.sum(_mask_mul(xp, w, xp.exp(-r)), axis=-1, keepdims=True)
            return g, dg

        return fun

    s = solve_increasing(xp, make, (lp,), lo, hi, polish=work.polish)
    return fam.weights(s)


def _alpha_value_and_slope(fam, s):
    """``D_a(w(s) || u)`` on the support and its derivative in ``s``."""
    xp = fam.xp
    a, p = fam.a, fam.p
    r = fam.r(s)
    rho = xp.expm1(-r)
    logits1 = p * r
    lse1 = logsumexp(xp, logits1)
    w1 = xp.exp(logits1 - lse1)
    lam1 = lse1 - xp.log(fam.count)
    e1 = xp.sum(_mask_mul(xp, w1, rho), axis=-1, keepdims=True)
    if a == 0.0:
        r_fin = xp.where(fam.support, r, xp.zeros_like(r))
        rho_fin = xp.where(fam.support, rho, xp.zeros_like(rho))
        mean_r = xp.sum(r_fin, axis=-1, keepdims=True) / fam.count
        mean_rho = xp.sum(rho_fin, axis=-1, keepdims=True) / fam.count
        value = lam1 - p * mean_r
        slope = p * (e1 - mean_rho)
        return value, slope
    logits_a = xp.where(fam.support, a * logits1, fam.neg_inf)
    lse_a = logsumexp(xp, logits_a)
    wa = xp.exp(logits_a - lse_a)
    lam_a = lse_a - xp.log(fam.count)
    ea = xp.sum(_mask_mul(xp, wa, rho), axis=-1, keepdims=True)
    gap = lam_a - a * lam1
    value = xp.expm1(gap) / (a * (a - 1.0))
    slope = xp.exp(gap) * (ea - e1) / ((a - 1.0) ** 2)
    return value, slope


def alpha_max_divergence(xp, a: float, count, m):
    """``D_a`` of the uniform distribution on ``m`` of ``count`` points from uniform."""
    log_ratio = xp.log(count) - xp.log(m)
    if a > 0:
        return xp.expm1((a - 1.0) * log_ratio) / (a * (a - 1.0))
    return xp.where(m >= count, xp.zeros_like(count), xp.full_like(count, math.inf))


def alpha_constrained(l, a: float, delta, work):
    """Exact solution of ``min <w, l>  s.t.  D_a(w || u) <= delta``."""
    xp = work.xp
    lp = _shifted_inf(xp, l)
    fam = _Family(lp, a, work)
    p = fam.p
    one = work.const(1.0)
    tiny = work.const(float(work.finfo.smallest_normal))
    d_max = alpha_max_divergence(xp, a, fam.count, fam.m)
    binding = (delta < d_max) & (delta > 0) & (fam.y_max > 0)
    delta_s = xp.maximum(delta, tiny)
    y_max = xp.where(binding, fam.y_max, one)
    gap = xp.where(binding & xp.isfinite(fam.gap), fam.gap, one)
    # Upper end: the weights deviate from uniform by at most ~|p| y_max e^{-s},
    # so D <= delta / 8 there.  Lower end: every non-minimiser is clamped
    # (a > 1) or weighs less than exp(-60 - delta n) relative to a minimiser.
    # also y_max e^{-s} <= e^{-2} / 2 there, so that no weight is clamped (a > 1)
    hi = xp.log(y_max) + xp.maximum(math.log(2.0 * abs(p)) - 0.5 * xp.log(delta_s), work.const(math.log(2.0))) + 2.0
    if a > 1:
        lo = xp.log(gap) - 1.0
    else:
        k = 60.0 + xp.minimum(delta_s, work.const(1e3)) * fam.count
        lo = xp.log(gap) - k / abs(p)
    lo = xp.minimum(lo, hi)

    def make(lp_rows):
        f = _Family(lp_rows, a, work)

        def fun(s):
            value, slope = _alpha_value_and_slope(f, s)
            return delta_s - value, -slope

        return fun

    s = solve_increasing(xp, make, (lp,), lo, hi, polish=work.polish)
    w = fam.weights(s)
    w = xp.where(binding, w, fam.limit())
    uniform = xp.astype(fam.support, l.dtype) / fam.count
    return xp.where((delta <= 0) | ((fam.y_max <= 0) & (delta < d_max)), uniform, w)
