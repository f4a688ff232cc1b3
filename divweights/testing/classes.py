"""The class problem (one constrained row per example) solved with cvxpy."""

from __future__ import annotations

import math

import numpy as np

from ._solve import (
    _as_losses,
    _best,
    _check_gamma,
    _cvxpy,
    _divergence_expr,
    _divergence_value,
    _kind,
    _normalised,
    _restore,
    _to_simplex,
)

__all__ = ["class_weights"]


def _as_targets(targets, shape):
    t = np.asarray(targets)
    k = shape[-1]
    if t.dtype == bool:
        raise TypeError("targets must be integer labels or floating probabilities, not bool")
    if np.issubdtype(t.dtype, np.integer):
        if t.shape != shape[:-1]:
            raise ValueError(f"integer targets must have shape class_losses.shape[:-1] = {shape[:-1]}; got {t.shape}")
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
    ValueError
        For a divergence without class weights here (``Alpha(a)``,
        ``ChiSquared()``), targets of the wrong shape, out of range or not
        summing to 1, non-finite losses, or ``gamma`` negative or NaN.
    ImportError
        When cvxpy is not installed.
    ReferenceSolverError
        When neither Clarabel nor SCS reaches an optimal status.

    Examples
    --------
    >>> import numpy as np
    >>> from divweights import ReverseKL, TotalVariation
    >>> from divweights.testing import class_weights
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
    g = _check_gamma(gamma)
    L = _as_losses(class_losses, "class_losses")
    Y = _as_targets(targets, L.shape)
    out = np.empty_like(L)
    for index in np.ndindex(*L.shape[:-1]):
        out[index] = _class_row(cp, kind, L[index], Y[index], g)
    return out
