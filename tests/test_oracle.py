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

import numpy as np
import pytest
from _oracle import (
    ALL_FORM_CASES,
    CASE_IDS,
    DIVERGENCES,
    FORMS,
    HAVE_CVXPY,
    alpha_of,
    check_instance,
    div_id,
    div_value,
    draw_strength,
    max_divergence,
    published_weights,
    requires_cvxpy,
    supported,
    uniform_on_argmin,
)

import divweights as dw
from divweights import testing as ref

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
