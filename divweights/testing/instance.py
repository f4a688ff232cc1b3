"""The instance problem (penalty, constraint and temperature forms) solved with cvxpy."""

from __future__ import annotations

import math

import numpy as np

from ..strength import Strength
from ._solve import (
    _KL_TOLERANCE,
    _as_losses,
    _best,
    _cvxpy,
    _divergence_expr,
    _divergence_value,
    _kind,
    _normalised,
    _ratio_expr,
    _restore,
    _to_simplex,
)

__all__ = ["implicit_lam", "instance_weights"]


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
    >>> from divweights.testing import implicit_lam
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
    ValueError
        For none or several of ``lam``, ``delta``, ``temperature``, a form the
        divergence does not support (as :meth:`divweights.Strength.parse`
        decides), a value out of range, or non-finite losses.
    ReferenceSolverError
        When neither Clarabel nor SCS reaches an optimal status.

    Examples
    --------
    >>> import numpy as np
    >>> import divweights as dw
    >>> from divweights.testing import instance_weights
    >>> losses = np.array([0.2, 0.3, 2.5, 0.1])
    >>> np.round(instance_weights(losses, dw.KL(), lam=0.5), 3)  # softmin(-l / 0.5)
    array([0.328, 0.268, 0.003, 0.4  ])
    >>> w = instance_weights(losses, dw.Alpha(2.0), temperature=1.0)  # ∝ max(1 - l, 0)
    >>> np.round(w, 4)
    array([0.3333, 0.2917, 0.    , 0.375 ])
    >>> bool(np.allclose(w, dw.instance_weights(losses, dw.Alpha(2.0), temperature=1.0), atol=1e-7))
    True
    """
    # The library's own parse: exactly one form, one the divergence supports, a valid value.
    strength = Strength.parse(divergence, lam=lam, delta=delta, temperature=temperature, required=True)
    form, s = strength.kind, float(strength.value)
    cp = _cvxpy()
    kind, alpha = _kind(divergence)
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
