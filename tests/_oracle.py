"""Shared oracle-test helpers: independent NumPy statements of the definitions and the comparisons.

Used by test_oracle.py (instance problem) and test_oracle_class.py (class problem); see the notes there.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import divweights as dw
from divweights import testing as ref

try:
    import cvxpy  # noqa: F401

    HAVE_CVXPY = True
except ImportError:  # pragma: no cover
    HAVE_CVXPY = False

requires_cvxpy = pytest.mark.skipif(not HAVE_CVXPY, reason="cvxpy (divweights[reference]) is not installed")

DIVERGENCES = [
    dw.KL(),
    dw.ReverseKL(),
    dw.Alpha(0.1),
    dw.Alpha(0.5),
    dw.Alpha(2.0),
    dw.Alpha(3.0),
    dw.Alpha(-1.0),
    dw.ChiSquared(),
    dw.TotalVariation(),
    dw.SquaredL2(),
]
FORMS = ["lam", "delta", "temperature"]
CLASS_DIVERGENCES = [dw.TotalVariation(), dw.ReverseKL(), dw.SquaredL2(), dw.KL()]

OBJ_RTOL = 1e-6  # objective tolerance, relative to the spread of the losses
D_RTOL = 1e-8  # constraint excess of the core, relative to the radius (exact solvers reach ~1e-14)
D_ATOL = 1e-12
TIGHT_RTOL = 1e-6  # |D - delta| when the constraint binds
TIGHT_ATOL = 1e-12


# -- independent NumPy statements of the definitions ---------------------------------------


def alpha_of(div):
    """alpha for the Alpha family (KL: 1, ChiSquared: 2 for its temperature form), else None."""
    if isinstance(div, dw.KL):
        return 1.0
    if isinstance(div, dw.ChiSquared):
        return 2.0
    if isinstance(div, dw.Alpha):
        return 1.0 if abs(div.alpha - 1.0) < 1e-3 else float(div.alpha)
    return None


def div_value(div, p, q):
    """``D(p || q)`` straight from the definition (``inf`` outside the domain)."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if isinstance(div, dw.TotalVariation):
        return 0.5 * float(np.sum(np.abs(p - q)))
    if isinstance(div, dw.SquaredL2):
        return float(np.sum((p - q) ** 2))
    if isinstance(div, dw.ChiSquared):
        return float(np.sum((p - q) ** 2 / q))
    a = alpha_of(div)

    def kl(x, z):
        if np.any((x > 0) & (z <= 0)):
            return math.inf
        pos = x > 0
        return float(np.sum(x[pos] * np.log(x[pos] / z[pos])))

    if a == 1.0:
        return kl(p, q)
    if a == 0.0:
        return kl(q, p)
    if a < 0 and np.any((p <= 0) & (q > 0)):
        return math.inf
    safe = np.where(p > 0, p, 1.0)
    mixed = np.where(p > 0, safe**a * q ** (1.0 - a), 0.0)
    return float(np.sum(mixed - q - a * (p - q)) / (a * (a - 1.0)))


def uniform_on_argmin(l):
    m = (l == l.min()).astype(np.float64)
    return m / m.sum()


def max_divergence(div, l):
    """Largest radius at which the instance constraint still binds: D of the
    minimiser closest to uniform (uniform on the argmin)."""
    n = l.size
    m = int(np.sum(l == l.min()))
    if m == n:
        return 0.0
    if isinstance(div, dw.TotalVariation):
        return 1.0 - m / n
    a = alpha_of(div)
    if a is not None and a <= 0:
        return math.inf
    return div_value(div, uniform_on_argmin(l), np.full(n, 1.0 / n))


def implied_lam(div, l, temperature):
    """Penalty multiplier of ``div`` at which the temperature weights are optimal."""
    lam = ref.implicit_lam(l, alpha_of(div), temperature)
    return lam / 2.0 if isinstance(div, dw.ChiSquared) else lam


def published_weights(l, a, T):
    """The published code's formula, written directly in NumPy."""
    if abs(a - 1.0) < 1e-3:
        w = np.exp(-l / T)
    else:
        w = np.maximum((1.0 - a) * l + T, 0.0) ** (1.0 / (a - 1.0))
    return w / w.sum()


def assert_on_simplex(w):
    assert np.all(np.isfinite(w)), w
    assert np.all(w >= 0), w
    assert abs(float(np.sum(w)) - 1.0) <= 1e-12, float(np.sum(w))


# -- checks ---------------------------------------------------------------------------------------


def check_instance(div, form, strength, l):
    """Compare the core with the reference on one row of losses; return the core weights."""
    l = np.asarray(l, dtype=np.float64)
    n = l.size
    u = np.full(n, 1.0 / n)
    w = np.asarray(dw.instance_weights(l, div, **{form: strength}))
    w_ref = ref.instance_weights(l, div, **{form: strength})
    assert_on_simplex(w)
    assert_on_simplex(w_ref)
    lp = l - l.min()  # objectives on shifted losses: no cancellation at large offsets
    spread = float(lp.max())
    if form == "delta":
        obj, obj_ref = float(lp @ w), float(lp @ w_ref)
        tol = OBJ_RTOL * spread
        assert obj <= obj_ref + tol, f"core objective {obj!r} > reference {obj_ref!r} (+{tol:.1e})"
        d = div_value(div, w, u)
        assert d <= strength * (1 + D_RTOL) + D_ATOL, f"D(w||u) = {d!r} exceeds delta = {strength!r}"
        if strength < max_divergence(div, l) and spread > 0:
            assert abs(d - strength) <= TIGHT_RTOL * strength + TIGHT_ATOL, (
                f"binding constraint not tight: D = {d!r}, delta = {strength!r}"
            )
    else:
        lam = strength if form == "lam" else implied_lam(div, l, strength)
        if not math.isfinite(lam):
            np.testing.assert_allclose(w, u, rtol=0, atol=1e-12)
            return w
        obj = float(lp @ w) + lam * div_value(div, w, u)
        obj_ref = float(lp @ w_ref) + lam * div_value(div, w_ref, u)
        tol = OBJ_RTOL * (spread + abs(obj_ref)) + 1e-15
        assert obj <= obj_ref + tol, (
            f"core penalised objective {obj!r} > reference {obj_ref!r} (+{tol:.1e}) at lam = {lam!r}"
        )
    return w


def check_class(div, L, targets, gamma):
    """Compare the core class weights with the reference, row by row."""
    L = np.asarray(L, dtype=np.float64)
    V = np.asarray(dw.class_weights(L, targets, div, gamma=gamma))
    V_ref = ref.class_weights(L, targets, div, gamma=gamma)
    assert V.shape == L.shape
    t = np.asarray(targets)
    Y = np.eye(L.shape[-1])[t] if np.issubdtype(t.dtype, np.integer) else t.astype(np.float64)
    for index in np.ndindex(*L.shape[:-1]):
        l, v, v_ref, y = L[index], V[index], V_ref[index], Y[index]
        assert_on_simplex(v)
        lp = l - l.min()
        spread = float(lp.max())
        obj, obj_ref = float(lp @ v), float(lp @ v_ref)
        tol = OBJ_RTOL * spread
        assert obj <= obj_ref + tol, f"row {index}: core {obj!r} > reference {obj_ref!r} (+{tol:.1e})"
        d = div_value(div, v, y)
        assert d <= gamma * (1 + D_RTOL) + D_ATOL, f"row {index}: D(v||y) = {d!r} exceeds gamma = {gamma!r}"
        # The constraint binds when the reference cannot reach the best feasible class.
        reachable = lp[y > 0] if isinstance(div, dw.KL) else lp
        if obj_ref > float(reachable.min()) + 100 * tol + 1e-12:
            assert abs(d - gamma) <= TIGHT_RTOL * gamma + TIGHT_ATOL, (
                f"row {index}: binding constraint not tight: D = {d!r}, gamma = {gamma!r}"
            )
    return V


# -- strengths ----------------------------------------------------------------------------------


def draw_strength(rng, div, form, l):
    spread = float(np.ptp(l)) or 1.0
    if form == "lam":
        return spread * 10 ** rng.uniform(-2.0, 1.0)
    if form == "delta":
        dmax = max_divergence(div, l)
        if math.isinf(dmax):
            return 10 ** rng.uniform(-3.0, 0.5)
        return dmax * rng.uniform(0.02, 0.95)
    a = alpha_of(div)
    if a > 1:  # w ∝ [T - (a-1) l]_+: keep at least the minimiser positive
        return (a - 1.0) * (l.min() + spread * 10 ** rng.uniform(-1.5, 0.3))
    return spread * 10 ** rng.uniform(-2.0, 1.0)


def supported(div, form):
    return form in div.instance_forms


def div_id(div):
    return repr(div)


ALL_FORM_CASES = [(div, form) for div in DIVERGENCES for form in FORMS if supported(div, form)]
CASE_IDS = [f"{div!r}-{form}" for div, form in ALL_FORM_CASES]
