"""Tests of ``divweights_torch.weighted_mixup`` and its Beta sampler (single process, CPU, fast)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F
from divweights_torch import ReweightedLoss, weighted_mixup
from divweights_torch.mixup import beta_symmetric
from torch_helpers import host_reads

from divweights import KL, ReverseKL
from divweights.mixup import mixup_ratio, smooth_targets, smoothing_factors


def _mix_batch(n=8, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, 3, generator=g, dtype=torch.float64), torch.randint(0, k, (n,), generator=g)


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_sampled_partner_frequencies_follow_the_weights(power):
    x, y = _mix_batch(n=6)
    w = torch.tensor([0.4, 0.25, 0.15, 0.1, 0.1, 0.0], dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    counts = torch.zeros(6, dtype=torch.float64)
    draws = 600
    for _ in range(draws):
        _, _, info = weighted_mixup(x, y, w, mode="sample", num_classes=3, power=power, generator=g)
        counts += torch.bincount(info["partners"], minlength=6)
    total = draws * 6
    p = w**power / (w**power).sum()
    assert counts[5] == 0
    expected = total * p[:5]
    chi2 = float(((counts[:5] - expected) ** 2 / expected).sum())
    assert chi2 < 18.5  # chi-square with 4 degrees of freedom: P(> 18.5) < 0.001


def test_deterministic_weight_ratios_are_core_mixup_ratios():
    x, y = _mix_batch()
    w = torch.rand(8, dtype=torch.float64)
    _, _, info = weighted_mixup(
        x, y, w, mode="weight", num_classes=3, generator=torch.Generator().manual_seed(0), weight_ratio="deterministic"
    )
    p = info["partners"]
    assert sorted(p.tolist()) == list(range(8))  # a permutation
    torch.testing.assert_close(info["ratios"], mixup_ratio(w, w[p]))
    torch.testing.assert_close(info["ratios"], w / (w + w[p]))


@pytest.mark.parametrize("mode", ["plain", "sample", "weight", "sample_weight", "label_smoothing"])
def test_inputs_and_labels_mix_with_the_same_ratio(mode):
    x, y = _mix_batch()
    w = torch.rand(8, dtype=torch.float64)
    pred = torch.randn(8, 3, dtype=torch.float64)
    mx, my, info = weighted_mixup(
        x, y, w, mode=mode, num_classes=3, predictions=pred, generator=torch.Generator().manual_seed(3)
    )
    r, p = info["ratios"], info["partners"]
    assert mx.shape == x.shape and my.shape == (8, 3)
    torch.testing.assert_close(mx, r[:, None, None] * x + (1 - r[:, None, None]) * x[p], rtol=0, atol=1e-15)
    base = info.get("smoothed_targets", F.one_hot(y, 3).double())
    torch.testing.assert_close(my, r[:, None] * base + (1 - r[:, None]) * base[p], rtol=0, atol=1e-15)
    torch.testing.assert_close(my.sum(-1), torch.ones(8, dtype=torch.float64))


def test_zero_weights_give_no_nan():
    x, y = _mix_batch()
    w = torch.tensor([0.0, 0.0, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    for mode in ("weight", "sample_weight", "label_smoothing"):
        mx, my, info = weighted_mixup(
            x, y, w, mode=mode, num_classes=3, predictions=torch.randn(8, 3), generator=torch.Generator().manual_seed(0)
        )
        assert torch.isfinite(mx).all() and torch.isfinite(my).all()
    zeros = torch.zeros(8, dtype=torch.float64)
    _, _, info = weighted_mixup(x, y, zeros, mode="sample_weight", num_classes=3, weight_ratio="deterministic")
    torch.testing.assert_close(info["ratios"], torch.full((8,), 0.5, dtype=torch.float64))
    _, _, info = weighted_mixup(x, y, zeros, mode="sample_weight", num_classes=3)  # Beta(alpha, alpha): finite
    assert torch.isfinite(info["ratios"]).all() and ((info["ratios"] >= 0) & (info["ratios"] <= 1)).all()


def test_weight_ratio_half_when_both_partners_weigh_zero():
    x, y = _mix_batch()
    w = torch.zeros(8, dtype=torch.float64)
    w[0] = 1.0
    _, _, info = weighted_mixup(
        x, y, w, mode="weight", num_classes=3, generator=torch.Generator().manual_seed(0), weight_ratio="deterministic"
    )
    both_zero = (w == 0) & (w[info["partners"]] == 0)
    assert both_zero.any()
    assert torch.all(info["ratios"][both_zero] == 0.5)


@pytest.mark.parametrize("alpha", [1.0, 0.2])
def test_plain_mixup_uses_beta_ratios(alpha):
    x, y = _mix_batch(n=4000, k=3)
    _, _, info = weighted_mixup(
        x, y, None, mode="plain", num_classes=3, alpha=alpha, generator=torch.Generator().manual_seed(0)
    )
    r = info["ratios"]
    assert torch.isfinite(r).all() and (r >= 0).all() and (r <= 1).all()
    assert float(r.mean()) == pytest.approx(0.5, abs=0.03)
    var = 1 / (4 * (2 * alpha + 1))  # variance of Beta(alpha, alpha)
    assert float(r.var()) == pytest.approx(var, rel=0.1)
    assert sorted(info["partners"].tolist()) == list(range(4000))


def test_label_smoothing_mode_blends_labels_toward_predictions():
    x, _ = _mix_batch(n=3)
    y = torch.tensor([0, 1, 2])
    w = torch.tensor([0.5, 0.25, 0.0], dtype=torch.float64)
    pred = torch.tensor([[0.0, 5.0, 0.0], [0.0, 5.0, 0.0], [5.0, 0.0, 0.0]], dtype=torch.float64)
    _, _, info = weighted_mixup(x, y, w, mode="label_smoothing", predictions=pred)
    expected = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(info["smoothed_targets"], expected)
    s = w / w.max()
    torch.testing.assert_close(
        info["smoothed_targets"][0],
        s[0] * F.one_hot(y[0], 3).double() + (1 - s[0]) * F.one_hot(torch.tensor(1), 3).double(),
    )


def test_mixup_is_reproducible_with_a_generator():
    x, y = _mix_batch()
    w = torch.rand(8, dtype=torch.float64)
    a = weighted_mixup(x, y, w, mode="sample_weight", num_classes=3, generator=torch.Generator().manual_seed(5))
    b = weighted_mixup(x, y, w, mode="sample_weight", num_classes=3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[2]["partners"], b[2]["partners"])


def test_mixup_with_probability_targets():
    x, _ = _mix_batch()
    probs = torch.softmax(torch.randn(8, 3, dtype=torch.float64), -1)
    _, my, _ = weighted_mixup(x, probs, torch.rand(8, dtype=torch.float64), mode="sample_weight")
    torch.testing.assert_close(my.sum(-1), torch.ones(8, dtype=torch.float64))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"mode": "mixup"}, ValueError),
        ({"mode": "sample", "weights": None}, ValueError),
        ({"mode": "weight", "weights": torch.ones(7)}, ValueError),
        ({"mode": "plain", "num_classes": None}, ValueError),
        ({"mode": "plain", "targets": torch.zeros(8)}, ValueError),
        ({"mode": "label_smoothing"}, ValueError),
        ({"mode": "plain", "alpha": 0.0}, ValueError),
        ({"mode": "sample", "power": -1.0}, ValueError),
    ],
)
def test_mixup_rejects_bad_input(kwargs, error):
    x, y = _mix_batch()
    args = {"targets": y, "weights": torch.ones(8), "num_classes": 3}
    args.update(kwargs)
    with pytest.raises(error):
        weighted_mixup(x, args.pop("targets"), args.pop("weights"), **args)


def test_cicw_m_pipeline_runs_under_autocast():
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 4)
    x, y = torch.randn(16, 6), torch.randint(0, 4, (16,))
    loss_fn = ReweightedLoss(KL(), temperature=1.0, classes=ReverseKL(), gamma=0.01)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        w = loss_fn.weights(model(x), y)
        mx, my, _ = weighted_mixup(x, y, w, mode="sample_weight", num_classes=4)
        loss = loss_fn(model(mx), my)
    loss.backward()
    assert torch.isfinite(loss) and loss_fn.step == 1


@pytest.mark.parametrize("mode", ["plain", "sample", "weight", "sample_weight", "label_smoothing"])
def test_mixup_reads_nothing_on_the_host(mode):
    x, y = _mix_batch()
    w = torch.rand(8, dtype=torch.float64)
    pred = torch.randn(8, 3)
    assert host_reads(lambda: weighted_mixup(x, y, w, mode=mode, num_classes=3, predictions=pred)) == 0


# -- info keys, labels, detachment --------------------------------------------------------------


def test_label_smoothing_info_holds_the_core_smoothing_factors_and_targets():
    x, y = _mix_batch()
    w = torch.rand(8, dtype=torch.float64)
    pred = torch.randn(8, 3, dtype=torch.float64)
    _, _, info = weighted_mixup(x, y, w, mode="label_smoothing", num_classes=3, predictions=pred)
    assert set(info) == {"partners", "ratios", "smoothing", "smoothed_targets"}
    torch.testing.assert_close(info["smoothing"], smoothing_factors(w))
    torch.testing.assert_close(info["smoothed_targets"], smooth_targets(F.one_hot(y, 3).double(), w, pred))


@pytest.mark.parametrize("mode", ["plain", "sample", "weight", "sample_weight"])
def test_info_keys_without_smoothing(mode):
    x, y = _mix_batch()
    _, _, info = weighted_mixup(x, y, torch.rand(8, dtype=torch.float64), mode=mode, num_classes=3)
    assert set(info) == {"partners", "ratios"}


def test_info_carries_no_gradient():
    x, y = _mix_batch()
    w = torch.rand(8, dtype=torch.float64, requires_grad=True)
    pred = torch.randn(8, 3, dtype=torch.float64, requires_grad=True)
    _, _, info = weighted_mixup(x, y, w, mode="label_smoothing", num_classes=3, predictions=pred)
    _, _, info2 = weighted_mixup(x, y, w, mode="sample_weight", num_classes=3)
    for t in (*info.values(), *info2.values()):
        assert not t.requires_grad


def test_out_of_range_label_names_the_range():
    x, y = _mix_batch()
    y = y.clone()
    y[0] = 7
    with pytest.raises(ValueError, match=r"integer targets must lie in \[0, 3\) for 3 classes; got values in \[0, 7\]"):
        weighted_mixup(x, y, torch.rand(8, dtype=torch.float64), mode="sample_weight", num_classes=3)


# -- Beta ratios from public samplers -----------------------------------------------------------


def test_beta_ratios_do_not_use_the_private_dirichlet_sampler(monkeypatch):
    def private(*args, **kwargs):
        raise AssertionError("torch._sample_dirichlet is private API")

    monkeypatch.setattr(torch, "_sample_dirichlet", private)
    x, y = _mix_batch()
    _, _, info = weighted_mixup(x, y, None, mode="plain", num_classes=3)
    assert ((info["ratios"] >= 0) & (info["ratios"] <= 1)).all()


@pytest.mark.parametrize("alpha", [0.05, 0.2, 1.0, 2.0, 10.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_beta_sampler_follows_the_beta_distribution(alpha, dtype):
    stats = pytest.importorskip("scipy.stats")
    r = beta_symmetric(20000, alpha, dtype=dtype, generator=torch.Generator().manual_seed(11))
    assert r.dtype == dtype and torch.isfinite(r).all() and ((r >= 0) & (r <= 1)).all()
    r = r.double().numpy()
    # values near 1 round to 1.0 (for small alpha a visible share of them); Beta(a, a) is
    # symmetric, so test the exactly represented lower half and the balance of the halves
    low = r[r < 0.5]
    assert stats.binomtest(len(low), len(r)).pvalue > 1e-3
    assert stats.kstest(low, lambda t: 2 * stats.beta(alpha, alpha).cdf(t)).pvalue > 1e-3


def test_beta_sampler_is_reproducible_with_a_generator():
    a = beta_symmetric(100, 0.5, generator=torch.Generator().manual_seed(3))
    b = beta_symmetric(100, 0.5, generator=torch.Generator().manual_seed(3))
    c = beta_symmetric(100, 0.5, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("alpha", [0.0, -1.0, float("inf"), float("nan"), True])
def test_beta_sampler_rejects_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        beta_symmetric(4, alpha)


def test_cicw_m_step_matches_its_parts():
    """A CICW-M step: weights of the clean batch, weighted mixup, reweighted loss of the mixed batch."""
    torch.manual_seed(0)
    logits, y = torch.randn(32, 4, dtype=torch.float64), torch.randint(0, 4, (32,))
    loss_fn = ReweightedLoss(KL(), temperature=1.0, classes=ReverseKL(), gamma=0.01)
    w = loss_fn.weights(logits, y)
    g = torch.Generator().manual_seed(1)
    mx, my, info = weighted_mixup(logits, y, w, mode="sample_weight", num_classes=4, generator=g)
    r, p = info["ratios"], info["partners"]
    torch.testing.assert_close(mx, r[:, None] * logits + (1 - r[:, None]) * logits[p])
    loss = loss_fn(mx, my)
    ref = ReweightedLoss(KL(), temperature=1.0, classes=ReverseKL(), gamma=0.01, reduction="none")(mx, my)
    torch.testing.assert_close(loss, ref.sum())


# ------------------------------------------------------------------ the weighted Beta ratio (default)


@pytest.mark.parametrize("alpha", [1.0, 0.2])
def test_weighted_ratio_at_equal_weights_is_plain_mixups_beta(alpha):
    """Equal weights (the burn-in, near-uniform weights): Beta(alpha, alpha), not a constant 1/2."""
    x, y = _mix_batch(n=4000, k=3)
    w = torch.full((4000,), 1 / 4000, dtype=torch.float64)
    _, _, info = weighted_mixup(
        x, y, w, mode="sample_weight", num_classes=3, alpha=alpha, generator=torch.Generator().manual_seed(0)
    )
    r = info["ratios"]
    assert float(r.mean()) == pytest.approx(0.5, abs=0.03)
    assert float(r.var()) == pytest.approx(1 / (4 * (2 * alpha + 1)), rel=0.1)


def test_weighted_ratio_has_mean_rho_and_the_beta_variance():
    n, alpha = 4000, 1.0
    x = torch.zeros(n, 1, dtype=torch.float64)
    w = torch.where(torch.arange(n) % 2 == 0, 3.0, 1.0).double()  # rho = 3/4 against a light partner
    _, _, info = weighted_mixup(
        x,
        torch.zeros(n, dtype=torch.long),
        w,
        mode="weight",
        num_classes=2,
        alpha=alpha,
        generator=torch.Generator().manual_seed(5),
    )
    r, p = info["ratios"], info["partners"]
    pick = (w == 3.0) & (w[p] == 1.0)
    rho = 0.75
    assert float(r[pick].mean()) == pytest.approx(rho, abs=0.02)
    assert float(r[pick].var()) == pytest.approx(rho * (1 - rho) / (2 * alpha + 1), rel=0.15)


def test_weighted_ratio_keeps_an_example_whole_against_a_zero_weight_partner():
    x, y = _mix_batch()
    w = torch.tensor([0.5, 0.5, 0.0, 0.0, 0.2, 0.0, 0.3, 0.0], dtype=torch.float64)
    _, _, info = weighted_mixup(x, y, w, mode="weight", num_classes=3, generator=torch.Generator().manual_seed(2))
    r, p = info["ratios"], info["partners"]
    assert torch.all(r[(w > 0) & (w[p] == 0)] == 1.0)
    assert torch.all(r[(w == 0) & (w[p] > 0)] == 0.0)
    assert torch.isfinite(r).all()


def test_weight_ratio_is_validated():
    x, y = _mix_batch()
    with pytest.raises(ValueError, match="weight_ratio must be one of"):
        weighted_mixup(x, y, torch.ones(8), mode="weight", num_classes=3, weight_ratio="mean")


@pytest.mark.parametrize("ratio", ["beta", "deterministic"])
def test_nan_weights_give_nan_ratios(ratio):
    """The hot path does not check the weights on the host; a NaN weight (the weights of a batch with a NaN
    loss) makes its ratios NaN, as the loss would be, instead of plain mixing."""
    x, y = _mix_batch()
    w = torch.rand(8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    w[2] = math.nan
    _, _, info = weighted_mixup(
        x, y, w, mode="weight", num_classes=3, weight_ratio=ratio, generator=torch.Generator().manual_seed(0)
    )
    p, r = info["partners"], info["ratios"]
    touched = (torch.arange(8) == 2) | (p == 2)
    assert torch.isnan(r[touched]).all() and torch.isfinite(r[~touched]).all()


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_sampled_partners_with_non_finite_weights_name_the_weights(bad):
    """torch.multinomial's own message for a NaN entry reads 'probability entry < 0'."""
    x, y = _mix_batch()
    w = torch.rand(8, dtype=torch.float64)
    w[2] = bad
    with pytest.raises(ValueError, match="weights must be finite and nonnegative"):
        weighted_mixup(x, y, w, mode="sample_weight", num_classes=3)
