"""Edge cases of ``divweights_torch.ReweightedLoss``: eager label checks, reductions with no mass,
state loading, detached records, the KL softmin path, all-ignored and NaN batches for every
divergence, and the on-device schedule."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F
from divweights_torch import AnnealSchedule, ReweightedLoss
from torch_helpers import STRENGTHS, ce, make_batch

import divweights
from divweights import KL, Alpha, ChiSquared, ReverseKL, SquaredL2, TotalVariation


@pytest.fixture
def batch():
    return make_batch()


# -- eager checks and recorded values ----------------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [{}, {"label_smoothing": 0.1}, {"classes": TotalVariation(), "gamma": 0.2}, {"instance": None}],
    ids=["plain", "smoothed", "classes", "uniform"],
)
def test_out_of_range_label_names_the_range(batch, kw):
    logits, labels = batch
    bad = labels.clone()
    bad[0], bad[1], bad[2] = 7, -100, 0  # -100 is ignore_index: not reported
    kw = dict(kw)
    loss_fn = ReweightedLoss(kw.pop("instance", KL()), **kw)
    with pytest.raises(ValueError, match=r"integer targets must lie in \[0, 5\) for 5 classes; got values in \[0, 7\]"):
        loss_fn(logits, bad)


def test_negative_label_names_the_range(batch):
    logits, labels = batch
    bad = labels.clone()
    bad[4] = -3
    with pytest.raises(ValueError, match=r"got values in \[-3, "):
        ReweightedLoss().weights(logits, bad)


@pytest.mark.parametrize("instance", [None, KL()], ids=["uniform", "kl"])
def test_mean_with_all_class_weights_zero_is_nan_like_torch(batch, instance):
    logits, labels = batch
    weight = torch.zeros(5, dtype=torch.float64)
    kw = {} if instance is None else {"temperature": 1.0}
    loss = ReweightedLoss(instance, weight=weight, reduction="mean", **kw)(logits, labels)
    assert torch.isnan(F.cross_entropy(logits, labels, weight=weight))
    assert torch.isnan(loss)


def test_mean_of_an_all_ignored_batch_is_nan_like_torch_and_sum_is_zero(batch):
    logits, labels = batch
    ignored = torch.full_like(labels, -100)
    assert torch.isnan(F.cross_entropy(logits, ignored))
    assert torch.isnan(ReweightedLoss(None, reduction="mean")(logits, ignored))
    assert torch.isnan(ReweightedLoss(reduction="mean")(logits, ignored))
    assert float(ReweightedLoss()(logits, ignored)) == 0.0


@pytest.mark.parametrize("steps", [torch.tensor(-5), torch.tensor(2.5), torch.tensor([1, 2])])
def test_load_state_dict_rejects_an_invalid_step_count(steps):
    loss_fn = ReweightedLoss(KL(), temperature=0.5)
    state = loss_fn.state_dict()
    state["steps"] = steps
    with pytest.raises(ValueError, match="steps"):
        loss_fn.load_state_dict(state)
    assert loss_fn.step == 0


def test_step_setter_rejects_negative_values():
    with pytest.raises(ValueError, match=">= 0"):
        ReweightedLoss().step = -1


@pytest.mark.parametrize(
    "kw",
    [{}, {"lam": 0.5}, {"classes": ReverseKL(), "gamma": 0.1}, {"label_smoothing": 0.1}],
    ids=["delta", "lam", "classes", "smoothed"],
)
def test_recorded_and_returned_weights_carry_no_gradient(batch, kw):
    logits, labels = batch
    a = logits.clone().requires_grad_(True)
    loss_fn = ReweightedLoss(**kw)
    loss_fn(a, labels)
    for t in (loss_fn.last_weights, loss_fn.last_class_weights, loss_fn.last_losses, loss_fn.weights(a, labels)):
        assert not t.requires_grad and t.grad_fn is None


def test_last_class_weights_without_class_reweighting_are_the_labels_with_ignored_rows_zero(batch):
    logits, labels = batch
    masked = labels.clone()
    masked[3] = -100
    loss_fn = ReweightedLoss()
    loss_fn(logits, masked)
    expected = F.one_hot(labels, 5).double()
    expected[3] = 0
    torch.testing.assert_close(loss_fn.last_class_weights, expected)


# -- the KL softmin path and the edges of every divergence --------------------------------------


@pytest.mark.parametrize("form", ["lam", "temperature"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kl_penalty_weights_equal_the_core_with_ignored_rows(batch, form, dtype):
    logits, labels = batch
    logits = logits.to(dtype)
    masked = labels.clone()
    masked[[2, 5]] = -100
    loss_fn = ReweightedLoss(KL(), **{form: 0.3})
    loss_fn(logits, masked)
    key = torch.where(masked == -100, math.inf, ce(logits, labels))
    torch.testing.assert_close(loss_fn.last_weights, divweights.instance_weights(key, KL(), **{form: 0.3}))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tiny_kl_strength_puts_the_mass_on_the_minimisers(dtype):
    logits = torch.tensor([[3.0, 0.0], [3.0, 0.0], [0.0, 3.0], [1.0, 0.0]], dtype=dtype)
    labels = torch.tensor([0, 0, 0, 0])  # rows 0 and 1 tie for the smallest loss
    for lam in (1e-300, 1e-40):
        w = ReweightedLoss(KL(), lam=lam).weights(logits, labels)
        torch.testing.assert_close(w, torch.tensor([0.5, 0.5, 0.0, 0.0], dtype=dtype))


def test_infinite_kl_temperature_gives_uniform_weights(batch):
    logits, labels = batch
    w = ReweightedLoss(KL(), temperature=math.inf).weights(logits, labels)
    torch.testing.assert_close(w, torch.full((16,), 1 / 16, dtype=torch.float64))


EVERY_STRENGTH = [
    *STRENGTHS,
    (KL(), {"lam": 0.5}),
    (Alpha(0.1), {"lam": 0.1}),
    (Alpha(0.1), {"delta": 0.1}),
    (Alpha(2.0), {"temperature": 0.1}),
    (ChiSquared(), {"delta": 0.2}),
    (TotalVariation(), {"lam": 0.25}),
    (SquaredL2(), {"lam": 0.25}),
    (SquaredL2(), {"delta": 0.01}),
]


@pytest.mark.parametrize(("div", "kw"), EVERY_STRENGTH, ids=lambda x: repr(x))
def test_every_divergence_gives_zero_loss_and_gradient_on_an_all_ignored_batch(batch, div, kw):
    logits, labels = batch
    a = logits.clone().requires_grad_(True)
    loss_fn = ReweightedLoss(div, **kw)
    loss = loss_fn(a, torch.full_like(labels, -100))
    loss.backward()
    assert float(loss.detach()) == 0.0 and torch.all(a.grad == 0)
    assert torch.all(loss_fn.last_weights == 0)


@pytest.mark.parametrize(("div", "kw"), EVERY_STRENGTH, ids=lambda x: repr(x))
def test_every_divergence_turns_a_nan_logit_into_nan_weights(batch, div, kw):
    logits, labels = batch
    bad = logits.clone()
    bad[3, 2] = math.nan
    loss_fn = ReweightedLoss(div, **kw)
    assert torch.isnan(loss_fn(bad, labels))
    assert torch.isnan(loss_fn.last_weights).all()


@pytest.mark.parametrize("schedule", [AnnealSchedule(2, 4, 10.0), AnnealSchedule(3, 0), AnnealSchedule(0, 5, 0.5)])
def test_schedule_factor_on_the_device_equals_the_host_factor(schedule):
    for step in range(10):
        active, f = schedule.factor_tensor(torch.tensor(step), torch.float64)
        expected = schedule.factor(step)
        assert bool(active) == (expected is not None)
        if expected is not None:
            assert float(f) == pytest.approx(expected, rel=1e-15)
