r"""Root finder for the monotone scalar equations of the exact solvers.

Every exact solve in divweights reduces to a nondecreasing scalar function
:math:`f` of one unknown per row (the multiplier of a divergence constraint,
or the normalisation constant of a power-law family) with a bracket
:math:`[lo, hi]` known in closed form.  :func:`solve_increasing` finds its
root with few array operations and no data-dependent control flow, so that it
traces under ``jax.jit`` and ``torch.compile``:

1. **Grid.**  :math:`f` is evaluated at :math:`G` equally spaced points of the
   bracket in one broadcast evaluation (an extra leading axis of size
   :math:`G`; long rows are evaluated a few grid points at a time so that no
   evaluation holds more than ``GRID_BUDGET`` elements).  The root of the
   piecewise-linear interpolant of those values is read off without any
   gather, as :math:`lo + h \sum_j \theta_j`, where :math:`\theta_j \in [0, 1]`
   is the fraction of grid cell :math:`j` on which the interpolant is
   negative.  The root lies in the same grid cell, so within one grid step.
2. **Zoom** (long rows only).  A coarse grid (fewer than ``ZOOM_BELOW``
   points) is evaluated again on the cell pair ``[x0 - h, x0 + h]`` around its
   interpolated root, once or twice, so that its step is as fine as a full grid's.
3. **Newton.**  A fixed number of Newton steps, each clipped to within one
   grid step of the interpolated root.
   The linear interpolation is accurate to :math:`O(h^2)` and each Newton step
   squares the error: one step reaches float32 precision on typical rows and
   three reach float64 precision on every row we know of (``Work.polish``).

If :math:`f` has no root in the bracket, the result is the end where
:math:`|f|` is smallest: the solvers choose their brackets so that these ends
are the limits they want (the constraint that cannot bind, zero strength), and
no solver masks its rows by hand.  Only a zero radius needs
:func:`zero_strength`: there the residual is zero up to rounding along a whole
half-line, where rounding, not the data, would pick the point.

For NumPy inputs, which are eager host arrays, rows longer than
``SKETCH_ABOVE`` are solved differently: the grid runs on a sketch of each
row (a deterministic scrambled subsample that always contains the extremes
of the row, so that periodic or sorted data are sampled evenly), and a
bracketed, bisection-safeguarded Newton iteration on the whole row then runs
until it has converged.  Its answer does not depend on how good the sketch
is; the sketch only saves passes over the data.
"""

from __future__ import annotations

import math

from ._array import _is_torch, clip, where

__all__ = ["grid_size", "sketch_index", "solve_eager", "solve_increasing", "zero_strength"]

#: grid points for short rows
GRID_POINTS = 256
#: fewest grid points (long rows)
GRID_MIN = 16
#: elements of one grid evaluation; longer rows evaluate a few grid points at a time
GRID_BUDGET = 1 << 19
#: eager NumPy: rows longer than this start from a sketch, then iterate until converged
SKETCH_ABOVE = 1 << 14
SKETCH_SIZE = 2048
#: grid points on the sketch (its error is at least the sketch's sampling error anyway)
SKETCH_GRID = 48
#: eager NumPy: most full-row Newton/bisection steps
EAGER_MAX_STEPS = 100
#: eager NumPy: a Newton step this small (relative) ends the iteration, or sqrt(eps) when that is
#: larger (float32).  The returned point is one step past the last evaluation, whose error is about
#: the square of that step: 1e-10 relative in float64, where sqrt(eps) (1.5e-8) cost a third full-row
#: evaluation to reach rounding level
STEP_ENOUGH = 1e-5


def grid_size(numel: int) -> int:
    """Grid points for rows holding ``numel`` elements in all."""
    return int(min(GRID_POINTS, max(GRID_MIN, GRID_BUDGET // max(numel, 1))))


#: grids of fewer points (long rows) are refined by zoom stages until their step is at most the
#: bracket over ZOOM_BELOW - 1
ZOOM_BELOW = 128


def _zoom_stages(g: int) -> int:
    """Grid stages after the first for coarse grids (long rows): each evaluates ``g`` points on
    the bracket ``[x0 - h, x0 + h]`` the previous stage left (the root lies in it), until the
    grid step is at most the first bracket over ``ZOOM_BELOW - 1`` (none for 128 points or more,
    one for 17 to 127, two below).  Newton steps alone from a coarse grid could stall: on 20,000
    examples (26 points over a bracket 150 wide) the Alpha(-1) radius came out 2% too large."""
    stages, step = 0, 1.0 / (g - 1)
    while step > 1.0 / (ZOOM_BELOW - 1):
        stages, step = stages + 1, step * 2.0 / (g - 1)
    return stages


def _device(x):
    import array_api_compat

    return array_api_compat.device(x)


def _grid_start(xp, fun, lo, hi, g: int, numel: int, rows):
    """``(x0, h)``: the root ``x0`` of the piecewise-linear interpolant of ``f`` on ``g`` grid
    points of ``[lo, hi]`` and the grid step ``h``; the root of ``f`` lies in ``[x0 - h, x0 + h]``.
    ``rows``: the first of the row arrays (its dtype, device and number of dimensions; ``lo``
    and ``hi`` broadcast against ``(..., 1)``, and either may be a Python number)."""
    tiny = float(xp.finfo(rows.dtype).smallest_normal)
    big = float(xp.finfo(rows.dtype).max)
    h = (hi - lo) / (g - 1)
    shape = (g,) + (1,) * rows.ndim
    if isinstance(h, float) and _is_torch(xp):  # a constant bracket: one kernel lays out the grid
        x = xp.reshape(xp.linspace(lo, hi, g, dtype=rows.dtype, device=_device(rows)), shape)
    else:  # (jnp.linspace traces to more equations than this)
        x = lo + h * xp.reshape(xp.arange(g, dtype=rows.dtype, device=_device(rows)), shape)
    per_chunk = max(1, GRID_BUDGET // max(numel, 1))
    if per_chunk >= g:
        f, _ = fun(x, False)
    else:  # long rows: a few grid points at a time (bounded memory)
        f = xp.concat([fun(x[i : i + per_chunk, ...], False)[0] for i in range(0, g, per_chunk)], axis=0)
    neg = clip(xp, f[:-1, ...], min=-big, max=0.0)  # f_j where negative, else 0 (and never -inf)
    pos = clip(xp, f[1:, ...], min=tiny, max=big)  # f_{j+1} where positive, else tiny (never 0 / 0)
    # x0 and the root lie in the same grid cell, so the root is within h of x0
    return lo + h * xp.sum(neg / (neg - pos), axis=0), h


def _inside(xp, x0, h, lo, hi):
    """The root's bracket ``[x0 - h, x0 + h]`` cut to ``[lo, hi]`` (either may be a Python number)."""
    a = clip(xp, x0 - h, min=lo) if isinstance(lo, float) else xp.maximum(x0 - h, lo)
    b = clip(xp, x0 + h, max=hi) if isinstance(hi, float) else xp.minimum(x0 + h, hi)
    return a, b


def solve_increasing(xp, make_fun, arrays, lo, hi, *, steps: int, safeguarded: bool = False, past_ends: bool = False):
    """Root of a nondecreasing scalar function, independently per row.

    Parameters
    ----------
    xp : namespace
    make_fun : callable
        ``make_fun(*arrays) -> fun`` with ``fun(x, slope) -> (f, df)``: ``x`` has
        shape ``(..., 1)`` or extra leading grid axes ``(g, ..., 1)``
        (broadcasting against ``arrays``); ``f`` is nondecreasing in ``x``;
        ``df`` is its derivative when ``slope`` is true (it only steers Newton)
        and may be ``None`` otherwise.  ``make_fun`` must build everything that
        depends on the row data from ``arrays``: NumPy may call it on a sketch
        of the rows (a subsample along the last axis that always holds the
        minimiser and the maximiser of ``arrays[0]``).
    arrays : tuple of arrays of shape ``(..., n)``
        Row data.
    lo, hi : arrays broadcasting against ``(..., 1)``, or Python numbers
        Bracket, ``lo <= hi``.  Without a root in it, the result is the end
        where ``|f|`` is smallest.  When both are numbers, the grid is laid out
        as a constant (fewer operations).
    steps : int
        Newton steps after the grid (``Work.polish``).
    safeguarded : bool
        Keep a bracket and bisect whenever a Newton step would leave it or fails
        to halve the previous step (the classic ``rtsafe``): for functions with
        a singular derivative, where plain Newton may stall.  It costs a few
        more operations per step.
    past_ends : bool
        Let the Newton steps leave ``[lo, hi]`` by up to one grid step (each step stays
        within one grid step of the interpolated root): two operations fewer, for
        functions defined beyond the bracket whose caller accepts that a root outside
        it comes back at most one grid step past the end (the exact-radius KL, where
        beyond the upper end the weights equal the end's to ``exp(-TAIL)``).  Not
        with ``safeguarded``.
    """
    numel = math.prod(arrays[0].shape)
    n = arrays[0].shape[-1]
    from ._array import is_eager_numpy

    if n > SKETCH_ABOVE and is_eager_numpy(xp, arrays[0]):
        if not hasattr(lo, "dtype"):
            lo = xp.asarray(lo, dtype=arrays[0].dtype)
        return solve_eager(xp, make_fun, arrays, lo, hi)
    fun = make_fun(*arrays)
    g = grid_size(numel)
    tiny = float(xp.finfo(arrays[0].dtype).smallest_normal)
    if past_ends and not safeguarded:
        x, h = _grid_start(xp, fun, lo, hi, g, numel, arrays[0])
        for _ in range(_zoom_stages(g)):  # long rows: the root is in [x - h, x + h]; grid it again
            x, h = _grid_start(xp, fun, x - h, x + h, g, numel, arrays[0])
        a = b = None
        for i in range(steps):
            f, df = fun(x, True)
            step = f / clip(xp, df, min=tiny)
            if i == 0:  # x is the interpolated root: stay within one grid step of it
                if steps > 1:
                    a, b = x - h, x + h
                x = x - clip(xp, step, min=-h, max=h)
            else:
                x = clip(xp, x - step, a, b)
        return x
    x, h = _grid_start(xp, fun, lo, hi, g, numel, arrays[0])
    a, b = _inside(xp, x, h, lo, hi)
    for _ in range(_zoom_stages(g)):  # long rows: the root is in [a, b]; grid it again
        x, h = _grid_start(xp, fun, a, b, g, numel, arrays[0])
        a, b = _inside(xp, x, h, a, b)
    if not safeguarded:
        for _ in range(steps):
            f, df = fun(x, True)
            x = clip(xp, x - f / clip(xp, df, min=tiny), a, b)
        return x
    eps = 8.0 * float(xp.finfo(arrays[0].dtype).eps)
    step_old = b - a
    best_x = best_f = ok = None
    for _ in range(steps):
        f, df = fun(x, True)
        af = xp.abs(f)
        if best_f is None:
            best_x, best_f = x, af
        else:
            better = af < best_f
            best_x, best_f = xp.where(better, x, best_x), xp.where(better, af, best_f)
        a = xp.where(f <= 0, x, a)
        b = xp.where(f >= 0, x, b)
        newton = x - f / clip(xp, df, min=tiny)
        step = xp.abs(newton - x)
        # a step must halve the previous one, unless it is at rounding level (converged)
        small = (step <= 0.5 * step_old) | (step <= eps * (1.0 + xp.abs(x)))
        ok = (newton >= a) & (newton <= b) & small
        step_old = xp.where(ok, step, b - a)
        x = xp.where(f == 0, x, xp.where(ok, newton, 0.5 * (a + b)))
    # A last Newton step improves on every evaluated point; a last bisection (rounding-level
    # noise near the root) may not: then keep the best evaluated point.
    return x if ok is None else xp.where(ok, x, best_x)


def zero_strength(xp, strength, prior, w):
    """``prior`` on the rows where the radius ``strength`` is ``<= 0``, ``w`` elsewhere."""
    return where(xp, strength <= 0, prior, w)


# -- eager NumPy, long rows ---------------------------------------------------------


def sketch_index(xp, n: int, size: int = SKETCH_SIZE):
    """Indices of a scrambled, evenly spread subsample of ``size`` entries of a row of
    ``n``: ``(j * stride) mod n`` with ``stride`` coprime to ``n`` and near ``n / golden ratio``,
    so that periodic and sorted rows are sampled evenly (a plain stride would alias with a period)."""
    stride = int(n / ((1 + 5**0.5) / 2))
    while math.gcd(stride, n) != 1:
        stride += 1
    return (xp.arange(size, dtype=xp.int64) * stride) % n


def _sketch(xp, arrays):
    """:func:`sketch_index`'s subsample of every row plus the row minimiser and
    maximiser of ``arrays[0]``."""
    n = arrays[0].shape[-1]
    idx = sketch_index(xp, n)
    ends = xp.concat(
        [xp.argmin(arrays[0], axis=-1, keepdims=True), xp.argmax(arrays[0], axis=-1, keepdims=True)], axis=-1
    )
    return tuple(xp.concat([xp.take(a, idx, axis=-1), xp.take_along_axis(a, ends, axis=-1)], axis=-1) for a in arrays)


def solve_eager(xp, make_fun, arrays, lo, hi, sketch=None, grid: int = SKETCH_GRID):
    """Eager NumPy rows: a grid on a sketch of the rows (``sketch``, by default
    :func:`_sketch`'s; short rows may pass the rows themselves) gives the start, then
    bracketed Newton with bisection on the whole rows runs until the step is at
    rounding level (the classic ``rtsafe``); ``grid`` points on the sketch.  Same contract as :func:`solve_increasing`;
    the answer does not depend on the sketch, which only saves passes over the data."""
    dtype = lo.dtype
    eps = float(xp.finfo(dtype).eps)
    tiny = float(xp.finfo(dtype).smallest_normal)
    if sketch is None:
        sketch = _sketch(xp, arrays)
    x, _ = _grid_start(xp, make_fun(*sketch), lo, hi, grid, math.prod(sketch[0].shape), sketch[0])
    import numpy as np  # eager NumPy rows: plain NumPy calls (fewer Python layers per step)

    x = np.minimum(np.maximum(x, lo), hi)
    fun = make_fun(*arrays)
    if math.prod(x.shape) == 1:  # one row: the bookkeeping in Python floats
        return np.reshape(np.asarray(_rtsafe_one(fun, x, lo, hi, eps, tiny), dtype=dtype), x.shape)
    top, bottom = hi, lo  # the root lies outside when f keeps its sign at an end
    # The returned point is one Newton step past the last evaluation, whose error
    # is about the square of that step: stop once it is at float precision.
    enough = max(math.sqrt(eps), STEP_ENOUGH)
    step_old = hi - lo
    for _ in range(EAGER_MAX_STEPS):
        f, df = fun(x, True)
        below, above = f < 0, f > 0
        zero = ~(below | above)  # f == 0 (or NaN: nothing to improve)
        lo = np.where(above, lo, x)
        hi = np.where(below, hi, x)
        step = f / np.maximum(df, tiny)
        newton = x - step
        step = np.abs(step)
        # a Newton step must stay in the bracket and halve the previous step (else bisect);
        # comparisons with NaN or inf are false, so a non-finite step bisects
        ok = (newton >= lo) & (newton <= hi) & (step <= 0.5 * step_old)
        scale = 1.0 + np.abs(x)
        x_new = np.where(ok, newton, 0.5 * (lo + hi))
        step_old = np.where(ok, step, hi - lo)
        out_top, out_bottom = below & (x >= top), above & (x <= bottom)
        x_new = np.where(zero, x, x_new)
        x_new = np.where(out_top, top, np.where(out_bottom, bottom, x_new))
        done = (ok & (step <= enough * scale)) | zero | (hi - lo <= 4 * eps * scale) | out_top | out_bottom
        x = x_new
        if done.all():
            break
    return x


def _rtsafe_one(fun, x, lo, hi, eps: float, tiny: float) -> float:
    """:func:`solve_eager`'s iteration for a single row, with the bracket and the
    steps held as Python floats (each NumPy call on a one-element array costs about
    a microsecond; the row's own evaluations are unchanged)."""
    shape = x.shape
    dtype = x.dtype
    x, lo, hi = (v if isinstance(v, float) else float(v.reshape(-1)[0]) for v in (x, lo, hi))
    top, bottom = hi, lo
    enough = max(math.sqrt(eps), STEP_ENOUGH)
    step_old = hi - lo
    for _ in range(EAGER_MAX_STEPS):
        f, df = fun(x if shape == () else _as(x, shape, dtype), True)
        f, df = float(f.reshape(-1)[0]), float(df.reshape(-1)[0])
        if not f < 0 and not f > 0:  # f == 0 (or NaN: nothing to improve)
            return x
        if f < 0:
            if x >= top:
                return top
            lo = x
        else:
            if x <= bottom:
                return bottom
            hi = x
        step = f / max(df, tiny)
        newton = x - step
        step = abs(step)
        scale = 1.0 + abs(x)
        if lo <= newton <= hi and step <= 0.5 * step_old:
            x, step_old = newton, step
            if step <= enough * scale:
                return x
        else:
            x, step_old = 0.5 * (lo + hi), hi - lo
        if hi - lo <= 4 * eps * scale:
            return x
    return x


def _as(x: float, shape, dtype):
    import numpy as np

    return np.full(shape, x, dtype=dtype)
