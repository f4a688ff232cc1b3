r"""Kullback-Leibler divergence, :math:`\mathrm{KL}(w \,\|\, q) = \sum_i w_i \log(w_i / q_i)`.

Penalty form: :math:`\min_{w \in \Delta} \langle w, \ell\rangle + \lambda\,\mathrm{KL}(w\|q)`
has the Gibbs solution :math:`w_i \propto q_i e^{-\ell_i/\lambda}` (softmin).

Constraint form: :math:`\min \langle w, \ell\rangle` s.t. :math:`\mathrm{KL}(w\|q) \le \delta`.
Along the Gibbs path :math:`w(\beta) \propto q\,e^{-\beta \ell}`, with
:math:`t_i = -\beta(\ell_i - \min\ell)`,

.. math::

    \mathrm{KL}(\beta) = \mathbb{E}_{w}[t] - \log \sum_i q_i e^{t_i},
    \qquad \frac{d\,\mathrm{KL}}{d\log\beta} = \mathrm{Var}_{w}[t] \ge 0,

so the radius is a monotone equation in :math:`v = \log\beta`, solved by
:func:`divweights._root.solve_increasing` on the bracket

* :math:`\beta \ge \delta / \max\ell'` (Jensen: :math:`\mathrm{KL}(\beta) \le \beta\,\mathbb{E}_q[\ell']`), and
* :math:`\beta \le K / g` with :math:`g` the smallest positive :math:`\ell'`: there every
  non-minimiser weighs at most :math:`e^{-50}` of the minimisers' mass.

When :math:`\delta \ge -\log q(M)`, where :math:`M` is the set of minimisers,
the constraint cannot bind, :math:`\mathrm{KL}(\beta) < \delta` on the whole
bracket, and the root finder returns its upper end: :math:`q` restricted to
:math:`M` (to :math:`e^{-50}`).  :math:`\delta = 0` returns the lower end,
where the weights equal :math:`q` to rounding.  Examples with infinite loss
(or zero prior) are excluded.
"""

from __future__ import annotations

import math

from .._array import is_eager_numpy, logsumexp, normalised_exp
from .._root import solve_increasing, zero_strength

__all__ = ["kl_constrained", "kl_penalty"]

#: shifted, scaled exponents t = -beta * l' are clipped at -EXP_FLOOR: exp(-EXP_FLOOR) is 0
#: in every dtype, and the moments never meet 0 * inf for excluded (infinite) losses
EXP_FLOOR = 1e4
#: the upper end of the bracket leaves at most exp(-TAIL) of the mass off the minimisers
TAIL = 50.0


def kl_penalty(losses, lam, work):
    """Softmin ``w ∝ exp(-(losses - min losses) / lam)`` over the last axis.

    ``lam`` is clipped to ``[tiny, 1 / tiny]`` (``tiny``: the smallest normal
    number of the dtype): a strength that underflows to zero gives the limit,
    uniform weights on the minimisers, and ``1 / lam`` never flushes to zero.
    """
    xp = work.xp
    tiny = float(work.finfo.smallest_normal)
    lam = xp.clip(lam, min=tiny, max=1.0 / tiny)
    t = xp.min(losses, axis=-1, keepdims=True) - losses
    if is_eager_numpy(xp, t):  # one array of the row's size in all
        t /= lam
    else:
        t = t / lam
    return normalised_exp(xp, t)


def _make_fun(xp, delta, with_prior: bool):
    """``make_fun(nlp[, logq])`` for :func:`solve_increasing`: the residual
    ``KL(w(e^v) || q) - delta`` and its derivative in ``v``, where
    ``nlp = -(l - min l) / scale`` (``-inf`` for excluded examples)."""

    def make_fun(nlp, logq=None):
        # total prior mass, summed as s0 sums it (so that beta -> 0 gives exactly KL = 0):
        # the number of examples with finite loss for the uniform prior, 1 up to rounding otherwise
        if with_prior:
            count = xp.sum(xp.exp(logq), axis=-1, keepdims=True)
        else:
            count = xp.sum(xp.astype(nlp > -math.inf, nlp.dtype), axis=-1, keepdims=True)

        def fun(v, slope):
            t = xp.clip(xp.exp(v) * nlp, min=-EXP_FLOOR)
            e = xp.exp(t if logq is None else t + logq)
            s0 = xp.sum(e, axis=-1, keepdims=True)
            et = e * t
            m1 = xp.sum(et, axis=-1, keepdims=True) / s0
            # KL = E_w[t] - log E_q[e^t]; E_q[e^t] is near 1 for small radii: no cancellation
            f = m1 - xp.log(s0 / count) - delta
            if not slope:
                return f, None
            return f, xp.sum(et * t, axis=-1, keepdims=True) / s0 - m1 * m1

        return fun

    return make_fun


def kl_constrained(losses, delta, work, logq=None):
    """Exact solution of ``min <w, losses>  s.t.  KL(w || q) <= delta``.

    ``logq`` is the log prior (``None``: uniform); entries with ``logq = -inf``
    or ``losses = +inf`` get zero weight (the prior is renormalised on the rest).
    """
    xp = work.xp
    tiny = float(work.finfo.smallest_normal)
    n = losses.shape[-1]
    if logq is None and is_eager_numpy(xp, losses):
        top = xp.max(losses, axis=-1, keepdims=True)
        if bool(xp.all(top < math.inf)):  # eager host value: no infinite loss to exclude
            return _kl_uniform_numpy(losses, delta, work, top)
    if logq is None:
        support = losses < math.inf
        m = xp.min(losses, axis=-1, keepdims=True)
        far = TAIL + math.log(max(n, 2))  # beyond beta * gap = far no radius binds
        top = math.log(max(n, 2))  # no radius above log(n) binds
    else:
        support = (losses < math.inf) & (logq > -math.inf)
        m = xp.min(xp.where(support, losses, xp.full_like(losses, math.inf)), axis=-1, keepdims=True)
        logq = xp.where(support, logq, xp.full_like(logq, -math.inf))
        logq = logq - logsumexp(xp, logq)
        far = top = TAIL - math.log(tiny)  # log((1 - q(M)) / q(M)) <= -log(min q) <= -log(tiny)
    scale = xp.clip(xp.max(xp.where(support, losses, m), axis=-1, keepdims=True) - m, min=tiny)
    nlp = (m - losses) / scale  # in [-1, 0] on the support, -inf for infinite losses
    if logq is not None:
        nlp = xp.where(support, nlp, xp.full_like(nlp, -math.inf))
    # KL(beta) <= beta * E_q[-nlp] <= beta, so beta >= delta; at beta = far / gap,
    # with gap the smallest positive -nlp (1 if none), the non-minimisers are negligible
    neg_gap = xp.max(nlp - xp.astype(nlp >= 0, nlp.dtype), axis=-1, keepdims=True)
    # a relative gap below the dtype's eps is rounding: flooring it keeps beta = e^hi finite (two losses
    # of 4e-37 and 7e-37 among losses of order 1 gave beta = inf in float32, and inf * 0 = NaN weights)
    hi = math.log(far) - xp.log(xp.clip(-neg_gap, min=float(work.finfo.eps)))
    # beta >= sqrt(tiny) e^{-h} stays a normal number (XLA flushes subnormals to zero, and
    # 0 * -inf is NaN for the excluded examples); the weights are uniform to rounding there
    lo = xp.log(xp.clip(delta, min=math.sqrt(tiny), max=top))
    arrays = (nlp,) if logq is None else (nlp, logq)
    v = solve_increasing(xp, _make_fun(xp, delta, logq is not None), arrays, lo, hi, steps=work.polish)
    # delta = 0: the residual is zero up to rounding for every tiny beta; the lower end is exact
    v = zero_strength(xp, delta, lo, v)
    t = xp.exp(v) * nlp
    return normalised_exp(xp, t if logq is None else t + logq)


def _kl_uniform_numpy(losses, delta, work, top):
    """:func:`kl_constrained` for NumPy rows with a uniform prior and no infinite
    loss: the same bracket and finder, written for few passes over the rows and
    little memory.  Besides the result it holds one array of the rows' size
    (the scaled losses) and one buffer while solving."""
    import numpy as np

    xp = work.xp
    tiny = float(work.finfo.smallest_normal)
    n = losses.shape[-1]
    m = np.min(losses, axis=-1, keepdims=True)
    nlp = np.subtract(m, losses)
    nlp /= np.maximum(top - m, tiny)  # in [-1, 0]
    neg_gap = np.max(nlp, axis=-1, keepdims=True, where=nlp < 0, initial=-1.0)
    hi = math.log(TAIL + math.log(max(n, 2))) - np.log(-neg_gap)
    lo = np.log(np.clip(delta, math.sqrt(tiny), math.log(max(n, 2))))
    lo = np.broadcast_to(lo, hi.shape)
    generic = _make_fun(xp, delta, False)

    def make_fun(rows):
        count = float(rows.shape[-1])
        cache = {}

        def fun(v, slope):
            if v.ndim != rows.ndim:  # grid points (a sketch, or short rows): temporaries are small
                if "grid" not in cache:
                    cache["grid"] = generic(rows)
                return cache["grid"](v, slope)
            if "e" not in cache:
                cache["e"] = np.empty_like(rows)
            e = cache["e"]
            beta = np.exp(v)
            np.multiply(rows, beta, out=e)  # t = beta * nlp <= 0
            np.exp(e, out=e)
            s0 = np.sum(e, axis=-1, keepdims=True)
            m1 = beta * np.vecdot(e, rows)[..., None] / s0  # E_w[t]
            f = m1 - np.log(s0 / count) - delta
            if not slope:
                return f, None
            e *= rows
            return f, beta * beta * np.vecdot(e, rows)[..., None] / s0 - m1 * m1

        return fun

    v = solve_increasing(xp, make_fun, (nlp,), lo, hi, steps=work.polish)
    v = zero_strength(xp, delta, lo, v)
    nlp *= np.exp(v)
    return normalised_exp(xp, nlp)
