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

# Above this batch size the exact-radius solve first runs on a strided
# subsample, then polishes with a few Newton steps on the whole batch.
_SUBSAMPLE_ABOVE = 8192
_SUBSAMPLE_SIZE = 2048
_POLISH_STEPS = 3


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
    logits = -shifted(xp, l) / lam
    m = xp.max(logits, axis=-1, keepdims=True)  # 0: the minimisers
    e = xp.exp(logits - m)
    return e / xp.sum(e, axis=-1, keepdims=True)


def _moments_fun(xp, lp, logq, delta):
    """``v -> (KL(exp(v)) - delta, d/dv)`` along the Gibbs path with prior ``q``."""

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


def _uniform_moments_fun(xp, lp, support, delta):
    """Same as :func:`_moments_fun` for a prior uniform on ``support``, with one
    exponential and one matrix-vector product per evaluation (the hot path of
    large-batch exact-radius KL)."""
    on = xp.astype(support, lp.dtype)
    powers = xp.stack([on, lp * on, lp * lp * on], axis=-1)  # (..., n, 3)
    log_n = xp.log(xp.sum(on, axis=-1, keepdims=True))

    def fun(v):
        beta = xp.exp(v)
        e = xp.exp(-beta * lp)  # max is 1 at the minimisers
        mom = xp.matmul(e[..., None, :], powers)[..., 0, :]  # (..., 3)
        s0, s1, s2 = mom[..., 0:1], mom[..., 1:2], mom[..., 2:3]
        e1 = s1 / s0
        var = xp.maximum(s2 / s0 - e1 * e1, xp.zeros_like(e1))
        kl = log_n - beta * e1 - xp.log(s0)
        return kl - delta, beta * beta * var

    return fun


def kl_constrained(l, delta, work, logq=None):
    """Exact solution of ``min <w, l>  s.t.  KL(w || q) <= delta``.

    ``logq`` is the log prior (``None``: uniform); entries with ``logq = -inf``
    or ``l = +inf`` get zero weight (the prior is renormalised on the rest).
    """
    xp = work.xp
    n = l.shape[-1]
    neg_inf = xp.full_like(l, -math.inf)
    finite = ~(xp.isinf(l) & (l > 0))
    uniform = logq is None
    if uniform:
        logq = xp.full_like(l, -math.log(n))
    support = finite & (logq > -math.inf)
    logq = xp.where(support, logq, neg_inf)
    logq = logq - logsumexp(xp, logq)
    lp = shifted(xp, l, support)
    minimisers = support & (lp == 0)
    log_qm = logsumexp(xp, xp.where(minimisers, logq, neg_inf))
    w_lim = xp.exp(xp.where(minimisers, logq - log_qm, neg_inf))
    prior = xp.exp(logq)

    tiny = work.const(float(work.finfo.tiny))
    one = work.const(1.0)
    delta_s = xp.maximum(delta, tiny)
    mean_q = xp.sum(prior * lp, axis=-1, keepdims=True)
    inf = xp.full_like(l, math.inf)
    gap = xp.min(xp.where(lp > 0, lp, inf), axis=-1, keepdims=True)
    binding = (delta < -log_qm) & (mean_q > 0) & (delta > 0)
    mean_q = xp.where(binding, mean_q, one)
    gap = xp.where(binding & xp.isfinite(gap), gap, one)
    # KL(beta) <= beta * E_q[l'] gives the lower end; at the upper end every
    # non-minimiser weighs at most exp(-50) relative to the minimisers.
    q_m = xp.exp(log_qm)
    odds = xp.log(xp.maximum((1 - q_m) / xp.maximum(q_m, tiny), one))
    v_hi = xp.log(odds + 50.0) - xp.log(gap)
    v_lo = xp.minimum(xp.log(delta_s) - xp.log(mean_q), v_hi)

    it = work.iterations
    if uniform and n > _SUBSAMPLE_ABOVE:
        stride = n // _SUBSAMPLE_SIZE
        fun_sub = _uniform_moments_fun(xp, lp[..., ::stride], support[..., ::stride], delta_s)
        v0 = solve_increasing(xp, fun_sub, v_lo, v_hi, iterations=it)
        fun = _uniform_moments_fun(xp, lp, support, delta_s)
        v = solve_increasing(xp, fun, v_lo, v_hi, iterations=_POLISH_STEPS, x0=v0)
    else:
        fun = _moments_fun(xp, lp, logq, delta_s)
        v = solve_increasing(xp, fun, v_lo, v_hi, iterations=it)
    beta = xp.exp(v)
    logits = logq - beta * lp
    w = xp.exp(logits - logsumexp(xp, logits))
    w = xp.where(binding, w, w_lim)
    return xp.where(delta <= 0, prior, w)

