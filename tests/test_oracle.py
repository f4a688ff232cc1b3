"""The closed forms of divweights against the cvxpy oracle in :mod:`divweights.testing`.

Quality is measured by objective gap and constraint excess, not by weight
equality: the reference is accurate to about 1e-7 and its answers are always
feasible (see its module notes), so its objective is an upper bound on the
optimum and an exact closed form must match or beat it:

* constraint form: ``<w, l> <= reference + tol``, ``D(w || u) <= delta + tol``
  and, when the constraint binds, ``|D(w || u) - delta| <= tol``;
* penalty and temperature forms: penalised objective ``<= reference + tol``
  (the temperature form at the multiplier implied by the published formula,
  which also checks that identity);
* class problems likewise, row by row.

Divergences are evaluated with an independent NumPy statement of each
definition (checked against the core's own ``D(p, q)`` below).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import divweights as dw
from divweights import testing as ref
from divweights.testing import _solve

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


# -- the published formula (no cvxpy needed) ------------------------------------------------


@pytest.mark.parametrize(
    ("a", "T"),
    [
        (0.1, 0.1),  # published default
        (0.1, 2.5),
        (0.5, 0.3),
        (0.0, 1.0),
        (-1.0, 0.7),
        (-2.5, 4.0),
        (2.0, 3.0),
        (3.0, 5.0),
        (1.5, 2.0),
        (1.0, 0.1),
        (1.0, 10.0),
        (1.0005, 0.5),  # inside the KL tolerance
    ],
)
def test_temperature_matches_published_formula(a, T):
    rng = np.random.default_rng(7)
    l = rng.exponential(1.0, size=(4, 33))
    div = dw.KL() if a == 1.0 else dw.Alpha(a)
    w = np.asarray(dw.instance_weights(l, div, temperature=T))
    expected = np.stack([published_weights(row, a, T) for row in l])
    assert not np.all(expected[..., 1:] == 0)
    np.testing.assert_allclose(w, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("T", [0.5, 2.0, 7.0])
def test_chi_squared_temperature_matches_alpha_two_formula(T):
    l = np.random.default_rng(8).exponential(1.0, size=20)
    w = np.asarray(dw.instance_weights(l, dw.ChiSquared(), temperature=T))
    np.testing.assert_allclose(w, published_weights(l, 2.0, T), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("div", DIVERGENCES, ids=div_id)
def test_independent_divergence_matches_core_value(div):
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(6), size=5)
    q = rng.dirichlet(np.ones(6), size=5)
    core = np.asarray(div(p, q))
    mine = np.array([div_value(div, a, b) for a, b in zip(p, q)])
    np.testing.assert_allclose(core, mine, rtol=1e-10, atol=1e-14)


# -- instance problem: random inputs ---------------------------------------------------------


@requires_cvxpy
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [1, 2, 7, 32])
@pytest.mark.parametrize(("div", "form"), ALL_FORM_CASES, ids=CASE_IDS)
def test_instance_random(div, form, n, seed):
    rng = np.random.default_rng([seed, n, DIVERGENCES.index(div), FORMS.index(form)])
    # cross-entropy-like losses, sometimes on a larger scale
    l = rng.exponential(1.0, size=n) * rng.choice([1.0, 10.0])
    check_instance(div, form, draw_strength(rng, div, form, l), l)


# -- instance problem: adversarial inputs -----------------------------------------------------

@requires_cvxpy
@pytest.mark.parametrize(("div", "form"), ALL_FORM_CASES, ids=CASE_IDS)
def test_instance_ties(div, form):
    l = np.array([0.5, 2.0, 0.5, 3.1, 2.0, 0.5, 3.1])
    rng = np.random.default_rng(11)
    check_instance(div, form, draw_strength(rng, div, form, l), l)


@requires_cvxpy
@pytest.mark.parametrize(("div", "form"), ALL_FORM_CASES, ids=CASE_IDS)
def test_instance_all_equal_losses_give_uniform(div, form):
    l = np.full(6, 1.3)
    strength = {"lam": 0.7, "delta": 0.2, "temperature": 0.9}[form]
    w = check_instance(div, form, strength, l)
    np.testing.assert_allclose(w, np.full(6, 1 / 6), rtol=0, atol=1e-12)


@requires_cvxpy
@pytest.mark.parametrize("n", [7, 32])
@pytest.mark.parametrize(("div", "form"), ALL_FORM_CASES, ids=CASE_IDS)
def test_instance_huge_spread(div, form, n):
    rng = np.random.default_rng(n)
    l = rng.permutation(np.logspace(-6, 6, n))
    if form == "temperature":
        a = alpha_of(div)
        # T on the scale of the losses, so that the weights are not all on one example
        strength = (a - 1.0) * 1e3 if a > 1 else 1e3
    else:
        strength = draw_strength(rng, div, form, l)
    check_instance(div, form, strength, l)


@requires_cvxpy
@pytest.mark.parametrize("strength", [1e-6, 1e-3, 1e3, 1e6])
@pytest.mark.parametrize("div", DIVERGENCES, ids=div_id)
def test_instance_extreme_lam(div, strength):
    l = np.random.default_rng(5).exponential(1.0, size=9)
    check_instance(div, "lam", strength, l)


@requires_cvxpy
@pytest.mark.parametrize("strength", [1e-3, 1e3])
@pytest.mark.parametrize("div", [d for d in DIVERGENCES if supported(d, "temperature")], ids=div_id)
def test_instance_extreme_temperature(div, strength):
    l = np.random.default_rng(6).exponential(1.0, size=9)
    check_instance(div, "temperature", strength, l)


@requires_cvxpy
@pytest.mark.parametrize("fraction", [1e-8, 1e-4])
@pytest.mark.parametrize("div", DIVERGENCES, ids=div_id)
def test_instance_tiny_delta(div, fraction):
    l = np.random.default_rng(9).exponential(1.0, size=9)
    dmax = max_divergence(div, l)
    check_instance(div, "delta", fraction * (1.0 if math.isinf(dmax) else dmax), l)


@pytest.mark.parametrize(("div", "form"), ALL_FORM_CASES, ids=CASE_IDS)
def test_instance_single_example(div, form):
    w = np.asarray(dw.instance_weights(np.array([4.2]), div, **{form: 0.3}))
    np.testing.assert_array_equal(w, [1.0])
    if HAVE_CVXPY:
        np.testing.assert_array_equal(ref.instance_weights([4.2], div, **{form: 0.3}), [1.0])


@pytest.mark.parametrize(
    ("div", "form"),
    [c for c in ALL_FORM_CASES if c[1] != "delta"],
    ids=[i for c, i in zip(ALL_FORM_CASES, CASE_IDS) if c[1] != "delta"],
)
def test_instance_infinite_strength_gives_uniform(div, form):
    l = np.array([0.3, 1.0, 0.1, 2.0])
    np.testing.assert_allclose(np.asarray(dw.instance_weights(l, div, **{form: math.inf})), 0.25, atol=1e-15)
    if HAVE_CVXPY:
        np.testing.assert_array_equal(ref.instance_weights(l, div, **{form: math.inf}), 0.25)


@pytest.mark.parametrize("div", DIVERGENCES, ids=div_id)
def test_instance_zero_delta_gives_uniform(div):
    l = np.array([0.3, 1.0, 0.1, 2.0])
    w = np.asarray(dw.instance_weights(l, div, delta=0.0))
    np.testing.assert_allclose(w, np.full(4, 0.25), rtol=0, atol=1e-15)


NONBINDING_DIVERGENCES = [d for d in DIVERGENCES if not (alpha_of(d) is not None and alpha_of(d) <= 0)]


@requires_cvxpy
@pytest.mark.parametrize("factor", [1.0, 1.5, 1e6])
@pytest.mark.parametrize("div", NONBINDING_DIVERGENCES, ids=div_id)
def test_instance_nonbinding_delta_gives_closest_minimiser(div, factor):
    # two tied minimisers: the minimiser closest to uniform is (1/2, 1/2, 0, ...)
    l = np.array([0.4, 0.1, 2.0, 0.1, 0.9, 5.0])
    delta = factor * max_divergence(div, l)
    w = check_instance(div, "delta", delta, l)
    assert float(w @ l) == pytest.approx(0.1, abs=1e-12)
    if not isinstance(div, dw.TotalVariation):
        np.testing.assert_allclose(w, uniform_on_argmin(l), rtol=0, atol=1e-12)


@pytest.mark.parametrize("div", DIVERGENCES, ids=div_id)
def test_instance_infinite_delta_gives_minimiser(div):
    l = np.array([0.4, 0.1, 2.0, 0.1])
    w = np.asarray(dw.instance_weights(l, div, delta=math.inf))
    assert float(w @ l) == pytest.approx(0.1, abs=1e-12)
    if HAVE_CVXPY:
        assert float(ref.instance_weights(l, div, delta=math.inf) @ l) == pytest.approx(0.1, abs=1e-7)


@requires_cvxpy
@pytest.mark.parametrize("div", [dw.ReverseKL(), dw.Alpha(-1.0)], ids=div_id)
def test_instance_large_delta_still_binds_for_nonpositive_alpha(div):
    # For alpha <= 0, D(w || u) is infinite on the boundary: every radius binds.
    l = np.array([0.4, 0.1, 2.0, 0.1, 0.9])
    w = check_instance(div, "delta", 50.0, l)
    assert np.all(w > 0)


@requires_cvxpy
@pytest.mark.parametrize("div", [dw.Alpha(2.0), dw.Alpha(3.0), dw.ChiSquared()], ids=div_id)
def test_instance_temperature_all_clamped_is_the_minimiser(div):
    # T below (a - 1) min(l): every bracket is <= 0, the limit is uniform on the argmin
    l = np.array([1.0, 1.0, 2.0, 3.0])
    w = check_instance(div, "temperature", 0.5 * (alpha_of(div) - 1.0), l)
    np.testing.assert_allclose(w, uniform_on_argmin(l), rtol=0, atol=1e-15)


@requires_cvxpy
@pytest.mark.parametrize(("div", "form"), ALL_FORM_CASES, ids=CASE_IDS)
def test_instance_large_offset(div, form):
    # the same problem shifted by 1e6: only differences matter
    base = np.array([0.3, 1.2, 0.05, 2.5, 0.7])
    rng = np.random.default_rng(4)
    strength = draw_strength(rng, div, form, base)
    if form == "temperature" and alpha_of(div) > 1:
        strength += (alpha_of(div) - 1.0) * 1e6
    check_instance(div, form, strength, base + 1e6)


# -- large radii for alpha > 1: the bracket must not clamp every non-minimiser ----------------------
# (regression: the upper end once assumed |y| e^-s << 1, which fails once sqrt(delta) >= 2/(alpha-1))


@requires_cvxpy
@pytest.mark.parametrize(
    ("div", "delta", "losses"),
    [
        (dw.Alpha(5.0), 0.5, [0.0, 1.0]),  # d_max 0.75, core gives D = 0.75
        (dw.Alpha(4.0), 0.55, [0.0, 1.0]),  # d_max 0.583
        (dw.Alpha(3.0), 1.2, [2.368, 0.254, 2.467]),  # d_max 4/3
        (dw.Alpha(2.0), 4.2, [0.0] + [1.0] * 9),  # d_max 4.5
        (dw.ChiSquared(), 8.4, [0.0] + [1.0] * 9),  # d_max 9
        (dw.SquaredL2(), 0.85, [0.0] + [1.0] * 9),  # d_max 0.9
    ],
    ids=["Alpha(5)", "Alpha(4)", "Alpha(3)", "Alpha(2)", "ChiSquared", "SquaredL2"],
)
def test_instance_large_delta_alpha_above_one(div, delta, losses):
    check_instance(div, "delta", delta, np.array(losses))


def _clustered_case(div, form):
    return pytest.param(div, form, id=f"{div!r}-{form}")


@requires_cvxpy
@pytest.mark.parametrize(("div", "form"), [_clustered_case(div, form) for div, form in ALL_FORM_CASES])
def test_instance_clustered_losses_strong_reweighting(div, form):
    # one clear minimiser, the rest nearly tied, strong reweighting (90% of d_max)
    l = np.array([0.0, 1.0, 1.0, 1.001, 0.999, 1.0, 1.002, 0.998, 1.0, 1.0])
    if form == "delta":
        dmax = max_divergence(div, l)
        strength = 5.0 if math.isinf(dmax) else 0.9 * dmax
    elif form == "lam":
        strength = 0.05
    else:
        a = alpha_of(div)
        strength = (a - 1.0) * 0.2 if a > 1 else 0.05
    check_instance(div, form, strength, l)


@requires_cvxpy
@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("alpha", [-2.5, -0.3, 0.25, 0.8, 1.2, 1.5, 2.5, 3.0])
@pytest.mark.parametrize("form", FORMS)
def test_instance_alpha_sweep(alpha, form, seed):
    rng = np.random.default_rng([seed, int(100 * alpha) + 1000, FORMS.index(form)])
    n = int(rng.choice([3, 16, 64]))
    l = rng.exponential(1.0, size=n) * rng.choice([0.1, 1.0, 30.0])
    div = dw.Alpha(alpha)
    check_instance(div, form, draw_strength(rng, div, form, l), l)


# -- class problem ------------------------------------------------------------------------------


def class_losses(rng, rows, k, scale=3.0):
    z = rng.normal(0.0, scale, size=(rows, k))
    z -= z.max(axis=-1, keepdims=True)
    return -(z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True)))


def soft_targets(rng, rows, k):
    """Mixup pairs (zeros), label smoothing (no zeros) and sparse Dirichlet rows."""
    out = np.zeros((rows, k))
    for i in range(rows):
        kind = i % 3
        if kind == 0:
            a, b = rng.choice(k, size=2, replace=False)
            r = rng.uniform(0.05, 0.95)
            out[i, a] += r
            out[i, b] += 1 - r
        elif kind == 1:
            out[i] = 0.1 / k
            out[i, rng.integers(k)] += 0.9
        else:
            mask = rng.random(k) < 0.6
            mask[rng.integers(k)] = True
            out[i, mask] = rng.dirichlet(np.full(int(mask.sum()), 0.7))
    return out


GAMMAS = {
    "TotalVariation()": [0.02, 0.2, 0.6],
    "ReverseKL()": [0.01, 0.2, 1.5],
    "SquaredL2()": [0.002, 0.05, 0.6],
    "KL()": [0.01, 0.2, 1.5],
}

CLASS_CASES = [
    (div, t) for div in CLASS_DIVERGENCES for t in ("int", "soft") if not (isinstance(div, dw.KL) and t == "int")
]
CLASS_IDS = [f"{div!r}-{t}" for div, t in CLASS_CASES]


@requires_cvxpy
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("k", [2, 5, 10])
@pytest.mark.parametrize(("div", "target_kind"), CLASS_CASES, ids=CLASS_IDS)
def test_class_random(div, target_kind, k, seed):
    rng = np.random.default_rng([seed, k, CLASS_CASES.index((div, target_kind))])
    rows = 3
    L = class_losses(rng, rows, k)
    targets = rng.integers(0, k, size=rows) if target_kind == "int" else soft_targets(rng, rows, k)
    gamma = GAMMAS[repr(div)][(seed + k) % 3]
    check_class(div, L, targets, gamma)


@requires_cvxpy
@pytest.mark.parametrize(("div", "target_kind"), CLASS_CASES, ids=CLASS_IDS)
def test_class_ties(div, target_kind):
    L = np.array([[1.0, 0.2, 0.2, 3.0, 1.0], [0.5, 0.5, 0.5, 0.5, 0.5], [2.0, 2.0, 0.1, 0.1, 4.0]])
    if target_kind == "int":
        targets = np.array([0, 2, 4])
    else:
        targets = np.array([[0.5, 0.0, 0.0, 0.5, 0.0], [0.2, 0.2, 0.2, 0.2, 0.2], [0.4, 0.4, 0.0, 0.0, 0.2]])
    V = check_class(div, L, targets, GAMMAS[repr(div)][1])
    assert V.shape == L.shape


@requires_cvxpy
@pytest.mark.parametrize(("div", "target_kind"), CLASS_CASES, ids=CLASS_IDS)
def test_class_two_classes(div, target_kind):
    L = np.array([[0.1, 2.3], [1.7, 0.2], [0.6, 0.6]])
    targets = np.array([1, 0, 1]) if target_kind == "int" else np.array([[0.3, 0.7], [0.9, 0.1], [0.5, 0.5]])
    for gamma in GAMMAS[repr(div)]:
        check_class(div, L, targets, gamma)


@requires_cvxpy
@pytest.mark.parametrize(("div", "target_kind"), CLASS_CASES, ids=CLASS_IDS)
def test_class_huge_spread(div, target_kind):
    rng = np.random.default_rng(21)
    L = np.stack([rng.permutation(np.logspace(-6, 6, 8)) for _ in range(3)])
    targets = rng.integers(0, 8, size=3) if target_kind == "int" else soft_targets(rng, 3, 8)
    check_class(div, L, targets, GAMMAS[repr(div)][1])


# Radii past which nothing changes (TV >= 1, ...).  ReverseKL keeps exp(-gamma) on
# the label, which underflows to 0 (D = inf) in float64 beyond gamma ~ 745: use 30.
HUGE_GAMMA = {"TotalVariation()": 5.0, "ReverseKL()": 30.0, "SquaredL2()": 10.0, "KL()": 1e3}


@requires_cvxpy
@pytest.mark.filterwarnings("ignore:reference solve of the class problem:RuntimeWarning")
@pytest.mark.parametrize("size", ["tiny", "huge"])
@pytest.mark.parametrize(("div", "target_kind"), CLASS_CASES, ids=CLASS_IDS)
def test_class_extreme_gamma(div, target_kind, size):
    gamma = 1e-8 if size == "tiny" else HUGE_GAMMA[repr(div)]
    rng = np.random.default_rng(22)
    L = class_losses(rng, 3, 6)
    targets = rng.integers(0, 6, size=3) if target_kind == "int" else soft_targets(rng, 3, 6)
    check_class(div, L, targets, gamma)


@requires_cvxpy
@pytest.mark.parametrize("div", [dw.TotalVariation(), dw.ReverseKL(), dw.SquaredL2(), dw.KL()], ids=div_id)
def test_class_argmin_outside_soft_support(div):
    # the best class has zero target mass: KL must stay on the support, the others may leave it
    L = np.array([[0.05, 1.0, 1.5, 3.0], [2.0, 0.3, 0.01, 0.9]])
    targets = np.array([[0.0, 0.6, 0.4, 0.0], [0.5, 0.0, 0.0, 0.5]])
    V = check_class(div, L, targets, GAMMAS[repr(div)][1])
    if isinstance(div, dw.KL):
        assert np.all(V[targets == 0] == 0)
    else:
        assert V[0, 0] > 0 and V[1, 2] > 0


@pytest.mark.parametrize(("div", "target_kind"), CLASS_CASES, ids=CLASS_IDS)
def test_class_zero_gamma_returns_targets(div, target_kind):
    L = np.array([[1.0, 0.2, 3.0], [0.1, 0.4, 0.3]])
    targets = np.array([0, 2]) if target_kind == "int" else np.array([[0.2, 0.0, 0.8], [0.1, 0.3, 0.6]])
    Y = np.eye(3)[targets] if target_kind == "int" else targets
    V = np.asarray(dw.class_weights(L, targets, div, gamma=0.0))
    np.testing.assert_allclose(V, Y, rtol=0, atol=1e-15)


@requires_cvxpy
@pytest.mark.parametrize("div", [dw.TotalVariation(), dw.ReverseKL(), dw.SquaredL2()], ids=div_id)
def test_class_label_is_argmin_keeps_label(div):
    L = np.array([[0.1, 0.5, 2.0], [3.0, 1.0, 0.2]])
    targets = np.array([0, 2])
    V = check_class(div, L, targets, GAMMAS[repr(div)][2])
    np.testing.assert_allclose(V, np.eye(3)[targets], rtol=0, atol=1e-12)


@requires_cvxpy
@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [3, 10, 100])
@pytest.mark.parametrize(("div", "target_kind"), CLASS_CASES, ids=CLASS_IDS)
def test_class_sweep(div, target_kind, k, seed):
    rng = np.random.default_rng([seed, k, 77, CLASS_CASES.index((div, target_kind))])
    L = class_losses(rng, 4, k, scale=rng.choice([0.3, 3.0, 20.0]))
    targets = rng.integers(0, k, size=4) if target_kind == "int" else soft_targets(rng, 4, k)
    gamma = float(rng.choice(GAMMAS[repr(div)])) * rng.uniform(0.5, 2.0)
    check_class(div, L, targets, gamma)


# -- the reference itself -----------------------------------------------------------------------


@requires_cvxpy
def test_reference_loops_over_leading_axes():
    rng = np.random.default_rng(31)
    l = rng.exponential(1.0, size=(2, 2, 5))
    w = ref.instance_weights(l, dw.KL(), lam=0.4)
    assert w.shape == l.shape
    for index in np.ndindex(2, 2):
        np.testing.assert_allclose(w[index], ref.instance_weights(l[index], dw.KL(), lam=0.4), atol=1e-9)
    L = rng.exponential(1.0, size=(2, 3, 4))
    v = ref.class_weights(L, rng.integers(0, 4, size=(2, 3)), dw.TotalVariation(), gamma=0.3)
    assert v.shape == L.shape


@requires_cvxpy
def test_reference_temperature_identity_recovers_published_weights():
    # the penalty solution at the implicit multiplier is the published formula
    l = np.random.default_rng(32).exponential(1.0, size=12)
    for a, T in [(0.1, 0.1), (0.5, 1.0), (-1.0, 0.5), (2.0, 3.0)]:
        w = ref.instance_weights(l, dw.Alpha(a), temperature=T)
        np.testing.assert_allclose(w, published_weights(l, a, T), rtol=0, atol=1e-5)


def test_implicit_lam_is_the_power_mean():
    l = np.array([0.0, 0.5, 3.0])
    a, T = 3.0, 2.0  # p = 1/2, b = max(T - 2 l, 0) = (2, 1, 0)
    assert ref.implicit_lam(l, a, T) == pytest.approx(((np.sqrt(2) + 1 + 0) / 3) ** 2, rel=1e-14)
    assert ref.implicit_lam(l, 1.0, 0.25) == 0.25
    with pytest.raises(ValueError, match="undefined"):
        ref.implicit_lam(np.array([-10.0, 0.0]), 0.5, 1.0)


@requires_cvxpy
def test_reference_input_validation():
    l = np.array([0.1, 0.2])
    with pytest.raises(ValueError, match="exactly one"):
        ref.instance_weights(l, dw.KL(), lam=1.0, delta=0.1)
    with pytest.raises(ValueError, match="temperature"):
        ref.instance_weights(l, dw.TotalVariation(), temperature=1.0)
    with pytest.raises(ValueError, match="finite"):
        ref.instance_weights(np.array([0.1, np.inf]), dw.KL(), lam=1.0)
    with pytest.raises(ValueError, match="> 0"):
        ref.instance_weights(l, dw.KL(), lam=0.0)
    with pytest.raises(TypeError, match="instance"):
        ref.instance_weights(l, dw.KL, lam=1.0)
    with pytest.raises(ValueError, match="not available"):
        ref.class_weights(l[None], np.array([0]), dw.Alpha(0.5), gamma=0.1)
    with pytest.raises(ValueError, match="sum to 1"):
        ref.class_weights(l[None], np.array([[0.3, 0.3]]), dw.TotalVariation(), gamma=0.1)


def test_reference_without_cvxpy_explains_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "cvxpy", None)
    with pytest.raises(ImportError, match=r"divweights\[reference\]"):
        ref.instance_weights(np.array([0.1, 0.2]), dw.KL(), lam=1.0)


@requires_cvxpy
def test_reference_solver_failure_names_the_status(monkeypatch):
    monkeypatch.setattr(_solve, "_solve_with", lambda cp, problem, solver, options: "infeasible")
    with pytest.raises(ref.ReferenceSolverError, match="infeasible"):
        ref.instance_weights(np.array([0.1, 0.2, 0.5]), dw.KL(), delta=0.1)


# -- where the oracle lives ------------------------------------------------------------------------


def test_import_divweights_loads_no_framework_no_cvxpy_and_no_oracle():
    code = (
        "import sys, divweights\n"
        "heavy = {'torch', 'jax', 'cvxpy', 'divweights_train', 'divweights.testing', 'divweights.noise'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "[]"


def test_import_oracle_does_not_load_cvxpy_until_a_solve():
    code = "import sys, divweights.testing; print('cvxpy' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "False"


def test_old_reference_path_is_a_deprecated_alias(monkeypatch):
    monkeypatch.delitem(sys.modules, "divweights.reference", raising=False)
    monkeypatch.delattr(dw, "reference", raising=False)
    with pytest.warns(DeprecationWarning, match="divweights.testing") as record:
        exec(compile("import divweights.reference", __file__, "exec"), {})  # an import statement in this file
    assert record[0].filename == __file__
    old = sys.modules["divweights.reference"]
    assert old.__all__ == ref.__all__
    assert all(getattr(old, name) is getattr(ref, name) for name in ref.__all__)
