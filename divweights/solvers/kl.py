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
bracket, and the root finder returns its upper end (or at most one grid step
past it): :math:`q` restricted to :math:`M` (to :math:`e^{-50}`).  :math:`\delta = 0` returns the lower end,
where the weights equal :math:`q` to rounding.  Examples with infinite loss
(or zero prior) are excluded.
"""

from __future__ import annotations

import math
import sys

from .._array import _is_torch, clip, is_eager_numpy, logsumexp, normalised_exp, where
from .._root import (
    GRID_POINTS,
    SKETCH_GRID,
    SKETCH_SIZE,
    grid_size,
    sketch_index,
    solve_eager,
    solve_increasing,
    zero_strength,
)

__all__ = ["kl_constrained", "kl_penalty"]

#: exp(-EXP_FLOOR) is 0 in every dtype: excluded (infinite) losses get a finite scaled loss whose
#: exponent is below -EXP_FLOOR, so the moments never meet 0 * inf
EXP_FLOOR = 1e4
#: the upper end of the bracket leaves at most exp(-TAIL) of the mass off the minimisers
TAIL = 50.0


def _excluded(xp, dtype) -> float:
    """``C``: the scaled loss ``-C`` of an excluded example.  Every ``beta`` the solver
    evaluates is at least ``sqrt(tiny)``, so ``beta * C >= EXP_FLOOR`` (its weight is 0), and at
    most ``~1e9`` (float32) or ``~1e19`` (float64), so ``beta * C`` stays finite."""
    return EXP_FLOOR / math.sqrt(float(xp.finfo(dtype).smallest_normal))


def kl_penalty(losses, lam, work):
    """Softmin ``w ∝ exp(-(losses - min losses) / lam)`` over the last axis.

    ``lam`` is clipped to ``[tiny, 1 / tiny]`` (``tiny``: the smallest normal
    number of the dtype): a strength that underflows to zero gives the limit,
    uniform weights on the minimisers, and ``1 / lam`` never flushes to zero.
    """
    xp = work.xp
    tiny = float(work.finfo.smallest_normal)
    lam = clip(xp, lam, min=tiny, max=1.0 / tiny)
    t = (xp.min(losses, axis=-1, keepdims=True) if work.row_min is None else work.row_min) - losses
    if is_eager_numpy(xp, t):  # one array of the row's size in all
        t /= lam
    else:
        t = t / lam
    return normalised_exp(xp, t)


def _make_fun(xp, delta, with_prior: bool):
    """``make_fun(nlp[, logq])`` for :func:`solve_increasing`: the residual
    ``KL(w(e^v) || q) - delta`` and its derivative in ``v``, where
    ``nlp = -(l - min l) / scale`` (``-inf`` for excluded examples)."""

    def make_fun(nlp, logq=None, count=None):
        # total prior mass, summed as s0 sums it (so that beta -> 0 gives exactly KL = 0):
        # the number of examples with finite loss for the uniform prior, 1 up to rounding otherwise
        if with_prior:
            count = xp.sum(xp.exp(logq), axis=-1, keepdims=True)
        elif count is None:  # a sketch of the rows (NumPy): every entry is an included example
            count = xp.sum(xp.astype(nlp > -_excluded(xp, nlp.dtype), nlp.dtype), axis=-1, keepdims=True)

        if _is_torch(xp):
            return _fused_fun(xp, nlp, logq, count, delta)

        def fun(v, slope):
            t = xp.exp(v) * nlp  # nlp >= -C: t is finite, and -inf * 0 never happens
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


def _fused_fun(xp, nlp, logq, count, delta):
    """:func:`_make_fun`'s ``fun`` with torch's fused kernels: 5 operations after ``t`` for the
    residual where the array-API formulas take 9.

    Uniform prior: ``w = softmax(t)`` and ``KL = sum_i xlogy(w_i, count * w_i)``: the logarithms
    are of numbers near 1, so the residual is as precise as :func:`_make_fun`'s for small radii
    (``log_softmax`` or ``logsumexp`` would carry a rounding error of ``eps * log(n)`` from the
    log-normaliser, 20% of a radius of 1e-6 in float32).  With a prior (normalised, so that its
    log-normaliser is near 0): ``KL = E_w[t] - logsumexp(t + log q) + log(count)``."""
    torch = sys.modules["torch"]
    # (assigned on both branches: torch.compile cannot trace a closure over an unassigned cell)
    c = None if logq is None else xp.log(count) - delta

    def fun(v, slope):
        t = xp.exp(v) * nlp  # nlp >= -C: t is finite, and -inf * 0 never happens
        if logq is None:
            w = normalised_exp(xp, t)  # torch's softmax (only NumPy inputs are consumed)
            f = xp.sum(torch.xlogy(w, w * count), axis=-1, keepdims=True) - delta  # xlogy(0, 0) = 0
            if not slope:
                return f, None
            pt = w * t  # excluded examples: 0 * finite
            m1 = xp.sum(pt, axis=-1, keepdims=True)
        else:
            s = t + logq
            pt = normalised_exp(xp, s) * t  # excluded examples: 0 * finite
            m1 = xp.sum(pt, axis=-1, keepdims=True)
            f = (m1 + c) - logsumexp(xp, s)
            if not slope:
                return f, None
        return f, xp.sum(pt * t, axis=-1, keepdims=True) - m1 * m1

    return fun


def kl_constrained(losses, delta, work, logq=None):
    """Exact solution of ``min <w, losses>  s.t.  KL(w || q) <= delta``.

    ``logq`` is the log prior (``None``: uniform); entries with ``logq = -inf``
    or ``losses = +inf`` get zero weight (the prior is renormalised on the rest).
    """
    xp = work.xp
    tiny = float(work.finfo.smallest_normal)
    n = losses.shape[-1]
    # a radius given as a Python number (a constant of a training run) makes the bracket and
    # the grid constants: no operations on the device for either
    constant = isinstance(delta, (int, float)) and not isinstance(delta, bool)
    if constant and is_eager_numpy(xp, losses):  # the host paths take arrays
        delta, constant = xp.asarray(float(delta), dtype=losses.dtype), False
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
    scale = clip(xp, xp.max(where(xp, support, losses, m), axis=-1, keepdims=True) - m, min=tiny)
    # in [-1, 0] on the support, -C off it: beta * C >= EXP_FLOOR on the whole bracket, so the
    # excluded examples weigh exp(-beta * C) = 0 and contribute 0 * finite to the moments
    if logq is None:
        nlp = clip(xp, (m - losses) / scale, min=-_excluded(xp, losses.dtype))
    else:
        nlp = xp.where(support, (m - losses) / scale, -_excluded(xp, losses.dtype))
    # KL(beta) <= beta * E_q[-nlp] <= beta, so beta >= delta; at beta = far / gap, with gap the
    # smallest positive -nlp, the non-minimisers are negligible.  A relative gap below the dtype's
    # eps is rounding, so gap >= eps (flooring it keeps beta finite: two losses of 4e-37 and 7e-37
    # among losses of order 1 gave beta = inf in float32, and inf * 0 = NaN weights).
    eps = float(work.finfo.eps)
    if grid_size(math.prod(nlp.shape)) >= GRID_POINTS:
        # short rows (a training batch): the upper end far / eps holds for every row and is a
        # constant; the rows' own gap gives a narrower bracket for 7 more operations per call,
        # which the full grid does not need
        hi = math.log(far / eps)
    else:  # long rows have a coarser grid: the rows' own gap
        neg_gap = xp.max(nlp - xp.astype(nlp >= 0, nlp.dtype), axis=-1, keepdims=True)
        hi = math.log(far) - xp.log(clip(xp, -neg_gap, min=eps))
    # beta >= sqrt(tiny) e^{-h} stays a normal number (XLA flushes subnormals to zero, and
    # 0 * -inf is NaN for the excluded examples); the weights are uniform to rounding there
    if constant:
        lo = math.log(min(max(float(delta), math.sqrt(tiny)), top))
    else:
        lo = xp.log(clip(xp, delta, min=math.sqrt(tiny), max=top))
    make_fun = _make_fun(xp, delta, logq is not None)
    if logq is None:
        count = xp.sum(xp.astype(support, nlp.dtype), axis=-1, keepdims=True)

        def fun(rows):  # the count of the rows themselves is known; a sketch counts its own
            return make_fun(rows, count=count if rows is nlp else None)

        v = solve_increasing(xp, fun, (nlp,), lo, hi, steps=work.polish, past_ends=True)
    else:
        v = solve_increasing(xp, make_fun, (nlp, logq), lo, hi, steps=work.polish, past_ends=True)
    # delta = 0: the residual is zero up to rounding for every tiny beta; the lower end is exact
    if not constant:
        v = zero_strength(xp, delta, lo, v)
    elif delta <= 0:
        v = xp.full_like(v, lo)
    t = xp.exp(v) * nlp
    return normalised_exp(xp, t if logq is None else t + logq)


#: eager NumPy: a root within this of the sketch's upper bracket end (in log beta) may lie past it
REACHES_END = 1e-3
#: eager NumPy: rows up to this long start from a grid on the rows themselves
SHORT_ROWS = 256
#: grid points on short rows (a finer start saves full-row steps, which cost more than grid points
#: on short rows) and on small sketches
SHORT_GRID = 64
SMALL_SKETCH_GRID = 32


def _sketch_plan(n: int) -> tuple[int, int]:
    """``(sketch size, grid points)`` of the eager start for rows of ``n``: the start only
    saves full-row Newton steps, so its grid costs a small fraction of one pass."""
    if n <= SHORT_ROWS:
        return n, SHORT_GRID
    size = min(SKETCH_SIZE, max(SHORT_ROWS, n // 32))
    return size, SKETCH_GRID if size == SKETCH_SIZE else SMALL_SKETCH_GRID


def _kl_uniform_numpy(losses, delta, work, top):
    """:func:`kl_constrained` for NumPy rows with a uniform prior and no infinite
    loss: the same bracket and finder, written for few passes over the rows and
    little memory.  Besides the result it holds one array of the rows' size
    (the scaled losses) and one buffer while solving."""
    import numpy as np

    xp = work.xp
    tiny = float(work.finfo.smallest_normal)
    n = losses.shape[-1]
    m = np.min(losses, axis=-1, keepdims=True) if work.row_min is None else work.row_min
    nlp = np.subtract(m, losses)
    nlp /= np.maximum(top - m, tiny)  # in [-1, 0]
    lo = np.log(np.clip(delta, math.sqrt(tiny), math.log(max(n, 2))))
    lo = np.broadcast_to(lo, nlp.shape[:-1] + (1,))
    eps = float(work.finfo.eps)

    def upper(rows):
        """The bracket's upper end from the smallest positive scaled gap among ``rows``
        (floored at eps, as in :func:`kl_constrained`)."""
        neg_gap = np.max(rows, axis=-1, keepdims=True, where=rows < 0, initial=-1.0)
        return math.log(TAIL + math.log(max(n, 2))) - np.log(np.maximum(-neg_gap, eps))

    generic = _make_fun(xp, delta, False)

    wide = work.finfo.bits >= 64

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
            s0 = np.add.reduce(e, axis=-1, keepdims=True)
            if wide:  # float64: einsum's own loop (not a threaded BLAS dot, which stalls on a busy machine)
                s1 = np.einsum("...i,...i->...", e, rows)[..., None]
            else:  # float32: in place and summed pairwise (einsum accumulates in float32, in sequence)
                e *= rows
                s1 = np.add.reduce(e, axis=-1, keepdims=True)
            m1 = beta * s1 / s0  # E_w[t]
            f = m1 - np.log(s0 / count) - delta
            if not slope:
                return f, None
            if wide:  # one pass over three operands, where an in-place product and a dot were two
                s2 = np.einsum("...i,...i,...i->...", e, rows, rows)[..., None]
            else:
                e *= rows
                s2 = np.add.reduce(e, axis=-1, keepdims=True)
            return f, beta * beta * s2 / s0 - m1 * m1

        return fun

    size, grid = _sketch_plan(n)
    if size < n:
        # the sketch's extremes are known: the scaled losses span [-1, 0] (no argmin / argmax pass)
        ends = np.broadcast_to(np.asarray([0.0, -1.0], dtype=nlp.dtype), nlp.shape[:-1] + (2,))
        sketch = np.concatenate([np.take(nlp, sketch_index(np, n, size), axis=-1), ends], axis=-1)
    else:  # short rows: the grid runs on the rows themselves
        sketch = nlp
    # The sketch's smallest gap is at least the rows' own, so its upper end is at most theirs:
    # solve in that bracket, and only when a row's root reaches its end (the radius does not
    # bind, or barely) take the pass over the rows that gives their own end.
    hi = upper(sketch)
    v = solve_eager(xp, make_fun, (nlp,), lo, hi, sketch=(sketch,), grid=grid)
    # "reaches": a root past the end comes back at the end or, after bisection steps, within
    # rounding of it (a test for v >= hi missed those rows, and a radius that cannot bind left
    # 3e-6 of the mass off the minimisers); a root just inside only costs a pass for the gap
    if sketch is not nlp and bool(np.any(v >= hi - REACHES_END)):
        hi_rows = upper(nlp)
        if bool(np.any(hi_rows > hi)):
            v = solve_eager(xp, make_fun, (nlp,), lo, hi_rows, sketch=(sketch,), grid=grid)
    v = zero_strength(xp, delta, lo, v)
    nlp *= np.exp(v)
    return normalised_exp(xp, nlp)
