"""CIW-M's smoothing floor: the least share of each label that keeps a wrong prediction from sustaining itself
(``divweights.mixup.stable_label_share``; derivation in ``docs/derivations/mixup.rst``)."""

import numpy as np
import pytest

from divweights.mixup import smooth_targets, smoothing_factors, stable_label_share


@pytest.mark.parametrize(
    ("rate", "k", "expected"), [(0.0, 10, 0.5), (0.4, 2, 1 / 1.2), (0.6, 10, 0.75), (0.8, 10, 0.9)]
)
def test_stable_label_share_values(rate, k, expected):
    assert stable_label_share(rate, k) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("rate", "k"), [(0.5, 2), (0.9, 10), (1.0, 3)])
def test_uninformative_labels_keep_everything(rate, k):
    assert stable_label_share(rate, k) == 1.0


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5, 0.7])
@pytest.mark.parametrize("k", [2, 3, 10, 100])
def test_the_share_is_where_a_wrong_prediction_stops_feeding_itself(rate, k):
    """In a region of true class c predicted as j, moving 1 - kappa of every other label to j gives j
    pi/(K-1) + (1 - pi/(K-1)) (1 - kappa) and keeps (1 - pi) kappa on c: equal at kappa*, c wins above."""
    if rate >= (k - 1) / k:
        pytest.skip("uninformative labels")
    kappa = stable_label_share(rate, k)

    def margin(kap):  # mass on the true class minus mass on the wrong prediction
        return (1 - rate) * kap - (rate / (k - 1) + (1 - rate / (k - 1)) * (1 - kap))

    assert margin(kappa) == pytest.approx(0.0, abs=1e-12)
    assert margin(kappa + 1e-3) > 0 > margin(kappa - 1e-3)


@pytest.mark.parametrize(("rate", "k"), [(-0.1, 2), (1.5, 2), (0.2, 1), (0.2, 2.0), (True, 2)])
def test_stable_label_share_rejects_bad_arguments(rate, k):
    with pytest.raises(ValueError, match="rate must|num_classes must"):
        stable_label_share(rate, k)


def test_smoothing_factors_with_a_floor(rng):
    w = rng.dirichlet(np.ones(8))
    w[3] = 0.0
    np.testing.assert_allclose(smoothing_factors(w, floor=0.6), np.maximum(w / w.max(), 0.6), rtol=1e-15)
    np.testing.assert_array_equal(smoothing_factors(w, floor=0.0), smoothing_factors(w))


@pytest.mark.parametrize("floor", [-0.1, 1.5, float("nan")])
def test_smoothing_floor_must_lie_in_the_unit_interval(floor):
    with pytest.raises(ValueError, match="floor must be a number in"):
        smoothing_factors(np.ones(3), floor=floor)


def test_smooth_targets_with_a_floor_keeps_that_share_of_every_label(rng):
    y = np.eye(4)[rng.integers(0, 4, 6)]
    w = rng.dirichlet(np.ones(6))
    pred = rng.normal(size=(6, 4))
    s = np.maximum(w / w.max(), 0.75)
    want = s[:, None] * y + (1 - s[:, None]) * np.eye(4)[pred.argmax(-1)]
    got = smooth_targets(y, w, pred, floor=0.75)
    np.testing.assert_allclose(got, want, rtol=1e-15)
    assert np.all((got * y).sum(-1) >= 0.75 - 1e-15)


def test_torch_adapter_passes_the_floor(rng):
    torch = pytest.importorskip("torch")
    from divweights_torch import weighted_mixup

    w = torch.asarray(rng.dirichlet(np.ones(7)))
    _, _, info = weighted_mixup(
        torch.asarray(rng.normal(size=(7, 2))), torch.asarray(rng.integers(0, 3, 7)), w, mode="label_smoothing",
        num_classes=3, predictions=torch.asarray(rng.normal(size=(7, 3))), smoothing_floor=0.8,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    torch.testing.assert_close(info["smoothing"], torch.clamp(w / w.max(), min=0.8))


def test_jax_adapter_passes_the_floor(rng):
    jax = pytest.importorskip("jax")
    from divweights_jax import weighted_mixup

    w = jax.numpy.asarray(rng.dirichlet(np.ones(6)))
    _, _, info = weighted_mixup(
        jax.random.key(0), jax.numpy.asarray(rng.normal(size=(6, 2))), jax.numpy.asarray(rng.integers(0, 3, 6)), w,
        mode="label_smoothing", num_classes=3, predictions=jax.numpy.asarray(rng.normal(size=(6, 3))),
        smoothing_floor=0.8,
    )  # fmt: skip
    np.testing.assert_allclose(np.asarray(info["smoothing"]), np.maximum(np.asarray(w) / np.max(w), 0.8), rtol=1e-6)


def test_training_program_sets_the_floor_from_the_noise():
    pytest.importorskip("torch")
    from divweights_train.config import smoothing_floor

    assert smoothing_floor("symmetric:0.8", "fashion-mnist") == pytest.approx(0.9)
    assert smoothing_floor("pairflip:0.4", "digits") == pytest.approx(1 / 1.2)
    assert smoothing_floor("symmetric:0.4", "my-data", num_classes=2) == pytest.approx(1 / 1.2)
    assert smoothing_floor("symmetric:0.8", "fashion-mnist", "published") == 0.0
