"""The adaptive radii of the PyTorch adapter: ``delta="auto"`` (the default) and ``gamma="auto"``.

The tracked noise rate (a buffer), its fused per-batch estimate against :func:`divweights.noise_rate`,
the radius it sets, and what ``"auto"`` refuses.
"""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from divweights_torch import ReweightedLoss
from torch_helpers import make_batch

import divweights as dw
from divweights import KL


@pytest.fixture
def batch():
    return make_batch()


def test_default_is_exact_kl_at_the_radius_of_the_tracked_noise_rate(batch):
    logits, labels = batch
    loss_fn = ReweightedLoss()
    assert loss_fn.instance == KL() and loss_fn.adaptive
    L = -torch.log_softmax(logits.detach().double(), dim=1)
    state = 0.0
    for _ in range(3):
        loss_fn(logits, labels)
        state = dw.track_noise_rate(state, L, labels, momentum=loss_fn.noise_momentum)
    torch.testing.assert_close(loss_fn.noise_rate.double(), state, rtol=1e-6, atol=0)
    w = loss_fn.last_weights
    kl = float(KL()(w.double(), torch.full_like(w, 1 / w.numel()).double()))
    assert kl == pytest.approx(-math.log1p(-float(state)), rel=1e-5)


def test_auto_radius_is_zero_before_the_first_step_and_frozen_in_eval(batch):
    logits, labels = batch
    loss_fn = ReweightedLoss().eval()
    loss_fn(logits, labels)
    assert float(loss_fn.noise_rate) == 0.0
    torch.testing.assert_close(loss_fn.last_weights, torch.full_like(loss_fn.last_weights, 1 / 16))


def test_auto_noise_rate_survives_state_dict(batch):
    logits, labels = batch
    a = ReweightedLoss()
    a(logits, labels)
    b = ReweightedLoss()
    b.load_state_dict(a.state_dict())
    assert float(b.noise_rate) == float(a.noise_rate) > 0


def test_batch_noise_rate_equals_the_core(rng):
    from divweights_torch.loss import _batch_noise_rate

    logp = torch.log_softmax(torch.as_tensor(rng.normal(size=(64, 7)) * 3), dim=1)
    y = torch.as_tensor(rng.integers(0, 7, 64))
    invalid = torch.arange(64) % 5 == 0
    got = _batch_noise_rate(logp, y.masked_fill(invalid, -100), invalid, True)
    want = dw.noise_rate(-logp, y, valid=~invalid)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
    soft = torch.softmax(torch.as_tensor(rng.normal(size=(64, 7))), dim=1)
    torch.testing.assert_close(_batch_noise_rate(logp, soft, None, False), dw.noise_rate(-logp, soft))


def test_batch_noise_rate_of_an_all_ignored_batch_is_nan_and_keeps_the_tracked_rate(batch):
    """No valid row: the fused estimate is NaN (no information; the core's noise_rate says 0) and the
    tracked rate stays where it was (it used to be pulled toward 0)."""
    from divweights_torch.loss import _batch_noise_rate

    logp = torch.log_softmax(torch.randn(8, 3, dtype=torch.float64), dim=1)
    y = torch.full((8,), -100)
    assert torch.isnan(_batch_noise_rate(logp, y, y == -100, True))
    assert float(dw.noise_rate(-logp, y.clamp_min(0), valid=y != -100)) == 0.0
    logits, labels = batch
    loss_fn = ReweightedLoss()
    loss_fn(logits, labels)
    before = loss_fn.noise_rate.clone()
    assert before > 0
    assert float(loss_fn(logits, torch.full_like(labels, -100))) == 0.0
    torch.testing.assert_close(loss_fn.noise_rate, before, rtol=0, atol=0)


@pytest.mark.parametrize("soft", [False, True], ids=["labels", "probabilities"])
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_batch_does_not_poison_the_tracked_rate(batch, soft, bad):
    """One batch with a NaN or infinite logit: its loss is NaN, the tracked rate keeps its value, and the
    steps after it equal those of a run that skipped it (AMP's gradient scaler skips such steps)."""
    logits, labels = batch
    targets = torch.softmax(torch.randn_like(logits), dim=1) if soft else labels
    broken = logits.clone()
    broken[3, 1] = bad
    skipped, hit = ReweightedLoss(), ReweightedLoss()
    for loss_fn in (skipped, hit):
        loss_fn(logits, targets)
    before = hit.noise_rate.clone()
    assert torch.isnan(hit(broken, targets))
    torch.testing.assert_close(hit.noise_rate, before, rtol=0, atol=0)
    torch.testing.assert_close(hit(logits, targets), skipped(logits, targets))
    torch.testing.assert_close(hit.noise_rate, skipped.noise_rate)


def test_batch_noise_rate_ignores_a_class_every_row_rules_out(rng):
    """Logits of -inf for one class in every row: the fused estimate stays finite and equals the
    estimate without that class (with ignored rows too)."""
    from divweights_torch.loss import _batch_noise_rate

    z = torch.as_tensor(rng.normal(size=(40, 5)) * 2)
    y = torch.as_tensor(rng.integers(0, 5, 40))
    invalid = torch.arange(40) % 7 == 0
    masked = torch.cat([z, torch.full((40, 1), -math.inf, dtype=z.dtype)], dim=1)
    targets = y.masked_fill(invalid, -100)
    got = _batch_noise_rate(torch.log_softmax(masked, dim=1), targets, invalid, True)
    want = _batch_noise_rate(torch.log_softmax(z, dim=1), targets, invalid, True)
    assert torch.isfinite(got)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)


def test_probability_targets_with_a_class_masked_with_minus_inf_track_the_rate(batch):
    """Probability targets and a class of -inf logits: the tracked rate, the loss and the weights equal
    those without that class (the fused estimate was NaN there, and the rate stopped moving)."""
    logits, labels = batch
    targets = torch.softmax(torch.randn_like(logits), dim=1)
    pad = torch.full((logits.shape[0], 1), -math.inf, dtype=logits.dtype)
    plain, masked = ReweightedLoss(), ReweightedLoss()
    for _ in range(3):
        want = plain(logits, targets)
        got = masked(torch.cat([logits, pad], dim=1), torch.cat([targets, torch.zeros_like(pad)], dim=1))
    assert plain.noise_rate > 0
    torch.testing.assert_close(masked.noise_rate, plain.noise_rate)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(masked.last_weights, plain.last_weights)


def test_tracked_rate_of_float64_logits_keeps_the_float32_buffer(batch):
    """The moving average is updated in place when the dtypes agree; float64 logits take the
    out-of-place branch, and both give track_noise_rate's value."""
    logits, labels = batch
    for dtype in (torch.float32, torch.float64):
        loss_fn = ReweightedLoss(noise_momentum=0.5)
        buffer = loss_fn.noise_rate
        for _ in range(2):
            loss_fn(logits.to(dtype), labels)
        assert loss_fn.noise_rate is buffer and buffer.dtype == torch.float32
        L = -torch.log_softmax(logits.detach().double(), dim=1)
        want = dw.noise_rate(L, labels) * (1 - 0.5**2)
        torch.testing.assert_close(buffer.double(), want, rtol=1e-6, atol=0)


@pytest.mark.parametrize("sharpness", [1.0, 3.0])
def test_batch_noise_rate_sharpness_equals_the_core(sharpness, rng):
    from divweights_torch.loss import _batch_noise_rate

    logp = torch.log_softmax(torch.as_tensor(rng.normal(size=(32, 5)) * 2), dim=1)
    y = torch.as_tensor(rng.integers(0, 5, 32))
    got = _batch_noise_rate(logp, y, torch.zeros(32, dtype=torch.bool), True, sharpness)
    torch.testing.assert_close(got, dw.noise_rate(-logp, y, sharpness=sharpness), rtol=1e-12, atol=0)


def test_noise_sharpness_reaches_the_tracked_rate(batch):
    logits, labels = batch
    loss_fn = ReweightedLoss(noise_sharpness=4.0, noise_momentum=0.0)
    loss_fn(logits, labels)
    L = -torch.log_softmax(logits.detach().double(), dim=1)
    want = dw.noise_rate(L, labels, sharpness=4.0)
    torch.testing.assert_close(loss_fn.noise_rate.double(), want, rtol=1e-6, atol=0)


def test_auto_radius_of_chi_squared_instance_weights(batch):
    """delta='auto' with ChiSquared() (linear, sparse weights) uses its own two-bin radius pi / (1 - pi)."""
    logits, labels = batch
    loss_fn = ReweightedLoss(dw.ChiSquared(), delta="auto", noise_momentum=0.0)
    loss_fn(logits, labels)
    rate = float(loss_fn.noise_rate)
    w = loss_fn.last_weights.double()
    chi2 = float(dw.ChiSquared()(w, torch.full_like(w, 1 / w.numel())))
    assert chi2 == pytest.approx(rate / (1 - rate), rel=1e-4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"noise_sharpness": 0.0}, "sharpness must be"),
        ({"instance": dw.ReverseKL(), "delta": "auto"}, "delta='auto' needs an f-divergence"),
        ({"classes": dw.SquaredL2(), "gamma": "auto"}, "gamma='auto' needs TotalVariation"),
        ({"gamma": "auto"}, "gamma='auto' needs a class divergence"),
        ({"delta": "auto", "lam": 0.5}, "at most one"),
    ],
)
def test_auto_rejects_what_it_cannot_express(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ReweightedLoss(**kwargs)
