"""Tests of the PyTorch adapter ``divweights_torch`` (single process, CPU, fast)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F
from divweights_torch import DEFAULT_DELTA, AnnealSchedule, ReweightedLoss
from torch_helpers import STRENGTHS, ce, host_reads, make_batch

import divweights
from divweights import KL, Alpha, ChiSquared, ReverseKL, SquaredL2, TotalVariation


@pytest.fixture
def batch():
    return make_batch()


# -- instance weights and gradients ------------------------------------------------------------


@pytest.mark.parametrize(("div", "kw"), STRENGTHS, ids=lambda x: repr(x))
def test_weights_equal_core_weights_on_the_same_losses(batch, div, kw):
    logits, labels = batch
    loss_fn = ReweightedLoss(div, **kw)
    loss_fn(logits, labels)
    expected = divweights.instance_weights(ce(logits, labels), div, **kw)
    torch.testing.assert_close(loss_fn.last_weights, expected)


@pytest.mark.parametrize(("div", "kw"), STRENGTHS, ids=lambda x: repr(x))
def test_gradient_is_weighted_ce_with_weights_held_fixed(batch, div, kw):
    logits, labels = batch
    a = logits.clone().requires_grad_(True)
    loss_fn = ReweightedLoss(div, **kw)
    loss_fn(a, labels).backward()
    b = logits.clone().requires_grad_(True)
    w = loss_fn.last_weights
    assert not w.requires_grad
    (w * ce(b, labels)).sum().backward()
    torch.testing.assert_close(a.grad, b.grad)


def test_loss_value_is_weighted_sum(batch):
    logits, labels = batch
    loss_fn = ReweightedLoss(KL(), temperature=0.5)
    loss = loss_fn(logits, labels)
    torch.testing.assert_close(loss, (loss_fn.last_weights * ce(logits, labels)).sum())


def test_previous_default_radius_gives_effective_size_n_exp_minus_delta(batch):
    logits, labels = batch
    loss_fn = ReweightedLoss(delta=DEFAULT_DELTA)
    loss_fn(logits, labels)
    w = loss_fn.last_weights
    kl = float(KL()(w, torch.full_like(w, 1 / w.numel())))
    assert kl == pytest.approx(DEFAULT_DELTA, abs=1e-6)
    entropy = -float((w * torch.log(w)).sum())
    assert math.exp(entropy) == pytest.approx(16 * math.exp(-DEFAULT_DELTA), rel=1e-5)


def test_default_delta_is_scale_free(batch):
    logits, labels = batch
    a, b = ReweightedLoss(delta=DEFAULT_DELTA), ReweightedLoss(delta=DEFAULT_DELTA)
    a(logits, labels)
    b(logits * 3, labels)  # different loss scale, same radius
    for w in (a.last_weights, b.last_weights):
        assert float(KL()(w, torch.full_like(w, 1 / 16))) == pytest.approx(DEFAULT_DELTA, abs=1e-6)


def test_instance_none_is_plain_cross_entropy(batch):
    logits, labels = batch
    for reduction in ("sum", "mean"):
        loss = ReweightedLoss(None, reduction=reduction)(logits, labels)
        torch.testing.assert_close(loss, F.cross_entropy(logits, labels))


def test_instance_none_mean_with_class_weight_matches_torch(batch):
    logits, labels = batch
    weight = torch.linspace(0.5, 2.0, 5, dtype=torch.float64)
    loss = ReweightedLoss(None, weight=weight, reduction="mean")(logits, labels)
    torch.testing.assert_close(loss, F.cross_entropy(logits, labels, weight=weight))


def test_per_example_loss_with_class_weight_and_smoothing_follows_torch(batch):
    logits, labels = batch
    weight = torch.linspace(0.5, 2.0, 5, dtype=torch.float64)
    loss_fn = ReweightedLoss(KL(), temperature=1.0, weight=weight, label_smoothing=0.1)
    loss_fn(logits, labels)
    expected = F.cross_entropy(logits, labels, weight=weight, label_smoothing=0.1, reduction="none")
    torch.testing.assert_close(loss_fn.last_losses, expected)
    torch.testing.assert_close(loss_fn.last_weights, divweights.instance_weights(expected, KL(), temperature=1.0))


def test_probability_targets(batch):
    logits, _ = batch
    probs = torch.softmax(torch.randn(16, 5, dtype=torch.float64), dim=-1)
    loss_fn = ReweightedLoss(KL(), temperature=1.0)
    loss = loss_fn(logits, probs)
    losses = F.cross_entropy(logits, probs, reduction="none")
    torch.testing.assert_close(loss, (divweights.instance_weights(losses, KL(), temperature=1.0) * losses).sum())


# -- reductions --------------------------------------------------------------------------------


def test_reduction_none_returns_weighted_terms_summing_to_sum(batch):
    logits, labels = batch
    per = ReweightedLoss(KL(), temperature=0.5, reduction="none")(logits, labels)
    total = ReweightedLoss(KL(), temperature=0.5, reduction="sum")(logits, labels)
    assert per.shape == (16,)
    torch.testing.assert_close(per.sum(), total)


def test_reduction_mean_equals_sum_without_class_weight(batch):
    logits, labels = batch
    mean = ReweightedLoss(KL(), temperature=0.5, reduction="mean")(logits, labels)
    total = ReweightedLoss(KL(), temperature=0.5, reduction="sum")(logits, labels)
    torch.testing.assert_close(mean, total)


def test_reduction_mean_with_class_weight_divides_by_weighted_mass(batch):
    logits, labels = batch
    weight = torch.linspace(0.5, 2.0, 5, dtype=torch.float64)
    loss_fn = ReweightedLoss(KL(), temperature=0.5, weight=weight, reduction="mean")
    mean = loss_fn(logits, labels)
    w = loss_fn.last_weights
    losses = F.cross_entropy(logits, labels, weight=weight, reduction="none")
    torch.testing.assert_close(mean, (w * losses).sum() / (w * weight[labels]).sum())


def test_unknown_reduction_rejected():
    with pytest.raises(ValueError, match="reduction"):
        ReweightedLoss(reduction="average")


# -- class reweighting -------------------------------------------------------------------------


@pytest.mark.parametrize("g", [0.0, 0.2, 0.7])
def test_total_variation_class_loss_is_hard_bootstrapping(batch, g):
    logits, labels = batch
    loss_fn = (
        ReweightedLoss(KL(), temperature=0.5, classes=TotalVariation(), gamma=g)
        if g
        else ReweightedLoss(KL(), temperature=0.5)
    )
    loss = loss_fn(logits, labels)
    L = -torch.log_softmax(logits, dim=-1)
    boot = (1 - g) * L.gather(1, labels[:, None])[:, 0] + g * L.min(dim=-1).values
    w = divweights.instance_weights(boot, KL(), temperature=0.5)
    torch.testing.assert_close(loss_fn.last_losses, boot)
    torch.testing.assert_close(loss, (w * boot).sum())


def test_class_weights_are_detached_in_the_gradient(batch):
    logits, labels = batch
    a = logits.clone().requires_grad_(True)
    loss_fn = ReweightedLoss(KL(), temperature=0.5, classes=ReverseKL(), gamma=0.1)
    loss_fn(a, labels).backward()
    v, w = loss_fn.last_class_weights, loss_fn.last_weights
    b = logits.clone().requires_grad_(True)
    (w * (v * -torch.log_softmax(b, dim=-1)).sum(-1)).sum().backward()
    torch.testing.assert_close(a.grad, b.grad)
    expected = divweights.class_weights(-torch.log_softmax(logits, -1), labels, ReverseKL(), gamma=0.1)
    torch.testing.assert_close(v, expected)


def test_class_reweighting_without_instance_weights(batch):
    logits, labels = batch
    loss = ReweightedLoss(None, classes=TotalVariation(), gamma=0.3)(logits, labels)
    L = -torch.log_softmax(logits, dim=-1)
    boot = 0.7 * L.gather(1, labels[:, None])[:, 0] + 0.3 * L.min(dim=-1).values
    torch.testing.assert_close(loss, boot.mean())


def test_kl_classes_with_soft_targets_from_label_smoothing(batch):
    logits, labels = batch
    loss = ReweightedLoss(None, classes=KL(), gamma=0.05, label_smoothing=0.1)(logits, labels)
    assert torch.isfinite(loss)


def test_gamma_without_classes_rejected():
    with pytest.raises(ValueError, match="classes"):
        ReweightedLoss(gamma=0.1)


def test_unsupported_class_divergence_rejected_at_construction():
    with pytest.raises(ValueError, match="class weights"):
        ReweightedLoss(classes=ChiSquared(), gamma=0.1)


# -- strengths and construction ----------------------------------------------------------------


def test_default_strength_only_for_kl():
    with pytest.raises(ValueError, match="delta"):
        ReweightedLoss(Alpha(0.1))


def test_two_strengths_rejected():
    with pytest.raises(ValueError, match="at most one"):
        ReweightedLoss(KL(), lam=1.0, delta=0.1)


def test_strength_without_instance_rejected():
    with pytest.raises(ValueError, match="without an instance divergence"):
        ReweightedLoss(None, temperature=1.0)


def test_unsupported_form_rejected_at_construction():
    with pytest.raises(ValueError, match="temperature"):
        ReweightedLoss(TotalVariation(), temperature=1.0)


def test_nonpositive_strength_rejected():
    with pytest.raises(ValueError):
        ReweightedLoss(KL(), temperature=0.0)


def test_divergence_class_instead_of_instance_rejected():
    with pytest.raises(TypeError):
        ReweightedLoss(KL)


# -- schedule ----------------------------------------------------------------------------------


def test_schedule_factor_values():
    s = AnnealSchedule(burnin_steps=3, anneal_steps=4, start_factor=5.0)
    assert [s.factor(t) for t in range(9)] == [None, None, None, 5.0, 4.0, 3.0, 2.0, 1.0, 1.0]


def test_schedule_without_anneal_jumps_to_one():
    s = AnnealSchedule(burnin_steps=2)
    assert [s.factor(t) for t in range(4)] == [None, None, 1.0, 1.0]


def test_published_schedule():
    s = AnnealSchedule.published()
    assert (s.burnin_steps, s.anneal_steps, s.start_factor) == (4000, 3000, 10.0)
    assert s.factor(3999) is None and s.factor(4000) == 10.0 and s.factor(5500) == 5.5 and s.factor(7000) == 1.0


def test_schedule_state_dict_round_trip():
    s = AnnealSchedule(10, 20, 3.0)
    t = AnnealSchedule()
    t.load_state_dict(s.state_dict())
    assert t == s


@pytest.mark.parametrize("kw", [{"burnin_steps": -1}, {"anneal_steps": 1.5}, {"start_factor": 0.0}])
def test_schedule_rejects_bad_values(kw):
    with pytest.raises((ValueError, TypeError)):
        AnnealSchedule(**kw)


def test_burnin_gives_uniform_weights_and_no_class_reweighting(batch):
    logits, labels = batch
    loss_fn = ReweightedLoss(
        KL(), temperature=0.1, classes=TotalVariation(), gamma=0.5, schedule=AnnealSchedule(burnin_steps=2)
    )
    for _ in range(2):
        loss = loss_fn(logits, labels)
        torch.testing.assert_close(loss_fn.last_weights, torch.full((16,), 1 / 16, dtype=torch.float64))
        torch.testing.assert_close(loss_fn.last_class_weights, F.one_hot(labels, 5).double())
        torch.testing.assert_close(loss, F.cross_entropy(logits, labels))
    loss_fn(logits, labels)  # step 2: reweighting on
    assert not torch.allclose(loss_fn.last_weights, torch.full((16,), 1 / 16, dtype=torch.float64))


@pytest.mark.parametrize(
    ("form", "scale"), [("temperature", lambda s, f: s * f), ("lam", lambda s, f: s * f), ("delta", lambda s, f: s / f)]
)
def test_annealing_scales_the_strength(batch, form, scale):
    logits, labels = batch
    sched = AnnealSchedule(burnin_steps=1, anneal_steps=2, start_factor=4.0)
    loss_fn = ReweightedLoss(KL(), **{form: 0.2}, schedule=sched)
    losses = ce(logits, labels)
    for step, factor in enumerate([None, 4.0, 2.5, 1.0, 1.0]):
        assert loss_fn.factor() == factor
        loss_fn(logits, labels)
        if factor is not None:
            expected = divweights.instance_weights(losses, KL(), **{form: scale(0.2, factor)})
            torch.testing.assert_close(loss_fn.last_weights, expected)
        assert loss_fn.step == step + 1


def test_steps_buffer_is_saved_and_restored(batch):
    logits, labels = batch
    sched = AnnealSchedule(burnin_steps=3)
    loss_fn = ReweightedLoss(KL(), temperature=0.5, schedule=sched)
    for _ in range(4):
        loss_fn(logits, labels)
    state = loss_fn.state_dict()
    assert int(state["steps"]) == 4
    resumed = ReweightedLoss(KL(), temperature=0.5, schedule=sched)
    assert resumed.factor() is None
    resumed.load_state_dict(state)
    assert resumed.step == 4 and resumed.factor() == 1.0


def test_eval_mode_and_weights_do_not_advance_steps(batch):
    logits, labels = batch
    loss_fn = ReweightedLoss(KL(), temperature=0.5)
    loss_fn.weights(logits, labels)
    loss_fn.eval()
    loss_fn(logits, labels)
    assert loss_fn.step == 0 and int(loss_fn.steps) == 0
    loss_fn.train()
    loss_fn(logits, labels)
    assert loss_fn.step == 1 and int(loss_fn.steps) == 1


def test_step_setter_updates_buffer():
    loss_fn = ReweightedLoss(KL(), temperature=0.5)
    loss_fn.step = 12
    assert int(loss_fn.steps) == 12


def test_weights_method_matches_forward(batch):
    logits, labels = batch
    loss_fn = ReweightedLoss(KL(), delta=0.2)
    w = loss_fn.weights(logits, labels)
    loss_fn(logits, labels)
    torch.testing.assert_close(w, loss_fn.last_weights)


# -- bad input ---------------------------------------------------------------------------------


def test_mismatched_batch_sizes_rejected(batch):
    logits, labels = batch
    with pytest.raises(ValueError, match=r"shape \(N,\)"):
        ReweightedLoss()(logits, labels[:-1])


def test_float_labels_of_shape_n_rejected(batch):
    logits, labels = batch
    with pytest.raises(TypeError, match="integer"):
        ReweightedLoss()(logits, labels.double())


def test_probability_targets_of_wrong_shape_rejected(batch):
    logits, _ = batch
    with pytest.raises(ValueError, match="probability targets"):
        ReweightedLoss()(logits, torch.full((16, 4), 0.25, dtype=torch.float64))


def test_logits_must_be_two_dimensional(batch):
    logits, labels = batch
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        ReweightedLoss()(logits[0], labels[:1])


def test_bool_targets_rejected(batch):
    logits, labels = batch
    with pytest.raises(TypeError):
        ReweightedLoss()(logits, labels > 2)


def test_out_of_range_label_raises(batch):
    logits, labels = batch
    bad = labels.clone()
    bad[0] = 5
    with pytest.raises((RuntimeError, IndexError, ValueError)):
        ReweightedLoss()(logits, bad)


def test_class_weight_of_wrong_length_rejected(batch):
    logits, labels = batch
    with pytest.raises(ValueError, match="weight"):
        ReweightedLoss(weight=torch.ones(3, dtype=torch.float64))(logits, labels)


# -- ignore_index ------------------------------------------------------------------------------


def test_ignored_rows_get_zero_weight_and_are_excluded(batch):
    logits, labels = batch
    masked = labels.clone()
    masked[[1, 4, 9]] = -100
    keep = masked != -100
    loss_fn = ReweightedLoss(KL(), delta=0.3)
    loss = loss_fn(logits, masked)
    w = loss_fn.last_weights
    assert torch.all(w[~keep] == 0)
    expected = divweights.instance_weights(ce(logits[keep], labels[keep]), KL(), delta=0.3)
    torch.testing.assert_close(w[keep], expected)
    torch.testing.assert_close(loss, ReweightedLoss(KL(), delta=0.3)(logits[keep], labels[keep]))


def test_custom_ignore_index(batch):
    logits, labels = batch
    masked = labels.clone()
    masked[0] = 99
    loss_fn = ReweightedLoss(None, ignore_index=99)
    torch.testing.assert_close(loss_fn(logits, masked), F.cross_entropy(logits, masked, ignore_index=99))


@pytest.mark.parametrize("instance", [KL(), None])
def test_all_ignored_batch_gives_zero_loss_and_zero_grad(batch, instance):
    logits, labels = batch
    a = logits.clone().requires_grad_(True)
    kw = {"temperature": 0.5} if instance is not None else {}
    loss = ReweightedLoss(instance, classes=TotalVariation(), gamma=0.2, **kw)(a, torch.full_like(labels, -100))
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert torch.all(a.grad == 0)


# -- non-finite --------------------------------------------------------------------------------


def test_nan_logit_makes_the_batch_loss_nan(batch):
    logits, labels = batch
    bad = logits.clone()
    bad[3, 2] = math.nan
    loss_fn = ReweightedLoss(KL(), delta=0.3)
    loss = loss_fn(bad, labels)
    assert torch.isnan(loss)
    assert torch.isnan(loss_fn.last_weights).all()


_CLASS_CONFIGS = [
    {},  # the default: adaptive radius
    {"classes": TotalVariation(), "gamma": 0.2},
    {"classes": ReverseKL(), "gamma": "auto"},
    {"delta": 0.3, "label_smoothing": 0.0, "classes": ReverseKL(), "gamma": 0.05},
]


@pytest.mark.parametrize("kw", _CLASS_CONFIGS, ids=["default", "tv", "rkl-auto", "rkl-fixed"])
def test_a_class_masked_with_minus_inf_changes_nothing(batch, kw):
    """Logits of -inf for a class (a class ruled out for the whole batch): loss, weights and gradients
    equal those of the batch without that class (class-weighted sums gave NaN: 0 * inf)."""
    logits, labels = batch
    a = logits.detach().clone().requires_grad_(True)
    b = torch.cat([a, torch.full((a.shape[0], 1), -math.inf, dtype=a.dtype)], dim=1)
    plain, masked = ReweightedLoss(noise_momentum=0.0, **kw), ReweightedLoss(noise_momentum=0.0, **kw)
    want = plain(a, labels)
    got = masked(b, labels)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(masked.last_weights, plain.last_weights)
    (g_want,) = torch.autograd.grad(want, a)
    (g_got,) = torch.autograd.grad(got, a)
    torch.testing.assert_close(g_got, g_want)


@pytest.mark.parametrize(
    "kw",
    [
        {"temperature": 1.0, "label_smoothing": 0.1},
        {"classes": TotalVariation(), "gamma": 0.2},
        {"label_smoothing": 0.1},
    ],
    ids=["smoothing", "tv", "default-smoothing"],
)
def test_nan_logits_of_an_ignored_row_stay_out_of_the_loss(batch, kw):
    """An ignored row (ignore_index) whose logits are NaN (fully masked padding) adds nothing, as in
    F.cross_entropy: the loss equals the loss without that row (0 * NaN made it NaN)."""
    logits, labels = batch
    broken, ignored = logits.clone(), labels.clone()
    broken[2], ignored[2] = math.nan, -100
    keep = torch.arange(len(labels)) != 2
    got = ReweightedLoss(noise_momentum=0.0, **kw)(broken, ignored)
    torch.testing.assert_close(got, ReweightedLoss(noise_momentum=0.0, **kw)(logits[keep], labels[keep]))


def test_nan_logit_makes_a_class_weighted_loss_nan(batch):
    logits, labels = batch
    bad = logits.clone()
    bad[3, 2] = math.nan
    assert torch.isnan(ReweightedLoss(KL(), delta=0.3, classes=TotalVariation(), gamma=0.2)(bad, labels))


# -- precision and autocast --------------------------------------------------------------------


def test_autocast_bfloat16_smoke():
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 4)
    x, y = torch.randn(32, 6), torch.randint(0, 4, (32,))
    loss_fn = ReweightedLoss(KL(), delta=0.3, classes=TotalVariation(), gamma=0.1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
        assert logits.dtype == torch.bfloat16
        loss = loss_fn(logits, y)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert loss_fn.last_weights.dtype == torch.float32
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    w_ref = ReweightedLoss(KL(), delta=0.3, classes=TotalVariation(), gamma=0.1).weights(logits.float(), y)
    torch.testing.assert_close(loss_fn.last_weights, w_ref)


def test_float32_logits_give_float32_loss(batch):
    logits, labels = batch
    loss = ReweightedLoss()(logits.float(), labels)
    assert loss.dtype == torch.float32


def test_module_moves_with_to():
    loss_fn = ReweightedLoss(weight=torch.ones(3)).to(torch.float64)
    assert loss_fn.weight.dtype == torch.float64 and loss_fn.steps.dtype == torch.int64


@pytest.mark.parametrize("div", [SquaredL2(), ReverseKL(), TotalVariation()], ids=repr)
def test_other_class_divergences_follow_the_core(batch, div):
    logits, labels = batch
    loss_fn = ReweightedLoss(KL(), delta=0.3, classes=div, gamma=0.05)
    loss = loss_fn(logits, labels)
    L = -torch.log_softmax(logits, dim=-1)
    v = divweights.class_weights(L, labels, div, gamma=0.05)
    losses = (v * L).sum(-1)
    w = divweights.instance_weights(losses, KL(), delta=0.3)
    torch.testing.assert_close(loss_fn.last_class_weights, v)
    torch.testing.assert_close(loss, (w * losses).sum())


def test_kl_class_weights_with_probability_targets_follow_the_core(batch):
    logits, _ = batch
    probs = torch.softmax(torch.randn(16, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2)), -1)
    loss_fn = ReweightedLoss(KL(), temperature=0.5, classes=KL(), gamma=0.05)
    loss = loss_fn(logits, probs)
    L = -torch.log_softmax(logits, dim=-1)
    v = divweights.class_weights(L, probs, KL(), gamma=0.05)
    losses = (v * L).sum(-1)
    torch.testing.assert_close(loss_fn.last_class_weights, v)
    torch.testing.assert_close(loss, (divweights.instance_weights(losses, KL(), temperature=0.5) * losses).sum())


def test_kl_class_weights_with_integer_labels_rejected(batch):
    logits, labels = batch
    with pytest.raises(ValueError, match="probability targets"):
        ReweightedLoss(None, classes=KL(), gamma=0.05)(logits, labels)


# -- host synchronisation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("div", "kw"),
    [
        (KL(), {"delta": 0.3}),
        (KL(), {"lam": 0.3}),
        (Alpha(0.1), {"temperature": 0.1}),
        (None, {}),
        (KL(), {"classes": TotalVariation(), "gamma": 0.2}),
        (KL(), {"classes": ReverseKL(), "gamma": 0.05, "label_smoothing": 0.1}),
    ],
    ids=["kl-delta", "kl-lam", "alpha-temperature", "uniform", "tv-classes", "reverse-kl-classes-smoothed"],
)
def test_training_step_reads_nothing_on_the_host(batch, div, kw):
    logits, labels = batch
    labels = labels.clone()
    labels[0] = -100
    a = logits.clone().requires_grad_(True)
    loss_fn = ReweightedLoss(div, **kw, schedule=AnnealSchedule(burnin_steps=1, anneal_steps=2))
    for _ in range(4):  # burn-in, annealing, after
        assert host_reads(lambda: loss_fn(a, labels).backward()) == 0
