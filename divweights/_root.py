"""Fixed-iteration, vectorised, safeguarded Newton root finder.

Every exact solve in divweights reduces to a monotone scalar equation per
row (the multiplier of a divergence constraint, or the normalisation
constant of a power-law family).  :func:`solve_increasing` finds the root of
an increasing function on a bracket with Newton steps that fall back to
bisection whenever a step would leave the bracket or fails to halve the
previous step (the classic ``rtsafe`` safeguard).  The iteration count is
fixed, so the code has no data-dependent control flow and traces under
``jax.jit``; the bracket guarantees at least linear convergence and Newton
gives quadratic convergence near the root.
"""

from __future__ import annotations

__all__ = ["solve_increasing"]


def solve_increasing(xp, fun, lo, hi, *, iterations: int, x0=None):
    """Root of an increasing scalar function, independently per row.

    Parameters
    ----------
    xp : namespace
        Array namespace.
    fun : callable
        ``fun(x) -> (f, df)`` with ``x`` of shape ``(..., 1)``; ``f`` must be
        nondecreasing in ``x`` and ``df`` its derivative (may be inexact; it
        only steers the Newton step).
    lo, hi : arrays of shape ``(..., 1)``
        A bracket with ``f(lo) <= 0 <= f(hi)``.  When the bracket is wrong the
        result converges to the violated end.
    iterations : int
        Fixed number of iterations.
    x0 : array, optional
        Starting point inside the bracket (default: its midpoint).

    Returns
    -------
    x : array of shape ``(..., 1)``
    """
    x = (lo + hi) / 2 if x0 is None else xp.minimum(xp.maximum(x0, lo), hi)
    dx_old = hi - lo
    for _ in range(iterations):
        f, df = fun(x)
        lo = xp.where(f <= 0, x, lo)
        hi = xp.where(f >= 0, x, hi)
        newton = x - f / df
        step = xp.abs(newton - x)
        ok = (
            xp.isfinite(newton)
            & (newton > lo)
            & (newton < hi)
            & (step <= 0.5 * xp.abs(dx_old))
        )
        bisect = (lo + hi) / 2
        x_new = xp.where(ok, newton, bisect)
        dx_old = xp.where(ok, step, hi - lo)
        # f == 0 exactly: stay.
        x = xp.where(f == 0, x, x_new)
    return x
