r"""Reference solvers written directly from the problem definitions with cvxpy.

This module is an *oracle*: it states every problem that
:func:`divweights.instance_weights` and :func:`divweights.class_weights` solve
in closed form as a convex program, as the definition reads, and hands it to a
general-purpose conic solver (Clarabel, with SCS as a fallback).  It shares no
code with the closed forms and is meant for tests, for checking a new
divergence, and for readers who want to see each problem written out.  It is
slow (one or two solves per row, about 10 ms each) and accurate to roughly
``1e-7``; use the core functions for training.

cvxpy is an optional dependency, imported only when a solver is called::

    pip install divweights[reference]

.. rubric:: Problems

With :math:`u = 1/n` the uniform weights and :math:`\Delta_m` the simplex,

* instance, ``lam``: :math:`\min_{w\in\Delta_n}\langle w,\ell\rangle + \lambda D(w\|u)`;
* instance, ``delta``: :math:`\min_{w\in\Delta_n}\langle w,\ell\rangle` s.t. :math:`D(w\|u)\le\delta`;
* instance, ``temperature`` (``KL``, ``Alpha``, ``ChiSquared``): the penalty
  problem at the multiplier implied by the published parameterisation (below);
* class: :math:`\min_{v\in\Delta_k}\langle v,\ell_i\rangle` s.t. :math:`D(v\|y_i)\le\gamma`
  for every row :math:`i`.

The divergences are written with cvxpy atoms, :math:`D(w\|q)` as

==========================  ===========================================================================
``KL()``                    ``sum(rel_entr(w, q))``
``ReverseKL()``             ``sum(rel_entr(q, w))``, i.e. :math:`\mathrm{KL}(q\|w)`
``Alpha(a)``                :math:`\frac{1}{a(a-1)}\sum_i \big(q_i^{1-a} w_i^a - q_i - a(w_i - q_i)\big)`
                            with ``power(w, a)`` (power cones): convex for ``a > 1`` and
                            ``a < 0``, concave for ``0 < a < 1`` where the negative factor
                            :math:`1/(a(a-1))` makes the term convex.  ``|a - 1| < 1e-3``
                            is KL (as in the core), ``a = 0`` reverse KL.
``ChiSquared()``            ``sum(square(w - q) / q)``
``TotalVariation()``        ``0.5 * norm1(w - q)``
``SquaredL2()``             ``sum_squares(w - q)``
==========================  ===========================================================================

Every instance problem has two formulations: the one above in :math:`w`,
and one in the ratio variable :math:`t = w/u = n w` with
:math:`D(w\|u) = \frac1n\sum_i f(t_i)` (``f`` the generator of the
f-divergence: :math:`t\log t`, :math:`-\log t`, ...).  The ratio form keeps
the power cones well scaled near uniform weights and for ``a < 0``, the
direct form near sparse weights (``a > 1``).  For ``Alpha`` both are solved
and the better feasible answer is returned; for the others the ratio form is
tried only when the direct one is not solved to full accuracy.

For the class problem ``ReverseKL`` means :math:`\mathrm{KL}(y\|v)`, summed
over the support of :math:`y`; ``KL`` means :math:`\mathrm{KL}(v\|y)`, which is
finite only when :math:`v` vanishes off the support of :math:`y`, so the
variable is restricted to that support (with an integer label the only
feasible point is the label itself).

.. rubric:: The temperature form

For ``KL`` the published weights :math:`w\propto e^{-\ell/T}` are the penalty
solution at :math:`\lambda = T`.  For ``Alpha(a)``, :math:`a \ne 1`, the
stationarity conditions of the penalty problem read
:math:`(n w_i)^{a-1} = b_i/\lambda` on the support, with
:math:`b_i = [(1-a)\ell_i + c]_+` for a scalar :math:`c`.  Hence the published
weights :math:`w_i \propto b_i^{p}`, :math:`p = 1/(a-1)`, with the shift
:math:`c = T`, solve the penalty problem whose multiplier makes them sum to one:

.. math::

    \lambda = M_p(b) = \Big(\frac1n \sum_{i=1}^n b_i^{\,p}\Big)^{1/p},
    \qquad b_i = \max\big((1-a)\ell_i + T,\ 0\big),

the power mean of order :math:`p` (for ``a > 1`` the mean runs over all
:math:`n` entries, zeros included).  The reference computes this
:math:`\lambda` (:func:`implicit_lam`) and solves the penalty problem in
cvxpy, so agreement with the formula also checks the identity.
``ChiSquared`` is ``2 Alpha(2)``, hence solved at :math:`\lambda/2`.

.. rubric:: Guarantees and numerical conventions

* Returned weights lie exactly on the simplex (clipped at zero and
  renormalised) and satisfy the constraint as evaluated in float64: when the
  solver overshoots the radius, the answer is mixed with the prior
  (uniform, or the target) just enough to be feasible.  Hence the reference
  objective is always an *upper bound* on the true optimum, and a closed
  form that is optimal can only be as good or better.
* Each row's losses are shifted by their minimum and divided by their
  spread before solving (``lam`` is divided alike); neither changes the
  minimisers because the weights sum to one.
* Cases where the definition leaves a single feasible point, or a limit, are
  answered without a solver: ``n = 1``, ``delta = 0`` and ``gamma = 0`` (the
  prior), ``lam = inf`` or ``temperature = inf`` (uniform weights).
  ``delta = inf`` and ``gamma = inf`` drop the constraint.
* Losses must be finite.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

__all__ = ["instance_weights", "class_weights", "implicit_lam", "ReferenceSolverError"]

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
            "divweights.reference needs cvxpy (with the Clarabel solver); install it with "
            "`pip install divweights[reference]`"
        ) from exc
    return cp


# -- divergences ------------------------------------------------------------------


def _kind(divergence):
    """Return ``(name, alpha)`` describing ``divergence``."""
    from .divergences import KL, Alpha, ChiSquared, Divergence, SquaredL2, TotalVariation

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


def _check_strength(name, value, *, positive):
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a real number, not bool")
    if np.ndim(value) != 0:
        raise ValueError(f"{name} must be a scalar (0-d); got shape {np.shape(value)}")
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real number or a 0-d array; got {type(value).__name__}") from exc
    if math.isnan(v):
        raise ValueError(f"{name} must not be NaN")
    if positive and not v > 0:
        raise ValueError(f"{name} must be > 0; got {v!r}")
    if not positive and not v >= 0:
        raise ValueError(f"{name} must be >= 0; got {v!r}")
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


# -- instance problem ------------------------------------------------------------------------


def implicit_lam(losses, alpha, temperature):
    r"""The penalty multiplier implied by the published ``Alpha(alpha)`` temperature.

    Returns :math:`\lambda = M_p(b)`, :math:`p = 1/(\alpha-1)`,
    :math:`b = \max((1-\alpha)\ell + T, 0)` (see the module notes); for
    ``|alpha - 1| < 1e-3`` (KL) it is ``temperature`` itself.

    Parameters
    ----------
    losses : array_like, shape (n,)
        One row of losses.
    alpha : float
        The alpha of the divergence (``2`` for chi-squared's temperature).
    temperature : float
        The published ``T > 0``.

    Returns
    -------
    float
        ``lambda >= 0`` (``0`` when every bracket clamps, ``alpha > 1``).

    Raises
    ------
    ValueError
        For ``alpha < 1`` when a bracket :math:`(1-\alpha)\ell_i + T` is not
        positive (possible only for negative losses): the published weight
        is then infinite.

    Examples
    --------
    >>> from divweights.reference import implicit_lam
    >>> implicit_lam([0.0, 1.0], 2.0, 1.5)  # p = 1: the mean of max(T - l, 0)
    1.0
    >>> implicit_lam([0.0, 1.0], 1.0, 0.3)  # KL: lambda = T
    0.3
    """
    l = _as_losses(losses, "losses").reshape(-1)
    a = float(alpha)
    T = float(temperature)
    if abs(a - 1.0) < _KL_TOLERANCE:
        return T
    p = 1.0 / (a - 1.0)
    b = (1.0 - a) * l + T
    if a < 1:
        if np.any(b <= 0):
            raise ValueError(
                f"the temperature form of Alpha({a}) is undefined here: (1 - alpha) * loss + T <= 0 "
                "for some loss, which would give it infinite weight"
            )
        logs = np.log(b)
    else:
        with np.errstate(divide="ignore"):
            logs = np.log(np.maximum(b, 0.0))  # -inf for clamped entries: zeros in the mean
    z = p * logs
    top = float(np.max(z))
    if not math.isfinite(top):
        return 0.0
    log_mean = top + math.log(float(np.mean(np.exp(z - top))))
    return math.exp(log_mean / p)


def _instance_candidates(cp, kind, alpha, lp, form, s):
    """The two formulations (direct in ``w``, ratio ``t = n w``) of one instance problem."""
    n = lp.size
    u = np.full(n, 1.0 / n)

    def objective(w):
        value = float(lp @ w)
        if form == "lam":
            value += s * _divergence_value(kind, alpha, w, u)
        return value

    def restored(w):
        if form == "lam":
            return w
        return _restore(w, u, s, lambda x: _divergence_value(kind, alpha, x, u))

    out = []
    for scale in (1.0, float(n)):  # w itself, then t = n w
        x = cp.Variable(n, nonneg=True)
        if scale == 1.0:
            D = _divergence_expr(cp, kind, alpha, x, u)
        else:
            D = _ratio_expr(cp, kind, alpha, x)
        loss = lp @ x / scale
        constraints = [cp.sum(x) == scale]
        if form == "lam":
            # Divided by (1 + lam) so that the objective stays O(1) for any strength.
            problem = cp.Problem(cp.Minimize((loss + s * D) / (1.0 + s)), constraints)
        else:
            if math.isfinite(s):
                constraints.append(D <= s)
            problem = cp.Problem(cp.Minimize(loss), constraints)

        def extract(x=x):
            w = restored(_to_simplex(x.value))
            return w, objective(w)

        out.append((problem, extract))
    return out


def _instance_row(cp, kind, alpha, l, form, s):
    n = l.size
    u = np.full(n, 1.0 / n)
    if n == 1:
        return np.ones(1)
    if (form == "lam" and not math.isfinite(s)) or (form == "delta" and s == 0.0):
        return u
    lp, spread = _normalised(l)
    if form == "lam":
        s = s / spread if spread > 0 else 1.0
        if not math.isfinite(s):  # lam beyond any loss difference: the limit is uniform
            return u
    candidates = _instance_candidates(cp, kind, alpha, lp, form, s)
    # Power cones are the delicate ones: alpha problems always try both forms.
    return _best(cp, candidates, f"instance problem ({form} form, {kind})", every=kind == "alpha")


def instance_weights(losses, divergence, /, *, lam=None, delta=None, temperature=None):
    r"""Reference (cvxpy) solution of the instance problem; see :func:`divweights.instance_weights`.

    Parameters
    ----------
    losses : array_like, shape (..., n)
        Finite per-example losses; every leading index is solved separately.
    divergence : Divergence
        ``KL()``, ``ReverseKL()``, ``Alpha(a)`` (any real ``a``),
        ``ChiSquared()``, ``TotalVariation()`` or ``SquaredL2()``.
    lam, delta, temperature : float
        Exactly one.  ``lam > 0`` (penalty multiplier), ``delta >= 0``
        (radius), ``temperature > 0`` (the published parameterisation,
        ``KL``, ``Alpha`` and ``ChiSquared`` only: solved as the penalty
        problem at :func:`implicit_lam`).

    Returns
    -------
    numpy.ndarray, shape (..., n)
        float64 weights on the simplex, feasible, with an objective within
        about ``1e-7`` (relative to the loss spread) of the optimum.  When
        the constraint does not bind the solver returns *some* minimiser,
        not necessarily the one closest to uniform that the core returns.

    Raises
    ------
    ImportError
        When cvxpy is not installed.
    ReferenceSolverError
        When neither Clarabel nor SCS reaches an optimal status.

    Examples
    --------
    >>> import numpy as np
    >>> from divweights import Alpha, KL
    >>> from divweights.reference import instance_weights
    >>> losses = [0.2, 0.3, 2.5, 0.1]
    >>> np.round(instance_weights(losses, KL(), lam=0.5), 3)  # softmin(-l / 0.5)
    array([0.328, 0.268, 0.003, 0.4  ])
    >>> w = instance_weights(losses, Alpha(2.0), temperature=1.0)  # ∝ max(1 - l, 0)
    >>> np.round(w, 4)
    array([0.3333, 0.2917, 0.    , 0.375 ])
    """
    cp = _cvxpy()
    kind, alpha = _kind(divergence)
    given = {k: v for k, v in (("lam", lam), ("delta", delta), ("temperature", temperature)) if v is not None}
    if len(given) != 1:
        names = " and ".join(given) if given else "none"
        raise ValueError(f"exactly one of lam, delta, temperature must be given; got {names}")
    ((form, strength),) = given.items()
    s = _check_strength(form, strength, positive=form != "delta")
    if form == "temperature" and kind in ("tv", "l2"):
        raise ValueError(
            f"{divergence!r} does not support temperature= for instance weights: the published "
            "temperature parameterisation is defined for the Alpha family only; use lam= or delta="
        )
    l = _as_losses(losses, "losses")
    out = np.empty_like(l)
    for index in np.ndindex(*l.shape[:-1]):
        row = l[index]
        if form != "temperature":
            out[index] = _instance_row(cp, kind, alpha, row, form, s)
            continue
        lam_row = implicit_lam(row, alpha, s) if math.isfinite(s) else math.inf
        if kind == "chi2":  # chi^2 = 2 D_2: the D_2 multiplier halves
            lam_row /= 2.0
        if lam_row == 0.0:
            # every bracket clamps (alpha > 1, tiny T): the limit lam -> 0 is the LP
            out[index] = _instance_row(cp, kind, alpha, row, "delta", math.inf)
        else:
            out[index] = _instance_row(cp, kind, alpha, row, "lam", lam_row)
    return out


# -- class problem ----------------------------------------------------------------------------


def _as_targets(targets, shape):
    t = np.asarray(targets)
    k = shape[-1]
    if t.dtype == bool:
        raise TypeError("targets must be integer labels or floating probabilities, not bool")
    if np.issubdtype(t.dtype, np.integer):
        if t.shape != shape[:-1]:
            raise ValueError(
                f"integer targets must have shape class_losses.shape[:-1] = {shape[:-1]}; got {t.shape}"
            )
        if t.size and (t.min() < 0 or t.max() >= k):
            raise ValueError(f"integer targets must lie in [0, {k}) for {k} classes")
        return np.eye(k)[t]
    if not np.issubdtype(t.dtype, np.floating):
        raise TypeError(f"targets must be integer labels or floating probabilities; got dtype {t.dtype}")
    if t.shape != shape:
        raise ValueError(f"probability targets must have the shape of class_losses {shape}; got {t.shape}")
    y = t.astype(np.float64)
    if np.any(y < 0) or not np.all(np.isfinite(y)):
        raise ValueError("probability targets must be finite and nonnegative")
    sums = y.sum(axis=-1, keepdims=True)
    if np.any(np.abs(sums - 1.0) > 1e-6):
        raise ValueError("probability targets must sum to 1 along the last axis")
    return y / sums


def _class_row(cp, kind, l, y, gamma):
    k = l.size
    if gamma == 0.0 or k == 1:
        return y.copy()
    lp, _ = _normalised(l)
    supp = y > 0
    # KL(v || y) is infinite as soon as v puts mass off the support of y, so
    # for KL the variable lives on the support; the others may leave it.
    idx = np.flatnonzero(supp) if kind == "kl" else np.arange(k)
    if idx.size == 1:
        return y.copy()
    x = cp.Variable(idx.size, nonneg=True)
    constraints = [cp.sum(x) == 1]
    if math.isfinite(gamma):
        if kind == "reverse_kl":  # KL(y || v) = sum over supp(y) of y log(y / v)
            pos = np.flatnonzero(supp)
            D = _divergence_expr(cp, "reverse_kl", None, x[pos], y[pos])
        else:
            D = _divergence_expr(cp, kind, None, x, y[idx])
        constraints.append(D <= gamma)
    problem = cp.Problem(cp.Minimize(lp[idx] @ x), constraints)

    def extract():
        v = np.zeros(k)
        v[idx] = _to_simplex(x.value)
        v = _restore(v, y, gamma, lambda z: _divergence_value(kind, None, z, y))
        return v, float(lp @ v)

    return _best(cp, [(problem, extract)], f"class problem ({kind})")


def class_weights(class_losses, targets, divergence, /, *, gamma):
    r"""Reference (cvxpy) solution of the class problem; see :func:`divweights.class_weights`.

    Parameters
    ----------
    class_losses : array_like, shape (..., k)
        Finite class losses.
    targets : array_like
        Integer labels of shape ``(...)`` or probabilities of shape ``(..., k)``.
    divergence : Divergence
        ``TotalVariation()``, ``ReverseKL()`` (``KL(target || v) <= gamma``),
        ``SquaredL2()`` or ``KL()`` (``KL(v || target) <= gamma``, ``v``
        restricted to the support of the target).
    gamma : float
        Radius ``>= 0`` (``0`` returns the targets).

    Returns
    -------
    numpy.ndarray, shape (..., k)
        float64 rows on the simplex, feasible, with an objective within about
        ``1e-7`` (relative to the loss spread) of the optimum.

    Raises
    ------
    ImportError
        When cvxpy is not installed.
    ReferenceSolverError
        When neither Clarabel nor SCS reaches an optimal status.

    Examples
    --------
    >>> import numpy as np
    >>> from divweights import ReverseKL, TotalVariation
    >>> from divweights.reference import class_weights
    >>> L = [[2.0, 0.1, 1.0]]
    >>> np.round(class_weights(L, [0], TotalVariation(), gamma=0.3), 4)
    array([[0.7, 0.3, 0. ]])
    >>> np.round(class_weights(L, [0], ReverseKL(), gamma=0.1), 4)  # v_y = exp(-0.1)
    array([[0.9048, 0.0952, 0.    ]])
    """
    cp = _cvxpy()
    kind, _ = _kind(divergence)
    if kind not in ("tv", "reverse_kl", "l2", "kl"):
        raise ValueError(
            f"class weights are not available for {divergence!r}; supported: TotalVariation(), "
            "ReverseKL(), SquaredL2(), and KL()"
        )
    g = _check_strength("gamma", gamma, positive=False)
    L = _as_losses(class_losses, "class_losses")
    Y = _as_targets(targets, L.shape)
    out = np.empty_like(L)
    for index in np.ndindex(*L.shape[:-1]):
        out[index] = _class_row(cp, kind, L[index], Y[index], g)
    return out
