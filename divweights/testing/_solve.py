"""cvxpy plumbing of the oracle (private): divergence atoms, solver tiers, argument checks."""

from __future__ import annotations

import math
import warnings

import numpy as np

#: |alpha - 1| below this is treated as KL, as in the core.
_KL_TOLERANCE = 1e-3

# Clarabel aims at 1e-10; "almost solved" (cvxpy's optimal_inaccurate) must
# still meet 1e-8, tighter than Clarabel's default reduced tolerances.
_CLARABEL_OPTIONS = {
    "tol_gap_abs": 1e-10,
    "tol_gap_rel": 1e-10,
    "tol_feas": 1e-10,
    "tol_ktratio": 1e-8,
    "reduced_tol_gap_abs": 1e-8,
    "reduced_tol_gap_rel": 1e-8,
    "reduced_tol_feas": 1e-8,
    "reduced_tol_ktratio": 1e-6,
    "max_iter": 500,
}
_CLARABEL_LOOSE = {"max_iter": 500}
_SCS_OPTIONS = {"eps_abs": 1e-9, "eps_rel": 1e-9, "max_iters": 200_000}


class ReferenceSolverError(RuntimeError):
    """Raised when neither Clarabel nor SCS solves a reference problem."""


def _cvxpy():
    try:
        import cvxpy as cp
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "divweights.testing needs cvxpy (with the Clarabel solver); install it with "
            "`pip install divweights[reference]`"
        ) from exc
    return cp


# -- divergences ------------------------------------------------------------------


def _kind(divergence):
    """Return ``(name, alpha)`` describing ``divergence``."""
    from ..divergences import (
        KL,
        Alpha,
        ChiSquared,
        Divergence,
        SquaredL2,
        TotalVariation,
    )

    if isinstance(divergence, type) and issubclass(divergence, Divergence):
        raise TypeError(f"pass a divergence instance such as {divergence.__name__}(), not the class itself")
    if isinstance(divergence, KL):
        return "kl", 1.0
    if isinstance(divergence, Alpha):
        a = float(divergence.alpha)
        if abs(a - 1.0) < _KL_TOLERANCE:
            return "kl", 1.0
        if a == 0.0:
            return "reverse_kl", 0.0
        return "alpha", a
    if isinstance(divergence, ChiSquared):
        return "chi2", 2.0
    if isinstance(divergence, TotalVariation):
        return "tv", None
    if isinstance(divergence, SquaredL2):
        return "l2", None
    raise TypeError(
        "divergence must be a divweights divergence (KL(), ReverseKL(), Alpha(a), ChiSquared(), "
        f"TotalVariation(), SquaredL2()); got {divergence!r}"
    )


def _power(cp, x, a):
    """``x ** a`` through exact power cones (supported by Clarabel and SCS)
    rather than cvxpy's default tower of second-order cones, which
    approximates ``a`` by a rational and is slower."""
    return cp.power(x, a, approx=False)


def _divergence_expr(cp, kind, alpha, x, q):
    """cvxpy expression of ``D(x || q)`` for a variable ``x`` and a positive constant ``q``."""
    if kind == "kl":
        return cp.sum(cp.rel_entr(x, q))
    if kind == "reverse_kl":
        return cp.sum(cp.rel_entr(q, x))
    if kind == "alpha":
        a = alpha
        mixed = cp.sum(cp.multiply(q ** (1.0 - a), _power(cp, x, a)))
        return (mixed - np.sum(q) - a * (cp.sum(x) - np.sum(q))) / (a * (a - 1.0))
    if kind == "chi2":
        return cp.sum(cp.multiply(1.0 / q, cp.square(x - q)))
    if kind == "tv":
        return 0.5 * cp.norm1(x - q)
    if kind == "l2":
        return cp.sum_squares(x - q)
    raise AssertionError(kind)  # pragma: no cover


def _ratio_expr(cp, kind, alpha, t):
    r"""cvxpy expression of :math:`D(w\|u)` in the ratio variable ``t = n w``."""
    n = t.shape[0]
    ones = np.ones(n)
    if kind == "kl":  # f(t) = t log t
        total = cp.sum(cp.rel_entr(t, ones))
    elif kind == "reverse_kl":  # f(t) = -log t + t - 1
        total = cp.sum(cp.rel_entr(ones, t)) + cp.sum(t) - n
    elif kind == "alpha":
        a = alpha
        total = cp.sum(_power(cp, t, a) - 1.0 - a * (t - 1.0)) / (a * (a - 1.0))
    elif kind == "chi2":  # f(t) = (t - 1)^2
        total = cp.sum_squares(t - 1.0)
    elif kind == "tv":  # f(t) = |t - 1| / 2
        total = 0.5 * cp.norm1(t - 1.0)
    elif kind == "l2":  # ||w - u||^2 = sum (t - 1)^2 / n^2
        return cp.sum_squares(t - 1.0) / n**2
    else:  # pragma: no cover
        raise AssertionError(kind)
    return total / n


def _divergence_value(kind, alpha, p, q):
    """``D(p || q)`` in float64 NumPy (``inf`` outside the domain); used to
    verify and restore feasibility of solver output."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if kind == "kl":
            if np.any((p > 0) & (q <= 0)):
                return math.inf
            pos = p > 0
            return float(np.sum(p[pos] * np.log(p[pos] / q[pos])))
        if kind == "reverse_kl":
            return _divergence_value("kl", None, q, p)
        if kind == "alpha":
            a = alpha
            if a < 0 and np.any((p <= 0) & (q > 0)):
                return math.inf
            mixed = np.where(p > 0, q ** (1.0 - a) * np.where(p > 0, p, 1.0) ** a, 0.0)
            return float(np.sum(mixed - q - a * (p - q)) / (a * (a - 1.0)))
        if kind == "chi2":
            return float(np.sum((p - q) ** 2 / q))
        if kind == "tv":
            return float(0.5 * np.sum(np.abs(p - q)))
        if kind == "l2":
            return float(np.sum((p - q) ** 2))
    raise AssertionError(kind)  # pragma: no cover


def _restore(w, prior, radius, value):
    """Mix ``w`` with ``prior`` (where ``value`` is 0) until ``value(mix) <= radius``.

    ``value`` is convex, so the feasible mixing weights form an interval
    ``[theta*, 1]``; bisection finds ``theta*`` from above.
    """
    if not math.isfinite(radius) or value(w) <= radius:
        return w
    lo, hi = 0.0, 1.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if value((1.0 - mid) * w + mid * prior) <= radius:
            hi = mid
        else:
            lo = mid
    return (1.0 - hi) * w + hi * prior


# -- solving -----------------------------------------------------------------------------


def _solve_with(cp, problem, solver, options):
    """Run one solver; return its status, or an error string."""
    try:
        with warnings.catch_warnings():
            # cvxpy warns about optimal_inaccurate itself; the status is handled by the caller.
            warnings.filterwarnings("ignore", message="Solution may be inaccurate")
            problem.solve(solver=solver, **options)
    except cp.error.SolverError as exc:
        return f"solver error ({exc})"
    return problem.status


def _best(cp, candidates, what, *, every=True):
    """Solve the ``(problem, extract)`` candidates; return the best answer.

    ``extract()`` turns the solved variables into ``(weights, objective)``
    (weights already feasible, see :func:`_restore`).  With ``every=False``
    the later candidates are tried only when an earlier one is not solved to
    full accuracy.  Three tiers, each tried only when the previous one solved
    no candidate:

    1. Clarabel at tolerance 1e-10; its ``optimal_inaccurate`` (the reduced
       tolerance 1e-8 of ``_CLARABEL_OPTIONS``) is accepted;
    2. Clarabel at its default tolerances (tiny radii, where the tight
       tolerances stall);
    3. SCS (first order, about 1e-6 accurate).

    An ``optimal_inaccurate`` answer from tiers 2 and 3 is returned with a
    ``RuntimeWarning``.
    """
    answers, attempts = [], []
    for problem, extract in candidates:
        if answers and not every:
            break
        status = _solve_with(cp, problem, cp.CLARABEL, _CLARABEL_OPTIONS)
        if status == cp.OPTIMAL or status == cp.OPTIMAL_INACCURATE:
            answers.append(extract())
        if status != cp.OPTIMAL:
            attempts.append(f"CLARABEL: {status}")
            every = True
    for solver, options in ((cp.CLARABEL, _CLARABEL_LOOSE), (cp.SCS, _SCS_OPTIONS)):
        if answers:
            break
        for problem, extract in candidates:
            status = _solve_with(cp, problem, solver, options)
            if status == cp.OPTIMAL or status == cp.OPTIMAL_INACCURATE:
                answers.append(extract())
            if status != cp.OPTIMAL:
                tier = "default tolerances" if solver == cp.CLARABEL else "fallback"
                attempts.append(f"{solver} ({tier}): {status}")
            if status == cp.OPTIMAL_INACCURATE:
                warnings.warn(
                    f"reference solve of the {what} is only optimal_inaccurate ({'; '.join(attempts)})",
                    RuntimeWarning,
                    stacklevel=4,
                )
            if answers:
                break
    if not answers:
        raise ReferenceSolverError(f"reference solve of the {what} failed: {'; '.join(attempts)}")
    return min(answers, key=lambda answer: answer[1])[0]


def _to_simplex(x):
    x = np.maximum(np.asarray(x, dtype=np.float64).reshape(-1), 0.0)
    total = x.sum()
    if not total > 0:  # pragma: no cover - a solver returning zeros is caught by the status
        raise ReferenceSolverError("reference solver returned an all-zero weight vector")
    return x / total


def _check_gamma(value):
    """The class radius ``gamma >= 0`` as a float (the instance strengths are parsed by
    :class:`divweights.Strength`)."""
    if isinstance(value, bool):
        raise TypeError("gamma must be a real number, not bool")
    if np.ndim(value) != 0:
        raise ValueError(f"gamma must be a scalar (0-d); got shape {np.shape(value)}")
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"gamma must be a real number or a 0-d array; got {type(value).__name__}") from exc
    if math.isnan(v):
        raise ValueError("gamma must not be NaN")
    if not v >= 0:
        raise ValueError(f"gamma must be >= 0; got {v!r}")
    return v


def _as_losses(x, name):
    arr = np.asarray(x)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real numbers; got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.ndim < 1 or arr.shape[-1] == 0:
        raise ValueError(f"{name} must have a nonempty last axis; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"the reference solvers need finite {name}")
    return arr


def _normalised(l):
    """Shift to minimum 0 and divide by the spread; return ``(l', spread)``."""
    lp = l - l.min()
    spread = float(lp.max())
    return (lp / spread if spread > 0 else lp), spread
