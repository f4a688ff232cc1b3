"""The no-noise-rate radius: estimate, moving average, radius map."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import divweights as dw
from divweights.adaptive import DEFAULT_NOISE_SHARPNESS, noise_radius, noise_rate, track_noise_rate


def _probs(rng, n, k, sharpness=3.0):
    z = rng.normal(size=(n, k)) * sharpness
    p = np.exp(z - z.max(-1, keepdims=True))
    return p / p.sum(-1, keepdims=True)


def _expected_rate(p, y, sharpness=DEFAULT_NOISE_SHARPNESS):
    r = p / p.mean(0)  # prior-corrected by the batch's predicted class marginal
    return np.mean(1.0 - (r[np.arange(len(y)), y] / r.max(-1)) ** sharpness)


def test_noise_rate_is_mean_shortfall_of_the_label_against_the_favourite(backend, rng):
    p = _probs(rng, 64, 7)
    y = rng.integers(0, 7, 64)
    got = backend.call(noise_rate, backend.asarray(-np.log(p)), backend.asarray(y))
    assert backend.is_namespace_of(got)
    np.testing.assert_allclose(backend.to_numpy(got), _expected_rate(p, y), rtol=1e-12)


def test_noise_rate_with_probability_targets_uses_the_expected_label_loss(rng):
    p = _probs(rng, 16, 4)
    y = _probs(rng, 16, 4, sharpness=1.0)
    L = -np.log(p / p.mean(0))
    expected = np.mean(1.0 - np.exp(-DEFAULT_NOISE_SHARPNESS * ((y * L).sum(-1) - L.min(-1))))
    np.testing.assert_allclose(noise_rate(L, y), expected, rtol=1e-12)


@pytest.mark.parametrize("sharpness", [0.5, 2.0, 3.0])
def test_noise_rate_sharpness_is_the_exponent_of_the_ratio(sharpness, rng):
    p = _probs(rng, 32, 5, sharpness=1.0)
    y = rng.integers(0, 5, 32)
    got = noise_rate(-np.log(p), y, sharpness=sharpness)
    np.testing.assert_allclose(got, _expected_rate(p, y, sharpness), rtol=1e-12)


def test_noise_rate_sharpness_counts_a_hesitating_wrong_label_more(rng):
    """The flattening of symmetric noise: at 80% over ten classes a wrong label keeps
    0.8 / (9 * 0.2) = 0.44 of its favourite's probability; a = 2 counts it as 0.80, not 0.56."""
    r = 0.8 / (9 * 0.2)
    p = np.full((2, 10), 0.8 / 9)
    p[0, 0] = p[1, 1] = 0.2  # balanced predictions; row 0 labelled 1 (wrong), row 1 labelled 1 (right)
    L, y = -np.log(p), np.array([1, 1])
    np.testing.assert_allclose(noise_rate(L, y, sharpness=1.0), (1 - r) / 2, rtol=1e-12)
    np.testing.assert_allclose(noise_rate(L, y, sharpness=2.0), (1 - r**2) / 2, rtol=1e-12)


@pytest.mark.parametrize("sharpness", [0.0, -1.0, float("inf"), float("nan"), True, "2"])
def test_noise_rate_rejects_bad_sharpness(sharpness):
    with pytest.raises((TypeError, ValueError), match="sharpness must be"):
        noise_rate(np.zeros((2, 2)), np.zeros(2, int), sharpness=sharpness)


def test_noise_rate_one_hot_probabilities_equal_integer_labels(rng):
    p = _probs(rng, 16, 5)
    y = rng.integers(0, 5, 16)
    L = -np.log(p)
    np.testing.assert_allclose(noise_rate(L, np.eye(5)[y]), noise_rate(L, y), rtol=1e-12)


def test_noise_rate_zero_when_every_label_is_the_favourite(rng):
    p = _probs(rng, 32, 6)
    assert float(noise_rate(-np.log(p), (p / p.mean(0)).argmax(-1))) == 0.0


def test_noise_rate_reads_a_constant_prediction_as_clean():
    """A model predicting one class everywhere leaves half the labels of a balanced
    binary batch far below its favourite; the prior correction reads it as clean, so the
    radius cannot lock the weights onto the labels it happens to agree with."""
    p = np.tile([0.999, 0.001], (10, 1))
    y = np.arange(10) % 2
    assert float(noise_rate(-np.log(p), y)) == pytest.approx(0.0, abs=1e-12)


def test_noise_rate_near_one_when_confidently_contradicted():
    L = np.array([[0.0, 60.0], [60.0, 0.0]])
    np.testing.assert_allclose(noise_rate(L, np.array([1, 0])), 1.0, rtol=1e-12)


def test_noise_rate_counts_the_flipped_share_of_a_confident_model():
    L = np.where(np.eye(4, dtype=bool)[np.arange(40) % 4], 0.0, 30.0)  # confident, balanced predictions
    y = np.arange(40) % 4
    y[:10] = (y[:10] + 1) % 4  # a quarter flipped
    np.testing.assert_allclose(noise_rate(L, y), 0.25, rtol=1e-9)


def test_noise_rate_ignores_invalid_rows(rng):
    p = _probs(rng, 10, 4)
    y = rng.integers(0, 4, 10)
    valid = np.arange(10) % 3 != 0
    got = noise_rate(-np.log(p), y, valid=valid)
    np.testing.assert_allclose(got, _expected_rate(p[valid], y[valid]), rtol=1e-12)


def test_noise_rate_of_a_batch_without_valid_rows_is_zero(rng):
    p = _probs(rng, 5, 3)
    assert float(noise_rate(-np.log(p), np.zeros(5, int), valid=np.zeros(5, bool))) == 0.0


def test_noise_rate_is_never_negative(backend):
    """Rounding (uniform soft targets), targets that do not sum to one and out-of-range labels cannot make
    the rate negative (-2e-16, -0.24 and -1.2 without the clip)."""
    cases = [
        (np.full((3, 3), np.log(3.0)), np.full((3, 3), 1.0 / 3.0)),
        (-np.log(np.array([[0.7, 0.3], [0.4, 0.6]])), np.array([[0.5, 0.0], [0.0, 0.5]])),
        (-np.log(np.array([[0.7, 0.3], [0.4, 0.6], [0.1, 0.9]])), np.array([5, 5, 5])),
    ]
    for L, y in cases:
        got = float(backend.to_numpy(backend.call(noise_rate, backend.asarray(L), backend.asarray(y))))
        assert 0.0 <= got <= 1.0 and str(got) != "-0.0"


def test_noise_rate_ignores_a_class_every_row_rules_out(backend, rng):
    """A class of infinite loss in every row (logits masked with -inf) has no finite column sum: it
    changes nothing, and no NaN (-inf - -inf) reaches the rate."""
    p = _probs(rng, 12, 4)
    y = rng.integers(0, 4, 12)
    L = np.concatenate([-np.log(p), np.full((12, 1), np.inf)], axis=1)
    got = backend.call(noise_rate, backend.asarray(L), backend.asarray(y))
    np.testing.assert_allclose(backend.to_numpy(got), _expected_rate(p, y), rtol=1e-12)


def test_noise_rate_batched_over_leading_axes(rng):
    p = _probs(rng, 24, 5)
    y = rng.integers(0, 5, 24)
    got = noise_rate(-np.log(p).reshape(2, 3, 4, 5), y.reshape(2, 3, 4))
    assert got.shape == (2, 3)
    expected = [_expected_rate(pb, yb) for pb, yb in zip(p.reshape(6, 4, 5), y.reshape(6, 4))]
    np.testing.assert_allclose(got, np.reshape(expected, (2, 3)), rtol=1e-12)


def test_noise_rate_checks_shapes(rng):
    L = -np.log(_probs(rng, 4, 3))
    with pytest.raises(ValueError, match="valid must have shape"):
        noise_rate(L, np.zeros(4, int), valid=np.ones(3, bool))
    with pytest.raises(ValueError, match="integer targets must have shape"):
        noise_rate(L, np.zeros(3, int))
    with pytest.raises(ValueError, match="probability targets must have the shape"):
        noise_rate(L, np.ones((4, 2)) / 2)
    with pytest.raises(TypeError, match="not bool"):
        noise_rate(L, np.zeros(4, bool))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_noise_rate_keeps_dtype_and_is_finite_at_extreme_losses(backend, dtype):
    if (dtype == "bfloat16" and backend.value in ("numpy", "array_api_strict")) or (
        dtype == "float16" and backend.value == "array_api_strict"
    ):
        pytest.skip(f"no {dtype} in this namespace")
    L = np.array([[0.0, 1e4, 3e4], [30.0, 40.0, 1e4], [1e-30, 1e-30, 1e-30], [6e4, 6e4, 6e4], [0.0, 6e4, 6e4]])
    y = np.array([1, 1, 2, 1, 2])
    got = backend.call(noise_rate, backend.asarray(L, dtype), backend.asarray(y))
    assert got.dtype == backend.dtype(dtype)
    value = float(backend.to_numpy(got))
    assert 0.0 <= value <= 1.0


@settings(max_examples=50, deadline=None)
@given(
    hnp.arrays(
        np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=9), elements=st.floats(-30, 30)
    ),
    st.integers(0, 2**32 - 1),
)
def test_noise_rate_lies_in_unit_interval(z, seed):
    L = np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)) + z.max(-1, keepdims=True) - z
    y = np.random.default_rng(seed).integers(0, z.shape[-1], z.shape[0])
    rate = float(noise_rate(L, y))
    assert 0.0 <= rate <= 1.0


def test_track_noise_rate_is_an_ema_started_at_zero(backend, rng):
    p = _probs(rng, 32, 4)
    y = rng.integers(0, 4, 32)
    L, Y = backend.asarray(-np.log(p)), backend.asarray(y)
    state = 0.0
    for _ in range(4):
        state = backend.call(lambda L, Y: track_noise_rate(state, L, Y, momentum=0.75), L, Y)
    np.testing.assert_allclose(backend.to_numpy(state), _expected_rate(p, y) * (1 - 0.75**4), rtol=1e-12)


def test_track_noise_rate_keeps_the_average_for_a_batch_that_tells_nothing(backend, rng):
    """A NaN loss (the step is NaN anyway) or no valid row leaves the average where it was; an informative
    batch still moves it."""
    p = _probs(rng, 10, 3)
    y = rng.integers(0, 3, 10)
    L = -np.log(p)
    broken = L.copy()
    broken[4, 1] = np.nan
    previous = backend.asarray(np.asarray(0.25))
    step = lambda L, valid=None: backend.call(
        lambda L, Y, prev: track_noise_rate(prev, L, Y, momentum=0.5, valid=valid),
        backend.asarray(L),
        backend.asarray(y),
        previous,
    )
    np.testing.assert_allclose(backend.to_numpy(step(broken)), 0.25, rtol=0)
    none_valid = backend.asarray(np.zeros(10, bool))
    np.testing.assert_allclose(backend.to_numpy(step(L, none_valid)), 0.25, rtol=0)
    np.testing.assert_allclose(backend.to_numpy(step(L)), 0.125 + 0.5 * _expected_rate(p, y), rtol=1e-12)


@pytest.mark.parametrize("momentum", [-0.1, 1.0, 2.0, float("nan")])
def test_track_noise_rate_rejects_bad_momentum(momentum):
    with pytest.raises(ValueError, match="momentum must lie in"):
        track_noise_rate(0.0, np.zeros((2, 2)), np.zeros(2, int), momentum=momentum)


@pytest.mark.parametrize(
    "divergence",
    [dw.KL(), dw.Alpha(0.5), dw.Alpha(2.0), dw.Alpha(-1.0), dw.ChiSquared(), dw.TotalVariation(), dw.SquaredL2()],
    ids=repr,
)
@pytest.mark.parametrize("dropped", [0, 1, 4, 9])
def test_instance_radius_is_the_divergence_of_uniform_on_the_kept_part(divergence, dropped):
    n = 10
    kept = np.r_[np.ones(n - dropped), np.zeros(dropped)] / (n - dropped)
    expected = float(divergence(kept, np.full(n, 1.0 / n)))
    if isinstance(divergence, dw.SquaredL2):
        pytest.skip("squared L2 is not an f-divergence: the two-bin reduction does not hold")
    assert noise_radius(divergence, dropped / n) == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("divergence", [dw.TotalVariation(), dw.ReverseKL()], ids=repr)
def test_class_radius_keeps_one_minus_rate_on_the_label(divergence):
    v = np.array([0.7, 0.3, 0.0])
    expected = float(divergence(v, np.array([1.0, 0.0, 0.0])))
    assert noise_radius(divergence, 0.3, problem="class") == pytest.approx(expected, rel=1e-12)


def test_kl_radius_closed_form():
    assert noise_radius(dw.KL(), 0.6) == pytest.approx(-math.log(0.4), rel=1e-14)
    assert noise_radius(dw.KL(), 0.0) == 0.0


def test_reverse_kl_instance_radius_is_infinite():
    assert noise_radius(dw.ReverseKL(), 0.2) == math.inf


@pytest.mark.parametrize("rate", [-0.1, 1.0, float("nan")])
def test_noise_radius_rejects_rates_outside_unit_interval(rate):
    with pytest.raises(ValueError, match="rate must lie in"):
        noise_radius(dw.KL(), rate)


def test_noise_radius_rejects_unknown_problem():
    with pytest.raises(ValueError, match="problem must be one of"):
        noise_radius(dw.KL(), 0.1, problem="batch")


def test_noise_radius_traced_rate_under_jit():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    got = jax.jit(lambda r: noise_radius(dw.KL(), r))(jnp.asarray(0.6))
    np.testing.assert_allclose(np.asarray(got), -math.log(0.4), rtol=1e-12)


@pytest.mark.parametrize("divergence", [dw.KL(), dw.ChiSquared(), dw.TotalVariation()], ids=repr)
def test_radius_from_the_rate_drops_a_separated_noisy_part(divergence, rng):
    """With the noisy losses far above the clean ones, the constrained weights at
    ``noise_radius(D, rate)`` set the noisy part aside (and, for the smooth
    divergences, spread the mass over the clean part; TV moves it to the best)."""
    n, noisy = 200, 60
    losses = np.r_[rng.uniform(0.0, 0.05, n - noisy), rng.uniform(50.0, 60.0, noisy)]
    w = dw.instance_weights(losses, divergence, delta=noise_radius(divergence, noisy / n))
    assert w[n - noisy :].sum() < 1e-3
    if not isinstance(divergence, dw.TotalVariation):
        np.testing.assert_allclose(w[: n - noisy], 1.0 / (n - noisy), rtol=0.2)
