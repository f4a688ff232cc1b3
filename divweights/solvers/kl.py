r"""Kullback-Leibler divergence, :math:`\mathrm{KL}(w \,\|\, q) = \sum_i w_i \log(w_i / q_i)`.

Penalty form: :math:`\min_{w \in \Delta} \langle w, \ell\rangle + \lambda\,\mathrm{KL}(w\|q)`
has the Gibbs solution :math:`w_i \propto q_i e^{-\ell_i/\lambda}` (softmin).

Constraint form: :math:`\min \langle w, \ell\rangle` s.t. :math:`\mathrm{KL}(w\|q) \le \delta`.
Along the Gibbs path :math:`w(\beta) \propto q\,e^{-\beta \ell}`,

.. math::

    \mathrm{KL}(\beta) = -\beta\,\mathbb{E}_{w}[\ell'] - \log \sum_i q_i e^{-\beta \ell'_i},
    \qquad \frac{d\,\mathrm{KL}}{d\beta} = \beta\,\mathrm{Var}_{w}[\ell'] \ge 0,

with :math:`\ell' = \ell - \min \ell`.  The radius is reached by a safeguarded
Newton solve in :math:`\log\beta`.  When :math:`\delta \ge -\log q(M)`, where
:math:`M` is the set of minimisers, the constraint cannot bind and the answer
is :math:`q` restricted to :math:`M`.
"""

from __future__ import annotations

import math

from .._array import logsumexp
from .._root import solve_increasing

__all__ = ["kl_penalty", "kl_constrained"]

def shifted(xp, l, support=None):
    """``l - min(l)`` over ``support`` with exact zeros at the minimisers (also
    for ``-inf`` minima) and zeros off the support."""
    if support is None:
        lmin = xp.min(l, axis=-1, keepdims=True)
        return xp.where(l == lmin, xp.zeros_like(l), l - lmin)
    inf = xp.full_like(l, math.inf)
    lmin = xp.min(xp.where(support, l, inf), axis=-1, keepdims=True)
    lp = xp.where(l == lmin, xp.zeros_like(l), l - lmin)
    return xp.where(support, lp, xp.zeros_like(l))


def kl_penalty(l, lam, work):
    """Softmin ``w ∝ exp(-(l - min l) / lam)`` over the last axis."""
    xp = work.xp
    lp = shifted(xp, l)
    # explicit -inf: XLA may compute inf / lam as inf * (1 / lam) with 1 / lam flushed to 0
    logits = xp.where(lp == math.inf, xp.full_like(lp, -math.inf), -lp / lam)
    m = xp.max(logits, axis=-1, keepdims=True)  # 0: the minimisers
    e = xp.exp(logits - m)
    return e / xp.sum(e, axis=-1, keepdims=True)


def _moments_fun(xp, lp, logq, delta):
    """``v -> (KL(exp(v)) - delta, d/dv)`` along the Gibbs path with prior ``q``
    (``lp = +inf`` off the support of ``q``)."""
    logq = logq - logsumexp(xp, logq)
    support = logq > -math.inf
    lp = xp.where(support, lp, xp.zeros_like(lp))
    lp = lp - xp.min(xp.where(support, lp, xp.full_like(lp, math.inf)), axis=-1, keepdims=True)
    lp = xp.where(support, lp, xp.zeros_like(lp))

    def fun(v):
        beta = xp.exp(v)
        logits = logq - beta * lp
        lse = logsumexp(xp, logits)
        s = xp.exp(logits - lse)
        e1 = xp.sum(s * lp, axis=-1, keepdims=True)
        e2 = xp.sum(s * (lp * lp), axis=-1, keepdims=True)
        var = xp.maximum(e2 - e1 * e1, xp.zeros_like(e1))
        kl = -beta * e1 - lse
        return kl - delta, beta * beta * var

    return fun


def _uniform_moments_fun(xp, lp, delta):
    """KL along the Gibbs path for a uniform prior, ``lp = +inf`` marking
    excluded examples: one exponential and one matrix-vector product per
    evaluation (the hot path of large-batch exact-radius KL)."""
    support = lp < math.inf
    lp0 = xp.where(support, lp, xp.zeros_like(lp))
    shift = xp.min(xp.where(support, lp0, xp.full_like(lp, math.inf)), axis=-1, keepdims=True)
    lp = lp - shift
    lp0 = xp.where(support, lp, xp.zeros_like(lp))
    powers = xp.stack([lp0, lp0 * lp0], axis=-2)  # (..., 2, n), rows contiguous
    log_n = xp.log(xp.sum(xp.astype(support, lp.dtype), axis=-1, keepdims=True))

    def fun(v):
        beta = xp.exp(v)
        e = xp.exp(-beta * lp)  # 1 at the minimisers, 0 at +inf
        s0 = xp.sum(e, axis=-1, keepdims=True)
        mom = xp.matmul(powers, e[..., None])[..., 0]  # (..., 2)
        e1 = mom[..., 0:1] / s0
        var = xp.maximum(mom[..., 1:2] / s0 - e1 * e1, xp.zeros_like(e1))
        kl = log_n - beta * e1 - xp.log(s0)
        return kl - delta, beta * beta * var

    return fun


def kl_constrained(l, delta, work, logq=None):
    """Exact solution of ``min <w, l>  s.t.  KL(w || q) <= delta``.

    ``logq`` is the log prior (``None``: uniform); entries with ``logq = -inf``
    or ``l = +inf`` get zero weight (the prior is renormalised on the rest).
    """
    if logq is None:
        return _kl_constrained_uniform(l, delta, work)
    xp = work.xp
    neg_inf = xp.full_like(l, -math.inf)
    finite = ~(xp.isinf(l) & (l > 0))
    support = finite & (logq > -math.inf)
    logq = xp.where(support, logq, neg_inf)
    logq = logq - logsumexp(xp, logq)
    lp = shifted(xp, l, support)
    minimisers = support & (lp == 0)
    log_qm = logsumexp(xp, xp.where(minimisers, logq, neg_inf))
    mean_q = xp.sum(xp.exp(logq) * lp, axis=-1, keepdims=True)
    gap = xp.min(xp.where(lp > 0, lp, xp.full_like(l, math.inf)), axis=-1, keepdims=True)
    lp_inf = xp.where(support, lp, xp.full_like(lp, math.inf))
    beta = _solve_beta(
        xp, work, delta, -log_qm, mean_q, gap, xp.exp(log_qm),
        lambda a, b: _moments_fun(xp, a, b, work.const(1.0) * _delta_s(xp, work, delta)),
        (lp_inf, logq),
    )
    logits = logq - beta * lp_inf
    return xp.exp(logits - logsumexp(xp, logits))


def _delta_s(xp, work, delta):
    return xp.maximum(delta, work.const(float(work.finfo.smallest_normal)))


def _solve_beta(xp, work, delta, kl_max, mean_q, gap, q_m, make_fun, arrays):
    """Solve for the Gibbs exponent; non-binding rows get ``beta = max`` (the
    limit, uniform on the minimisers) and ``delta = 0`` gives ``beta ~ 0``."""
    one = work.const(1.0)
    tiny = work.const(float(work.finfo.smallest_normal))
    binding = (delta < kl_max) & (mean_q > 0) & (delta > 0)
    mean_q = xp.where(binding, mean_q, one)
    gap = xp.where(binding & xp.isfinite(gap), gap, one)
    # KL(beta) <= beta * E_q[l'] gives the lower end; at the upper end every
    # non-minimiser weighs at most exp(-50) relative to the minimisers.
    odds = xp.log(xp.maximum((1 - q_m) / xp.maximum(q_m, tiny), one))
    v_hi = xp.log(odds + 50.0) - xp.log(gap)
    v_lo = xp.minimum(xp.log(_delta_s(xp, work, delta)) - xp.log(mean_q), v_hi)
    v = solve_increasing(xp, make_fun, arrays, v_lo, v_hi, polish=work.polish)
    beta = xp.where(binding, xp.exp(v), work.const(float(work.finfo.max)))
    return xp.where(delta <= 0, tiny, beta)


def _kl_constrained_uniform(l, delta, work):
    """Uniform prior, written for few passes over the batch (it is the
    large-batch hot path)."""
    xp = work.xp
    lmin = xp.min(l, axis=-1, keepdims=True)
    lp = xp.where(l == lmin, xp.zeros_like(l), l - lmin)  # +inf stays +inf
    support = lp < math.inf
    lp0 = xp.where(support, lp, xp.zeros_like(lp))
    count = xp.sum(xp.astype(support, l.dtype), axis=-1, keepdims=True)
    m = xp.sum(xp.astype(lp == 0, l.dtype), axis=-1, keepdims=True)
    mean_q = xp.sum(lp0, axis=-1, keepdims=True) / count
    gap = xp.min(xp.where(lp > 0, lp, xp.full_like(lp, math.inf)), axis=-1, keepdims=True)
    q_m = m / count
    beta = _solve_beta(
        xp, work, delta, xp.log(count) - xp.log(m), mean_q, gap, q_m,
        lambda a: _uniform_moments_fun(xp, a, _delta_s(xp, work, delta)), (lp,),
    )
    e = xp.exp(-beta * lp)
    return e / xp.sum(e, axis=-1, keepdims=True)
