"""No NaN or Inf from finite inputs at any scale; documented special values."""

import numpy as np
import pytest
from helpers import CLASS_DIVERGENCES, INSTANCE_CASES, case_id

import divweights as dw

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
    expected = l**-2.0
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


# ---- tiny strengths and low-precision class weights (issue #14, items 10 and 11) --------------


@pytest.mark.parametrize(
    ("dtype", "kw"),
    [
        (np.float32, {"lam": 1e-300}),  # underflows to 0 in float32
        (np.float32, {"temperature": 1e-46}),
        (np.float16, {"temperature": 1e-46}),
        (np.float16, {"lam": 1e-30}),
    ],
)
@pytest.mark.parametrize("divergence", [dw.KL(), dw.ReverseKL(), dw.Alpha(0.5), dw.ChiSquared()], ids=repr)
def test_strength_below_the_dtype_gives_the_limit_not_nan(divergence, dtype, kw):
    if "temperature" in kw and not isinstance(divergence, dw.KL):
        pytest.skip("the published temperature of alpha < 1 tends to a power law, not to the argmin")
    l = np.array([0.3, 0.1, 2.0, 0.1], dtype=dtype)
    w = dw.instance_weights(l, divergence, **kw)
    np.testing.assert_allclose(w.astype(np.float64), [0.0, 0.5, 0.0, 0.5], atol=1e-3)


@pytest.mark.parametrize("divergence", [dw.KL(), dw.Alpha(0.5), dw.ChiSquared()], ids=repr)
def test_traced_zero_strength_under_jit_gives_the_limit(divergence):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    l = jnp.asarray([0.3, 0.1, 2.0, 0.1], dtype=jnp.float32)
    w = jax.jit(lambda x, lam: dw.instance_weights(x, divergence, lam=lam))(l, jnp.asarray(0.0, dtype=jnp.float32))
    np.testing.assert_allclose(np.asarray(w), [0.0, 0.5, 0.0, 0.5], atol=1e-6)


def test_bfloat16_tiny_temperature_gives_the_limit():
    torch = pytest.importorskip("torch")
    l = torch.tensor([0.3, 0.1, 2.0, 0.1], dtype=torch.bfloat16)
    w = dw.instance_weights(l, dw.KL(), temperature=1e-46)
    assert w.dtype == torch.bfloat16
    np.testing.assert_allclose(w.float().numpy(), [0.0, 0.5, 0.0, 0.5])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_reverse_kl_soft_targets_keep_every_target_class_positive(dtype, rng):
    # k = 2, label smoothing 0.01: a label that is already the best class leaves its 0.005 partner
    # with exp(-200) of the mass, below float32 (and float16) range
    n, k, gamma = 4096, 2, 1.0
    logits = rng.normal(size=(n, k)) * 3
    L = -(logits - np.log(np.exp(logits).sum(-1, keepdims=True)))
    y = 0.99 * np.eye(k)[rng.integers(0, k, size=n)] + 0.01 / k
    v = dw.class_weights(L.astype(dtype), y.astype(dtype), dw.ReverseKL(), gamma=gamma)
    assert v.dtype == dtype
    assert np.all(v > 0)
    # raising a weight to the dtype's floor only lowers KL(y || v): still feasible, and finite
    assert np.all(dw.KL()(y, v.astype(np.float64)) <= gamma * (1 + 1e-3))


@pytest.mark.parametrize(
    ("dtype", "scales"),
    [("float16", [1e-4, 1e-2, 1.0, 1e2, 1e4]), ("bfloat16", SCALES)],  # float16 ends at 65504
)
def test_half_precision_weights_are_finite_at_every_scale(dtype, scales, rng):
    torch = pytest.importorskip("torch")
    dt = getattr(torch, dtype)
    base = rng.exponential(size=(2, 9))
    y = rng.dirichlet(np.ones(4), size=3)
    for scale in scales:
        for d, form in INSTANCE_CASES:
            for strength in SCALES:
                strength = min(strength, 30.0) if form == "delta" else strength
                w = dw.instance_weights(torch.tensor(base * scale, dtype=dt), d, **{form: strength})
                assert w.dtype == dt
                w = w.float().numpy()
                assert np.all(np.isfinite(w)), (d, form, scale, strength)
                np.testing.assert_allclose(w.sum(-1), 1.0, atol=3e-2)
        for d in CLASS_DIVERGENCES + [dw.KL()]:
            L = torch.tensor(rng.exponential(size=(3, 4)) * scale, dtype=dt)
            for gamma in [1e-30, 1e-5, 0.1, 1.0, 1e5]:
                v = dw.class_weights(L, torch.tensor(y, dtype=dt), d, gamma=gamma).float().numpy()
                assert np.all(np.isfinite(v)), (d, scale, gamma)
                np.testing.assert_allclose(v.sum(-1), 1.0, atol=3e-2)


def test_exact_kl_with_two_distinct_near_zero_losses_is_finite_in_float32():
    """Regression (found by the demo's CICW-M run): two losses of 4e-37 and 7e-37 among losses of order
    one made the exact-radius bracket's upper end overflow in float32 and every weight NaN."""
    torch = pytest.importorskip("torch")
    losses = torch.tensor([3.9524e-37, 6.6578e-37] + [4.7684e-07] * 5 + [2.0] * 20 + [7.7])
    for delta in (0.1, 0.5, 1.0):
        w = dw.instance_weights(losses, dw.KL(), delta=delta)
        assert bool(torch.isfinite(w).all())
        assert float(w.sum()) == pytest.approx(1.0, rel=1e-5)
        kl = float(dw.KL()(w.double(), torch.full((28,), 1 / 28, dtype=torch.float64)))
        assert kl == pytest.approx(delta, rel=1e-3)
