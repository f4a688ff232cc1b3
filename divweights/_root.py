"""Fixed-cost, vectorised, bracketed root finder for monotone scalar equations.

Every exact solve in divweights reduces to a monotone scalar equation per
row (the multiplier of a divergence constraint, or the normalisation
constant of a power-law family).  :func:`solve_increasing` finds the root of
a nondecreasing function on a bracket in two stages, both with a fixed
number of steps so that the code has no data-dependent control flow and
traces under ``jax.jit``:

1. **grid rounds**: evaluate the function at ``G - 1`` interior points of the
   bracket at once (one broadcast evaluation over an extra leading axis) and
   keep the sub-interval that holds the sign change; each round shrinks the
   bracket ``G - 1`` times;
2. **Newton polish**: Newton steps that fall back to bisection whenever a
   step would leave the bracket or fails to halve the previous step (the
   classic ``rtsafe`` safeguard), converging quadratically.

For long rows a strided subsample first solves the same equation, and its
root warm-starts the Newton polish on the whole row.
"""

from __future__ import annotations

import math

__all__ = ["solve_increasing"]

#: rows longer than this are first solved on a strided subsample
SUBSAMPLE_ABOVE = 8192
SUBSAMPLE_SIZE = 2048
#: elements evaluated at once by a grid round (bounds its memory)
GRID_BUDGET = 1 << 22
#: total shrink factor of the grid stage
GRID_SHRINK = 1e4


def _newton(xp, fun, lo, hi, x, steps):
    eps = 8.0 * float(xp.finfo(x.dtype).eps)
    dx_old = hi - lo
    best_x, best_f = x, None
    ok = None
    for _ in range(steps):
        f, df = fun(x)
        af = xp.abs(f)
        if best_f is None:
            best_x, best_f = x, xp.where(xp.isnan(af), xp.full_like(af, math.inf), af)
        else:
            better = af < best_f
            best_x = xp.where(better, x, best_x)
            best_f = xp.where(better, af, best_f)
        lo = xp.where(f <= 0, x, lo)
        hi = xp.where(f >= 0, x, hi)
        newton = x - f / df
        step = xp.abs(newton - x)
        # a step must halve the previous one, unless it is at rounding level (converged)
        small = (step <= 0.5 * xp.abs(dx_old)) | (step <= eps * (xp.abs(x) + 1.0))
        ok = xp.isfinite(newton) & (newton >= lo) & (newton <= hi) & small
        x_new = xp.where(ok, newton, (lo + hi) / 2)
        dx_old = xp.where(ok, step, hi - lo)
        x = xp.where(f == 0, x, x_new)
    if ok is None:
        return x
    # A final Newton step improves on every evaluated point; a final bisection
    # (rounding-level noise near the root) may not, so keep the best one then.
    return xp.where(ok, x, best_x)


def _grid(xp, fun, lo, hi, numel):
    g = int(max(4, min(24, GRID_BUDGET // max(numel, 1))))
    rounds = int(math.ceil(math.log(GRID_SHRINK) / math.log(g - 1)))
    t = xp.arange(1, g, dtype=lo.dtype, device=_device(lo)) / g
    t = xp.reshape(t, (g - 1,) + (1,) * lo.ndim)
    for _ in range(rounds):
        xs = lo + (hi - lo) * t
        f, _ = fun(xs)
        lo = xp.max(xp.where(f <= 0, xs, lo), axis=0)
        hi = xp.min(xp.where(f >= 0, xs, hi), axis=0)
    return lo, hi


def _device(x):
    import array_api_compat

    return array_api_compat.device(x)


def solve_increasing(xp, make_fun, arrays, lo, hi, *, polish: int):
    """Root of an increasing scalar function, independently per row.

    Parameters
    ----------
    xp : namespace
    make_fun : callable
        ``make_fun(*arrays) -> fun`` where ``fun(x) -> (f, df)`` accepts ``x``
        of shape ``(..., 1)`` or with extra leading axes ``(g, ..., 1)``
        (broadcasting against ``arrays``), ``f`` nondecreasing in ``x`` and
        ``df`` its derivative (it only steers Newton).
    arrays : tuple of arrays of shape ``(..., n)``
        Row data; subsampled along the last axis for long rows (the subsample
        always holds the argmin of ``arrays[0]``).
    lo, hi : arrays of shape ``(..., 1)``
        Bracket with ``f(lo) <= 0 <= f(hi)``; if it is wrong the result
        converges to the violated end.
    polish : int
        Newton steps after the grid stage.
    """
    n = arrays[0].shape[-1]
    numel = math.prod(arrays[0].shape)
    if n > SUBSAMPLE_ABOVE:
        stride = n // SUBSAMPLE_SIZE
        best = xp.argmin(arrays[0], axis=-1, keepdims=True)  # keep a minimiser in the subsample
        sub = tuple(
            xp.concat([a[..., ::stride], xp.take_along_axis(a, best, axis=-1)], axis=-1) for a in arrays
        )
        fun_sub = make_fun(*sub)
        glo, ghi = _grid(xp, fun_sub, lo, hi, math.prod(sub[0].shape))
        x0 = _newton(xp, fun_sub, glo, ghi, (glo + ghi) / 2, polish)
        return _newton(xp, make_fun(*arrays), lo, hi, x0, 3)
    fun = make_fun(*arrays)
    glo, ghi = _grid(xp, fun, lo, hi, numel)
    return _newton(xp, fun, glo, ghi, (glo + ghi) / 2, polish)
