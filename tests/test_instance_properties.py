"""Hypothesis invariants of instance weights."""

import numpy as np
import pytest
from helpers import INSTANCE_CASES, case_id
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import divweights as dw

losses_st = arrays(
    np.float64,
    st.integers(1, 24),
    # multiples of 1/1024 so that shifted copies stay exactly representable
    elements=st.integers(0, 50 * 1024).map(lambda k: k / 1024.0),
)
strength_st = st.floats(1e-3, 1e3)
SETTINGS = settings(max_examples=40, deadline=None)
SHIFT_INVARIANT = [c for c in INSTANCE_CASES if c[1] != "temperature" or isinstance(c[0], dw.KL)]


def _w(l, case, s):
    d, form = case
    if form == "delta":
        s = min(s, 5.0)
    return dw.instance_weights(l, d, **{form: s})


@pytest.mark.parametrize("case", INSTANCE_CASES, ids=case_id)
@SETTINGS
@given(l=losses_st, s=strength_st)
def test_weights_lie_on_the_simplex(case, l, s):
    w = _w(l, case, s)
    assert np.all(w >= 0)
    np.testing.assert_allclose(w.sum(), 1.0, atol=1e-9)


@pytest.mark.parametrize("case", INSTANCE_CASES, ids=case_id)
@SETTINGS
@given(l=losses_st, s=strength_st)
def test_higher_loss_never_gets_more_weight(case, l, s):
    w = _w(l, case, s)
    order = np.argsort(l, kind="stable")
    ws, ls = w[order], l[order]
    strictly_higher = ls[1:] > ls[:-1]
    assert np.all(ws[1:][strictly_higher] <= ws[:-1][strictly_higher] + 1e-12)


@pytest.mark.parametrize("case", INSTANCE_CASES, ids=case_id)
@SETTINGS
@given(l=losses_st, s=strength_st, seed=st.integers(0, 2**31))
def test_permutation_equivariance(case, l, s, seed):
    perm = np.random.default_rng(seed).permutation(l.size)
    np.testing.assert_allclose(_w(l[perm], case, s), _w(l, case, s)[perm], atol=1e-9)


@pytest.mark.parametrize("case", SHIFT_INVARIANT, ids=case_id)
@SETTINGS
@given(l=losses_st, s=strength_st, c=st.integers(-20 * 64, 20 * 64).map(lambda k: k / 64.0))
def test_adding_a_constant_to_all_losses_changes_nothing(case, l, s, c):
    np.testing.assert_allclose(_w(l + c, case, s), _w(l, case, s), atol=1e-7)


@pytest.mark.parametrize("case", [c for c in INSTANCE_CASES if c[1] == "delta"], ids=case_id)
@SETTINGS
@given(l=losses_st, delta=st.floats(1e-4, 3.0))
def test_constraint_is_active_when_it_binds_and_never_violated(case, l, delta):
    d, _ = case
    n = l.size
    u = np.full(n, 1.0 / n)
    w = dw.instance_weights(l, d, delta=delta)
    value = float(d(w, u))
    assert value <= delta + 1e-7 * max(1.0, delta)
    limit = (l == l.min()).astype(float)
    limit /= limit.sum()
    binds = float(d(limit, u)) > delta * (1 + 1e-6) + 1e-9 and np.ptp(l) > 0
    if binds and not isinstance(d, dw.TotalVariation):
        assert value == pytest.approx(delta, rel=1e-6, abs=1e-9)
    if binds and isinstance(d, dw.TotalVariation):
        assert value == pytest.approx(delta, abs=1e-9)
    if not binds:  # the minimiser closest to uniform
        np.testing.assert_allclose(w, limit, atol=1e-9)


@pytest.mark.parametrize("case", [c for c in INSTANCE_CASES if c[1] != "delta"], ids=case_id)
@SETTINGS
@given(l=losses_st)
def test_infinite_strength_gives_uniform_weights(case, l):
    d, form = case
    w = dw.instance_weights(l, d, **{form: 1e12 * (1 + l.max())})
    np.testing.assert_allclose(w, np.full(l.size, 1.0 / l.size), atol=1e-6)


@pytest.mark.parametrize("case", [c for c in INSTANCE_CASES if c[1] == "lam"], ids=case_id)
@SETTINGS
@given(l=losses_st)
def test_vanishing_strength_gives_the_argmin(case, l):
    assume(np.ptp(l) > 1e-3)
    d, _ = case
    w = dw.instance_weights(l, d, lam=1e-9)
    limit = (l == l.min()).astype(float)
    np.testing.assert_allclose(w, limit / limit.sum(), atol=1e-4)


@pytest.mark.parametrize("case", [c for c in INSTANCE_CASES if c[1] == "lam"], ids=case_id)
@SETTINGS
@given(l=losses_st, s=strength_st, c=st.floats(1e-3, 1e3))
def test_penalty_form_is_scale_equivariant(case, l, s, c):
    d, _ = case
    np.testing.assert_allclose(dw.instance_weights(l * c, d, lam=s * c), dw.instance_weights(l, d, lam=s), atol=1e-7)


@pytest.mark.parametrize("case", [c for c in INSTANCE_CASES if c[1] == "lam"], ids=case_id)
@SETTINGS
@given(l=losses_st, s=strength_st)
def test_penalty_solution_beats_nearby_points(case, l, s):
    """First-order optimality: no feasible perturbation lowers the penalised objective."""
    d, _ = case
    n = l.size
    assume(n > 1)
    u = np.full(n, 1.0 / n)
    w = dw.instance_weights(l, d, lam=s)
    obj = lambda v: float(v @ l + s * d(v, u))
    rng = np.random.default_rng(0)
    best = obj(w)
    for _ in range(5):
        v = 0.99 * w + 0.01 * rng.dirichlet(np.ones(n))
        assert obj(v) >= best - 1e-9 * max(1.0, abs(best))
