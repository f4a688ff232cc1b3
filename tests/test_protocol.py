"""``--protocol paper``: each choice of the published CIFAR recipe, pinned (issue 12, item 1).

The published code is the TensorFlow ``ciw_label_noise`` folder of google-research; the
row-by-row comparison is ``docs/guide/protocol.rst``. Model, data and mixup tests run on
tiny CIFAR-format pickle files (``_writers.write_cifar_like``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F
from _writers import write_cifar_like
from divweights_train import cli
from divweights_train.config import (
    METHODS,
    OptionError,
    TrainConfig,
    anneal_schedule,
    method_spec,
)
from divweights_train.metrics import read_metrics, read_summary
from divweights_train.prepare import epoch_permutation, prepare_data, stream_order
from divweights_train.protocol import (
    paper_lr_milestone_steps,
    published_anneal,
)


def _paper(method="ciw", noise="symmetric:0.4", **kw) -> TrainConfig:
    return TrainConfig(protocol="paper", dataset="cifar10", method=method, noise=noise, **kw).resolved()


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_cifar_like(root, "cifar10", num_train=1000, num_test=20, rng=0)
    return root


# --------------------------------------------------------------------------- #
# The recipe's numbers.
# --------------------------------------------------------------------------- #
def test_paper_protocol_trains_50000_iterations_at_batch_128_evaluating_every_1000():
    cfg = _paper()
    assert cfg.batch_size == 128 and cfg.eval_every == 1000
    assert cfg.epochs * cfg.eval_every == 50_000


def test_paper_protocol_optimiser_is_sgd_nesterov_09_lr_01_without_weight_decay():
    cfg = _paper()
    assert (cfg.lr, cfg.momentum, cfg.nesterov, cfg.weight_decay) == (
        0.1,
        0.9,
        True,
        0.0,
    )
    assert cfg.warmup_epochs == 0.0 and cfg.lr_decay == 0.1


def test_paper_lr_drops_after_iterations_11718_31250_42968_counted_in_steps():
    cfg = _paper()
    assert cfg.lr_milestone_steps == (11718, 31250, 42968) and cfg.lr_milestones == ()
    # tf.keras PiecewiseConstantDecay: steps 0..m keep the rate, step m + 1 has the lower one
    lr = {s: cfg.lr_at(s // 1000, s, 1000) for s in (0, 11718, 11719, 31250, 31251, 42968, 42969, 49999)}
    assert lr[0] == lr[11718] == 0.1
    assert lr[11719] == pytest.approx(0.01) and lr[31250] == pytest.approx(0.01)
    assert lr[31251] == pytest.approx(1e-3) and lr[42968] == pytest.approx(1e-3)
    assert lr[42969] == pytest.approx(1e-4) and lr[49999] == pytest.approx(1e-4)
    # counted as epochs x 50,000 // batch, not in epochs of the 45,000-example split (351 steps)
    assert paper_lr_milestone_steps(128) == tuple(e * 50_000 // 128 for e in (30, 80, 110))
    assert paper_lr_milestone_steps(128)[0] != 30 * (45_000 // 128)


def test_paper_protocol_selects_the_published_model_and_keeps_ours_available():
    assert _paper().model == "preact-resnet18-paper"
    assert TrainConfig(dataset="cifar10").resolved().model == "preact-resnet18"
    assert _paper(model="preact-resnet18").model == "preact-resnet18"


def test_paper_protocol_burn_in_4000_and_annealing_3000_steps_from_10x():
    cfg = _paper("cicw-m")
    assert (cfg.burnin_steps, cfg.anneal_steps, cfg.anneal_start_factor) == (
        4000,
        3000,
        10.0,
    )


def _published_lambda(it: int, lam: float, burnin=4000, anneal=3000, iters=50_000):
    """The published code's lambda_hyp at 1-based iteration ``it`` (None: uniform weights)."""
    if it <= burnin:
        return None
    return float(np.interp(it, [burnin, burnin + anneal, iters], [10 * lam, lam, lam]))


def test_annealing_follows_the_published_line_one_step_later_in_both_frameworks():
    from divweights_torch import AnnealSchedule
    from divweights_train.jax_step import scheduled_strength

    lam = 2.5
    burnin, anneal, start = anneal_schedule(_paper("cicw-m"), 1000)
    assert (burnin, anneal) == (4000, 2999) and start == pytest.approx(10 - 9 / 3000)
    torch_schedule = AnnealSchedule(burnin, anneal, start_factor=start)
    kw = {
        "form": "temperature",
        "burnin_steps": burnin,
        "anneal_steps": anneal,
        "start_factor": start,
    }
    for step in (0, 3999, 4000, 4001, 5500, 6998, 6999, 7000, 7001, 49_999):
        want = _published_lambda(step + 1, lam)
        factor = torch_schedule.factor(step)
        strength, active = scheduled_strength(np.int32(step), np.float32(lam), **kw)
        if want is None:
            assert factor is None and not bool(active)
        else:
            assert factor * lam == pytest.approx(want, rel=1e-12)
            assert bool(active) and float(strength) == pytest.approx(want, rel=1e-6)
    # divweights' own schedule starts the line one step later (10x at the first reweighted step)
    assert AnnealSchedule(4000, 3000).factor(4000) * lam != pytest.approx(_published_lambda(4001, lam))
    assert published_anneal(3000, 10.0) == (2999, pytest.approx(9.997))


def test_per_method_published_settings():
    ciw = _paper("ciw")
    assert (ciw.instance_divergence, ciw.strength()) == (
        "alpha:0.1",
        {"temperature": 0.1},
    )
    cicwm = _paper("cicw-m")
    assert cicwm.strength() == {"temperature": 2.5}
    assert (cicwm.class_divergence, cicwm.class_gamma) == ("reverse-kl", 0.01)
    assert method_spec("cicw-m").mixup == "sample_weight" and cicwm.mixup_recompute is True
    assert cicwm.mixup_alpha == 2.0  # the published default, used in the burn-in
    ciwm = _paper("ciw-m", noise="asymmetric:0.4")
    assert ciwm.strength() == {"temperature": 10.0}
    assert method_spec("ciw-m").mixup == "label_smoothing" and ciwm.mixup_recompute is False
    assert ciwm.mixup_alpha == 0.2
    assert _paper("mixup").mixup_alpha == 2.0
    assert all(_paper(m).mixup_rule == "published" for m in ("ciw-m", "cicw-m"))


def test_options_given_explicitly_win_over_the_protocol():
    cfg = _paper("ciw", weight_decay=5e-4, delta=0.5, epochs=3, eval_every=10, lr_milestones=(1,))
    assert cfg.weight_decay == 5e-4 and cfg.strength() == {"delta": 0.5}
    assert (cfg.epochs, cfg.eval_every, cfg.lr_milestones, cfg.lr_milestone_steps) == (
        3,
        10,
        (1,),
        None,
    )
    assert _paper("ciw", burnin_epochs=1.0).burnin_steps is None


def test_paper_protocol_is_the_cifar_recipe_only(capsys):
    with pytest.raises(OptionError) as info:
        TrainConfig(protocol="paper", dataset="fashion-mnist")
    assert info.value.field == "protocol" and "cifar10" in info.value.problem
    err = capsys.readouterr()
    assert cli.main(["--protocol", "paper", "--dataset", "two-moons"]) == 2
    err = capsys.readouterr().err
    assert "argument --protocol: paper is the published CIFAR recipe" in err


def test_every_method_resolves_under_the_paper_protocol_on_both_cifars():
    for dataset in ("cifar10", "cifar100"):
        for method in METHODS:
            cfg = TrainConfig(protocol="paper", dataset=dataset, method=method, noise="symmetric:0.4").resolved()
            assert TrainConfig.from_dict(cfg.to_dict()) == cfg
            assert cfg.resolved() == cfg


# --------------------------------------------------------------------------- #
# Data: noise, split, augmentation, the iteration stream.
# --------------------------------------------------------------------------- #
def test_symmetric_noise_flips_each_example_independently_with_probability_r(cifar_dir):
    counts = []
    for seed in range(8):
        data = prepare_data(_paper(data_dir=str(cifar_dir), seed=seed))
        flipped = np.concatenate([data.train_flipped, data.val_flipped])
        assert data.train.y[data.train_flipped].size == 0 or np.all(
            data.train.y[data.train_flipped] != data.train_clean_labels[data.train_flipped]
        )
        counts.append(int(flipped.sum()))
    # independent flips: Binomial(1000, 0.4), sd 15.5; an exact count would always be 400
    assert len(set(counts)) > 1 and all(abs(c - 400) < 80 for c in counts)
    # the exact-count option stays available
    exact = prepare_data(_paper(data_dir=str(cifar_dir), exact_noise=True))
    assert int(exact.train_flipped.sum() + exact.val_flipped.sum()) == 400


def test_asymmetric_and_instance_noise_stay_exact_under_the_paper_protocol():
    assert _paper(noise="asymmetric:0.4").exact_noise is True
    assert _paper(noise="symmetric:0.4").exact_noise is False
    assert TrainConfig(dataset="cifar10", noise="symmetric:0.4").resolved().exact_noise is True
    with pytest.raises(OptionError, match="instance-dependent"):
        TrainConfig(dataset="cifar10", noise="instance:0.4", exact_noise=False)


def test_noisy_validation_split_is_10_percent_of_the_training_set(cifar_dir):
    data = prepare_data(_paper(data_dir=str(cifar_dir)))
    assert (len(data.train), len(data.val)) == (900, 100)
    assert 0 < data.val_flipped.mean() < 1  # validation labels are noisy too
    assert len(data.test) == 20


def test_paper_augmentation_pads_2_pixels_per_side_then_crops_and_flips(cifar_dir):
    from divweights_train.trainer_torch import _Tensors

    cfg = _paper(data_dir=str(cifar_dir))
    assert (cfg.augment, cfg.crop_pad) == ("crop-flip", 2)
    data = prepare_data(cfg)
    tensors = _Tensors(data, cfg.augment, torch.device("cpu"), cfg.crop_pad)
    # a single bright pixel at (16, 16) in every image: its shift is the crop offset
    tensors.x_train = torch.zeros_like(tensors.x_train)
    tensors.x_train[:, :, 16, 16] = 1.0
    gen = torch.Generator().manual_seed(0)
    x, _ = tensors.batch(torch.arange(256), gen)
    bright = (x[:, 0] == x[:, 0].amax(dim=(1, 2), keepdim=True)).nonzero()
    rows = bright[:, 1] - 16
    assert set(rows.tolist()) == {-2, -1, 0, 1, 2}
    # columns: 16 + d, or 31 - (16 + d) = 15 - d when flipped, with |d| <= 2
    assert set(bright[:, 2].tolist()) == set(range(13, 19))
    from divweights_train.jax_step import StepSpec  # noqa: F401 - the JAX spec reads the same option
    from divweights_train.models_jax import build_model as build_jax_model
    from divweights_train.runloop import run_method
    from divweights_train.trainer_jax import _step_spec

    spec = _step_spec(cfg, build_jax_model("mlp", (3, 32, 32), 10), data, run_method(cfg))
    assert (spec.crop_pad, spec.flip, spec.weight_decay) == (2, True, 0.0)


def test_the_example_stream_visits_every_example_once_per_pass():
    n = 7
    stream = stream_order(3, n, 0, 5 * n)
    for p in range(5):
        assert np.array_equal(stream[p * n : (p + 1) * n], epoch_permutation(3, p, n))
    assert np.array_equal(stream_order(3, n, 4, 12), stream[4:16])  # batches straddle passes


def test_eval_every_records_evaluates_and_drops_the_lr_by_steps(tmp_path):
    out = tmp_path / "run"
    args = [
        "--dataset", "two-moons", "--noise", "symmetric:0.3", "--subset", "40", "--batch-size", "16",
        "--method", "ce", "--eval-every", "3", "--epochs", "3", "--lr", "0.1", "--lr-milestone-steps", "2",
        "--threads", "1", "--quiet", "--no-plots", "--out", str(out),
    ]  # fmt: skip
    assert cli.main(args) == 0
    recs = read_metrics(out / "metrics.jsonl")
    assert [(r.epoch, r.step) for r in recs] == [(1, 3), (2, 6), (3, 9)]
    assert [r.lr for r in recs] == pytest.approx([0.1, 0.01, 0.01])
    summary = read_summary(out / "summary.json")
    best = int(np.argmax([r.val_acc for r in recs]))
    assert summary["test_at_best_val"] == recs[best].test_acc


# --------------------------------------------------------------------------- #
# The published PreAct ResNet-18.
# --------------------------------------------------------------------------- #
def test_published_model_has_bn_relu_after_the_stem():
    from divweights_train.models_torch import PaperPreActResNet18

    torch.manual_seed(0)
    model = PaperPreActResNet18(10).eval()
    model.stem_bn.running_mean.uniform_(-1, 1)
    x = torch.randn(2, 3, 32, 32)
    seen = {}
    model.stages.register_forward_hook(lambda m, inp, out: seen.update(input=inp[0]))
    model(x)
    assert torch.allclose(seen["input"], torch.relu(model.stem_bn(model.stem(x))))
    assert seen["input"].min() >= 0


def test_published_identity_shortcut_adds_the_pre_activated_input():
    from divweights_train.models_torch import PaperPreActBlock, PreActBlock

    torch.manual_seed(0)
    x = torch.randn(2, 64, 8, 8)
    ours, paper = PreActBlock(64, 64).eval(), PaperPreActBlock(64, 64).eval()
    for block in (ours, paper):
        torch.nn.init.zeros_(block.conv2.weight)  # the residual branch adds nothing
        block.bn1.running_mean.fill_(0.3)
    assert torch.allclose(paper(x), torch.relu(paper.bn1(x)))
    assert torch.allclose(ours(x), x)


def test_published_initialisation_he_normal_truncated_convolutions_and_dense_n_0_001():
    from divweights_train.models_torch import PaperPreActResNet18

    torch.manual_seed(0)
    model = PaperPreActResNet18(10)
    w = model.stages[3][0].conv2.weight  # 512 x 512 x 3 x 3
    std = math.sqrt(2 / (512 * 9))
    assert w.std().item() == pytest.approx(std, rel=0.02)
    assert w.abs().max().item() <= 2 * std / 0.87962566103423978 + 1e-6
    assert model.linear.weight.std().item() == pytest.approx(0.01, rel=0.1)
    assert torch.count_nonzero(model.linear.bias) == 0
    assert all(m.bias is None for m in model.modules() if isinstance(m, torch.nn.Conv2d))


def test_strided_convolutions_pad_as_tensorflow_same():
    from divweights_train.models_torch import PaperPreActBlock

    torch.manual_seed(0)
    block = PaperPreActBlock(64, 128, stride=2)
    x = torch.randn(1, 64, 32, 32)
    # 'same' with stride 2 on 32 pixels: no padding before, one after
    want = F.conv2d(F.pad(x, (0, 1, 0, 1)), block.conv1.weight, stride=2)
    assert torch.allclose(block.conv1(x), want, atol=1e-6)
    assert block.conv1(x).shape[-1] == 16


def _copy_torch_to_jax(model, params, state):
    """The torch model's weights in the JAX model's parameter tree."""

    def conv(t):
        return np.asarray(t.detach().permute(2, 3, 1, 0))

    def bn(module):
        p = {
            "scale": np.asarray(module.weight.detach()),
            "bias": np.asarray(module.bias.detach()),
        }
        s = {
            "mean": np.asarray(module.running_mean),
            "var": np.asarray(module.running_var),
        }
        return p, s

    new_p, new_s = dict(params), dict(state)
    new_p["stem"] = conv(model.stem.weight)
    new_p["stem_bn"], new_s["stem_bn"] = bn(model.stem_bn)
    for si, stage in enumerate(model.stages):
        for bi, block in enumerate(stage):
            name = f"s{si}b{bi}"
            p = {"conv1": conv(block.conv1.weight), "conv2": conv(block.conv2.weight)}
            p["bn1"], s1 = bn(block.bn1)
            p["bn2"], s2 = bn(block.bn2)
            if block.shortcut is not None:
                p["shortcut"] = conv(block.shortcut.weight)
            new_p[name], new_s[name] = p, {"bn1": s1, "bn2": s2}
    new_p["bn"], new_s["bn"] = bn(model.bn)
    new_p["fc"] = {
        "w": np.asarray(model.linear.weight.detach().T),
        "b": np.asarray(model.linear.bias.detach()),
    }
    return new_p, new_s


@pytest.mark.slow
def test_jax_published_model_matches_torch_with_copied_weights():
    jax = pytest.importorskip("jax")
    from divweights_train.models_jax import build_model as build_jax_model
    from divweights_train.models_torch import PaperPreActResNet18

    torch.manual_seed(0)
    model = PaperPreActResNet18(10)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    jmodel = build_jax_model("preact-resnet18-paper", (3, 32, 32), 10)
    params, state = _copy_torch_to_jax(model, *jmodel.init(jax.random.key(0)))
    x = np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32)
    for train in (False, True):
        model.train(train)
        with torch.no_grad():
            want = model(torch.from_numpy(x)).numpy()
        got, _ = jmodel.apply(params, state, x, train=train)
        np.testing.assert_allclose(np.asarray(got), want, rtol=2e-3, atol=2e-4)


@pytest.mark.slow
def test_jax_published_model_initialisation():
    jax = pytest.importorskip("jax")
    from divweights_train.models_jax import build_model as build_jax_model
    from divweights_train.models_jax import count_params
    from divweights_train.models_torch import PaperPreActResNet18

    jmodel = build_jax_model("preact-resnet18-paper", (3, 32, 32), 10)
    params, _ = jmodel.init(jax.random.key(0))
    w = np.asarray(params["s3b1"]["conv2"])
    std = math.sqrt(2 / (512 * 9))
    assert w.std() == pytest.approx(std, rel=0.02)
    assert np.abs(w).max() <= 2 * std / 0.87962566103423978 + 1e-6
    assert np.asarray(params["fc"]["w"]).std() == pytest.approx(0.01, rel=0.1)
    assert not np.any(np.asarray(params["fc"]["b"]))
    n_torch = sum(p.numel() for p in PaperPreActResNet18(10).parameters())
    assert count_params(params) == n_torch
