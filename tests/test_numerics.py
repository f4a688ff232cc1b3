"""No NaN or Inf from finite inputs at any scale; documented special values."""

import numpy as np
import pytest

import divweights as dw

from helpers import CLASS_DIVERGENCES, INSTANCE_CASES, case_id

SCALES = [1e-30, 1e-5, 1.0, 1e5, 1e30]


@pytest.mark.parametrize("case", INSTANCE_CASES, ids=case_id)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_finite_weights_at_extreme_scales(case, dtype, rng):
    d, form = case
    base = rng.exponential(size=(2, 9))
    for scale in SCALES:
        for strength in SCALES:
            if form == "delta":
                strength = min(strength, 30.0)
            w = dw.instance_weights((base * scale).astype(dtype), d, **{form: strength})
            assert w.dtype == dtype
            assert np.all(np.isfinite(w)), (scale, strength)
            np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("divergence", CLASS_DIVERGENCES + [dw.KL()], ids=repr)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_finite_class_weights_at_extreme_scales(divergence, dtype, rng):
    y = rng.dirichlet(np.ones(4), size=3).astype(dtype)
    base = rng.exponential(size=(3, 4))
    for scale in SCALES:
        for gamma in [1e-30, 1e-5, 0.1, 1.0, 1e5]:
            v = dw.class_weights((base * scale).astype(dtype), y, divergence, gamma=gamma)
            assert np.all(np.isfinite(v)), (scale, gamma)
            np.testing.assert_allclose(v.sum(-1), 1.0, atol=1e-5)


def _tends_to_argmin(case):
    """Vanishing strength gives the argmin, except for the published temperature
    form with alpha < 1, whose T -> 0 limit is the power law l ** (1 / (a - 1))."""
    d, form = case
    if form == "delta":
        return False
    return form == "lam" or isinstance(d, dw.KL) or getattr(d, "alpha", 2.0) > 1


@pytest.mark.parametrize("case", [c for c in INSTANCE_CASES if _tends_to_argmin(c)], ids=case_id)
def test_vanishing_strength_returns_the_limit_never_zero_over_zero(case):
    d, form = case
    l = np.array([5.0, 3.0, 3.0, 9.0])
    w = dw.instance_weights(l, d, **{form: 1e-30})
    np.testing.assert_allclose(w, [0.0, 0.5, 0.5, 0.0], atol=1e-12)


def test_published_temperature_limit_for_alpha_below_one_is_a_power_law():
    l = np.array([5.0, 3.0, 3.0, 9.0])
    w = dw.instance_weights(l, dw.Alpha(0.5), temperature=1e-30)
    expected = l ** -2.0
    np.testing.assert_allclose(w, expected / expected.sum(), rtol=1e-12)


@pytest.mark.parametrize("case", INSTANCE_CASES, ids=case_id)
def test_infinite_loss_is_the_same_as_removing_the_example(case):
    d, form = case
    l = np.array([0.5, np.inf, 1.0, 2.0])
    w = dw.instance_weights(l, d, **{form: 0.5})
    assert w[1] == 0.0
    np.testing.assert_allclose(w[[0, 2, 3]], dw.instance_weights(l[[0, 2, 3]], d, **{form: 0.5}), atol=1e-12)


@pytest.mark.parametrize("case", INSTANCE_CASES, ids=case_id)
def test_infinite_strength_with_infinite_losses_gives_uniform_over_the_rest_in_float32_jit(case):
    jax = pytest.importorskip("jax")
    d, form = case
    if form == "delta":
        return
    l = jax.numpy.asarray([0.2, np.inf, 1.0], dtype=jax.numpy.float32)
    w = np.asarray(jax.jit(lambda x: dw.instance_weights(x, d, **{form: np.inf}))(l))
    np.testing.assert_allclose(w, [0.5, 0.0, 0.5], atol=1e-6)


@pytest.mark.parametrize("case", INSTANCE_CASES, ids=case_id)
def test_all_infinite_losses_give_uniform_weights(case):
    d, form = case
    w = dw.instance_weights(np.full(5, np.inf), d, **{form: 0.5})
    np.testing.assert_allclose(w, np.full(5, 0.2))


@pytest.mark.parametrize("case", INSTANCE_CASES, ids=case_id)
def test_nan_loss_makes_its_row_nan_and_leaves_other_rows(case):
    d, form = case
    l = np.array([[0.1, np.nan, 0.3], [0.1, 0.2, 0.3]])
    w = dw.instance_weights(l, d, **{form: 0.5})
    assert np.all(np.isnan(w[0]))
    np.testing.assert_allclose(w[1], dw.instance_weights(l[1], d, **{form: 0.5}))


@pytest.mark.parametrize("case", INSTANCE_CASES, ids=case_id)
def test_batch_of_one_gets_weight_one(case):
    d, form = case
    np.testing.assert_array_equal(dw.instance_weights(np.array([3.7]), d, **{form: 0.3}), [1.0])


def test_leading_axes_are_independent_problems(rng):
    l = rng.exponential(size=(2, 3, 8))
    w = dw.instance_weights(l, dw.Alpha(0.5), delta=0.2)
    for i in range(2):
        for j in range(3):
            np.testing.assert_allclose(w[i, j], dw.instance_weights(l[i, j], dw.Alpha(0.5), delta=0.2), rtol=1e-12)


def test_exact_kl_radius_on_a_million_examples(rng):
    l = rng.exponential(size=1_000_000)
    w = dw.instance_weights(l, dw.KL(), delta=0.3)
    assert float(dw.KL()(w, np.full(l.size, 1e-6))) == pytest.approx(0.3, rel=1e-9)


def test_infinite_class_loss_gets_zero_weight_and_finite_reweighted_loss():
    L = np.array([[0.2, np.inf, 1.0]])
    for d in CLASS_DIVERGENCES:
        v = dw.class_weights(L, np.array([0]), d, gamma=0.3)
        assert v[0, 1] == 0.0
        assert np.isfinite(dw.reweighted_class_losses(L, np.array([0]), d, gamma=0.3)).all()
