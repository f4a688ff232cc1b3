"""End-to-end tests of the training program (``divweights-train``), kept small and fast."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _writers import write_cifar_like
from divweights_train import cli
from divweights_train.config import TrainConfig
from divweights_train.datasets import DEFAULT_FASHION_MNIST_DIR
from divweights_train.metrics import read_metrics


def _options(text: str) -> list[str]:
    """Command-line options written as one string."""
    return text.split()


MOONS = _options("--dataset two-moons --noise symmetric:0.3 --threads 1 --quiet")


def _run(args, out):
    assert cli.main([*args, "--out", str(out)]) == 0
    return [r.without_timing() for r in read_metrics(Path(out) / "metrics.jsonl")]


def _fashion_mnist_available() -> bool:
    return (DEFAULT_FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz").is_file() or (
        DEFAULT_FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte"
    ).is_file()


def test_two_moons_end_to_end_writes_metrics_checkpoint_and_plots(tmp_path):
    out = tmp_path / "moons"
    options = "--subset 600 --epochs 2 --method cicw --burnin-steps 2 --anneal-steps 2"
    recs = _run([*MOONS, *_options(options)], out)
    assert [r["epoch"] for r in recs] == [1, 2]
    for name in (
        "checkpoint.pt",
        "accuracy.png",
        "weights.png",
        "summary.json",
        "config.json",
    ):
        assert (out / name).is_file(), name
    assert (out / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 0.0 <= recs[-1]["test_acc"] <= 1.0
    assert recs[-1]["reweighting"] is True
    assert 0.0 < recs[-1]["ess"] <= 1.0 and 0.0 <= recs[-1]["auroc"] <= 1.0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["completed"] is True and summary["epochs"] == 2
    with np.load(out / "weights" / "epoch_002.npz", allow_pickle=False) as z:
        assert z["scaled_weights"].shape == z["flipped"].shape


def test_oracle_puts_zero_weight_exactly_on_the_flipped_examples(tmp_path):
    out = tmp_path / "oracle"
    recs = _run([*MOONS, *_options("--subset 600 --epochs 2 --method oracle --no-plots")], out)
    assert all(r["reweighting"] and r["auroc"] == 1.0 and r["flipped_mass"] == 0.0 for r in recs)
    with np.load(out / "weights" / "epoch_002.npz", allow_pickle=False) as z:
        seen = ~np.isnan(z["scaled_weights"])  # the last incomplete batch is dropped
        assert seen.sum() > 500
        assert np.all(z["scaled_weights"][z["flipped"] & seen] == 0.0)
        assert np.all(z["scaled_weights"][~z["flipped"] & seen] > 0.0)


@pytest.mark.skipif(not _fashion_mnist_available(), reason="Fashion-MNIST idx files not installed")
def test_fashion_mnist_two_epochs_cicw_m(tmp_path):
    out = tmp_path / "fmnist"
    options = (
        "--dataset fashion-mnist --subset 400 --noise symmetric:0.6 --method cicw-m --model cnn "
        "--width 4 --epochs 2 --burnin-steps 1 --anneal-steps 1 --threads 1 --quiet"
    )
    recs = _run(_options(options), out)
    assert len(recs) == 2
    assert (out / "checkpoint.pt").is_file() and (out / "accuracy.png").is_file()
    data = json.loads((out / "data.json").read_text())
    assert data["num_train"] == 360 and data["num_test"] == 10000
    assert data["train_flip_rate"] == pytest.approx(0.6, abs=0.06)


@pytest.fixture(scope="module")
def moons_reference(tmp_path_factory):
    """Three uninterrupted epochs of CIW on two-moons (shared by the resume and determinism tests)."""
    options = (
        "--subset 400 --batch-size 32 --epochs 3 --method ciw --burnin-steps 5 --anneal-steps 5 "
        "--no-plots --no-save-weights"
    )
    args = [*MOONS, *_options(options)]
    out = tmp_path_factory.mktemp("ref")
    return args, _run(args, out)


def test_resume_after_stop_matches_uninterrupted(moons_reference, tmp_path):
    args, reference = moons_reference
    out = tmp_path / "resumed"
    first = _run([*args, "--stop-after-epochs", "1"], out)
    assert len(first) == 1
    resumed = _run([*args, "--resume"], out)
    assert resumed == reference


def test_resume_refuses_different_options(moons_reference, tmp_path):
    args, _ = moons_reference
    out = tmp_path / "run"
    _run([*args, "--stop-after-epochs", "1"], out)
    assert cli.main([*args, "--resume", "--lr", "0.3", "--out", str(out)]) == 2


def test_same_seed_same_metrics_different_seed_differs(moons_reference, tmp_path):
    args, reference = moons_reference
    assert _run(args, tmp_path / "again") == reference
    other = _run([*args, "--seed", "1"], tmp_path / "other")
    assert other != reference


@pytest.mark.parametrize("name, noise", [("cifar10", "asymmetric:0.4"), ("cifar100", "cifar100-next:0.4")])
def test_cifar_preact_resnet18_smoke(tmp_path, name, noise):
    write_cifar_like(tmp_path / "data", name, num_train=60, num_test=8, rng=0)
    out = tmp_path / name
    options = (
        "--method cicw-m --batch-size 8 --max-steps 2 --eval-batch-size 16 --threads 1 --quiet "
        "--burnin-steps 1 --anneal-steps 0"
    )
    data = ["--dataset", name, "--data-dir", str(tmp_path / "data"), "--noise", noise]
    recs = _run([*data, *_options(options)], out)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"] == "preact-resnet18" and cfg["augment"] == "crop-flip"
    assert recs[-1]["step"] == 2
    assert (out / "checkpoint.pt").is_file()


def test_print_config_resolves_defaults(capsys):
    assert cli.main(["--dataset", "cifar10", "--epochs", "120", "--print-config"]) == 0
    cfg = TrainConfig.from_dict(json.loads(capsys.readouterr().out))
    assert cfg.model == "preact-resnet18" and cfg.lr == 0.1 and cfg.lr_milestones == (30, 80, 110)


def test_bad_options_exit_with_usage_error(capsys):
    assert cli.main(["--dataset", "two-moons", "--delta", "-1"]) == 2
    assert "--delta" in capsys.readouterr().err


# --------------------------------------------------------------------------- #
# Option checks before anything runs (issue 14 items 6, 8, 15, 17; issue 15 items 6, 7).
# --------------------------------------------------------------------------- #
def _usage_error(capsys, args) -> str:
    """Run the CLI with ``--print-config`` (nothing is trained); return its one-line error."""
    status = cli.main(["--dataset", "two-moons", "--noise", "symmetric:0.3", *args, "--print-config"])
    captured = capsys.readouterr()
    assert status == 2, captured.out
    err = captured.err.strip()
    assert err.startswith("divweights-train: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


#: Values out of range or malformed, as ``--option value`` (the error names the option).
# fmt: off
BAD_VALUES = [
    "--warmup-epochs inf", "--weight-decay nan", "--seed 4294967296", "--seed -1", "--burnin-epochs inf",
    "--anneal-epochs inf", "--divergence alpha:1e308", "--lr 1e308", "--lr inf", "--lr nan", "--out=",
    "--momentum nan", "--mixup-power inf --method cicw-m", "--gamma nan --method cicw",
    "--delta inf --method ciw", "--epochs 0", "--width 0", "--threads 0", "--device gpu",
    "--lr-milestones 5,3", "--lr abc",
]
# fmt: on


@pytest.mark.parametrize("args", BAD_VALUES)
def test_bad_values_are_one_line_usage_errors_naming_the_option(capsys, args):
    err = _usage_error(capsys, _options(args))
    flag = args.split()[0].split("=")[0]
    assert f"argument {flag}" in err


def test_every_numeric_option_of_the_parser_has_a_checked_range_shown_in_help():
    from divweights_train.config import NUMERIC_OPTIONS

    parser = cli.build_parser()
    numeric = {a.dest: a for a in parser._actions if a.type in (int, float) or hasattr(a.type, "words")}
    assert set(numeric) == set(NUMERIC_OPTIONS)
    for name, action in numeric.items():
        assert f"valid: {NUMERIC_OPTIONS[name].short()}" in " ".join(action.help.split()), name


def test_non_finite_values_of_every_float_option_are_refused_by_the_cli(capsys):
    from divweights_train.config import NUMERIC_OPTIONS

    for name, rng in NUMERIC_OPTIONS.items():
        if rng.integer:
            continue
        flag = cli.option_flag(name).split("/")[0]
        method = ["--method", "cicw-m"] if name.startswith("mixup") or name == "class_gamma" else ["--method", "ciw"]
        if name in ("temperature", "lam"):
            method = ["--method", "ciw"]
        for value in ("nan", "inf", "-inf"):
            err = _usage_error(capsys, [*method, f"{flag}={value}"])
            assert f"argument {flag}" in err and "finite" in err, err


def test_seeds_that_would_alias_are_refused_and_the_largest_32_bit_seed_runs(capsys):
    _usage_error(capsys, ["--seed", str(2**32)])
    assert cli.main(["--dataset", "two-moons", "--seed", str(2**32 - 1), "--print-config"]) == 0


def test_empty_out_is_an_error_not_the_default_folder(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = _usage_error(capsys, ["--out", ""])
    assert "argument --out: must not be empty" in err
    assert not (tmp_path / "runs").exists()


def test_device_cuda_without_cuda_is_a_one_line_error(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    status = cli.main([*MOONS, "--epochs", "1", "--device", "cuda", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert err.startswith("divweights-train: error: argument --device: cuda was requested") and "\n" not in err
    assert "--device cpu" in err
    assert not (tmp_path / "run").exists()  # refused before anything ran


def test_device_index_beyond_the_gpus_is_a_one_line_error(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    status = cli.main([*MOONS, "--epochs", "1", "--device", "cuda:1", "--out", str(tmp_path / "run")])
    assert status == 2
    assert "only 1 GPU(s)" in capsys.readouterr().err


def test_device_cuda_without_a_jax_gpu_backend_is_a_one_line_error(capsys, monkeypatch, tmp_path):
    jax = pytest.importorskip("jax")

    def no_gpu(backend=None):
        raise RuntimeError("Unknown backend gpu")

    monkeypatch.setattr(jax, "devices", no_gpu)
    options = _options("--framework jax --dataset two-moons --epochs 1 --quiet --device cuda")
    status = cli.main([*options, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert status == 2 and "argument --device" in err and "JAX has no GPU backend" in err and "\n" not in err


def test_diverging_training_is_a_one_line_error_naming_the_learning_rate(capsys, monkeypatch, tmp_path):
    def diverge(config):
        raise FloatingPointError("non-finite training loss in epoch 1 (step 3)")

    monkeypatch.setattr(cli, "get_trainer", lambda framework: diverge)
    assert cli.main([*MOONS, "--lr", "5", "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("divweights-train: error: training diverged") and "--lr (now 5)" in err


#: Options that have no effect with the others: the options, the flag refused, words of the reason.
# fmt: off
WITHOUT_EFFECT = [
    ("--method ce --class-divergence tv", "--class-divergence", "has no class weights"),
    ("--method ce --delta 0.5", "--delta", "has no instance weights"),
    ("--method mixup --burnin-steps 3", "--burnin-steps", "does not reweight"),
    ("--method ciw --mixup-alpha 0.3", "--mixup-alpha", "does no mixup"),
    ("--method ciw-m --mixup-power 2", "--mixup-power", "random permutation"),
    ("--method bootstrap --anneal-steps 5", "--anneal-steps", "not annealed"),
    ("--method oracle --gamma 0.1", "--gamma/--class-gamma", "has no class weights"),
    ("--augment crop", "--augment", "not images"),
    ("--framework jax --threads 2", "--threads", "XLA"),
]
# fmt: on


@pytest.mark.parametrize("args, flag, why", WITHOUT_EFFECT)
def test_options_without_effect_are_refused_with_the_reason(capsys, args, flag, why):
    err = _usage_error(capsys, _options(args))
    assert f"argument {flag}: has no effect" in err and why in err and "leave it out" in err


def test_several_options_without_effect_are_all_named(capsys):
    err = _usage_error(capsys, _options("--method ce --class-divergence tv --gamma 0.2 --delta 1"))
    assert ": has no effect with --method ce" in err and "(also: " in err
    assert all(flag in err for flag in ("--class-divergence", "--gamma/--class-gamma", "--delta"))


def _records(tmp_path, name, **options):
    from divweights_train.trainer_torch import train

    base = {
        "dataset": "two-moons",
        "noise": "symmetric:0.3",
        "subset": 240,
        "batch_size": 32,
        "epochs": 2,
        "threads": 1,
        "quiet": True,
        "plots": False,
        "save_weights": False,
        "burnin_steps": 2,
    }
    cfg = TrainConfig(**{**base, **options, "out": str(tmp_path / name)})
    return [r.without_timing() for r in train(cfg, progress=False, log=lambda s: None).records], cfg


@pytest.mark.parametrize(
    "method, option, value, effective",
    [
        ("ce", "class_divergence", "tv", False),
        ("bootstrap", "anneal_steps", 5, False),
        ("cicw-m", "mixup_alpha", 0.3, True),  # the weighted Beta ratio's concentration
        ("ciw-m", "mixup_power", 3.0, False),
        ("cicw-m", "mixup_power", 3.0, True),
        ("ciw-m", "mixup_alpha", 0.3, True),
        ("cicw", "class_divergence", "tv", True),
    ],
)
def test_options_refused_as_without_effect_really_change_nothing(tmp_path, method, option, value, effective):
    """The refusal table matches the trainer: the same run with and without the option."""
    from divweights_train.config import unused_options

    base, _ = _records(tmp_path, "base", method=method)
    other, cfg = _records(tmp_path, "other", method=method, **{option: value})
    assert (base != other) == effective
    assert (unused_options(cfg, [option]) == []) == effective


@pytest.mark.skipif(
    importlib.util.find_spec("divweights_train.trainer_jax") is not None,
    reason="the JAX trainer is installed",
)
def test_framework_jax_without_trainer_is_a_clear_error(tmp_path, capsys):
    options = ["--framework", "jax", "--epochs", "1", "--out", str(tmp_path / "j")]
    assert cli.main([*MOONS, *options]) == 2
    assert "trainer_jax" in capsys.readouterr().err


@pytest.mark.skipif(
    importlib.util.find_spec("divweights_train.trainer_jax") is None,
    reason="the JAX trainer is not installed",
)
def test_framework_jax_dispatches_to_trainer_jax():
    import divweights_train.trainer_jax as tj

    assert cli.get_trainer("jax") is tj.train


def test_the_help_of_delta_and_gamma_states_each_methods_resolved_default():
    """The help named 'auto' the default of every instance-weighting method while only ciw has it."""
    helps = {
        a.dest: " ".join(a.help.split()) for a in cli.build_parser()._actions if a.dest in ("delta", "class_gamma")
    }
    res = {
        m: TrainConfig(dataset="two-moons", method=m).resolved()
        for m in ("ciw", "cicw", "ciw-m", "cicw-m", "bootstrap")
    }
    assert res["ciw"].delta == "auto" and "'auto' (the default of ciw:" in helps["delta"]
    assert res["cicw"].delta == res["ciw-m"].delta == 0.1  # 'noise' without --noise
    assert "'noise' (the default of cicw and ciw-m:" in helps["delta"] and "so 0.1 without --noise" in helps["delta"]
    assert res["cicw-m"].delta == 0.1 and "cicw-m: 0.1" in helps["delta"]
    assert res["cicw"].class_gamma == res["cicw-m"].class_gamma == 0.3 and res["bootstrap"].class_gamma == 0.2
    assert "default 0.3 for cicw and cicw-m, 0.2 for bootstrap" in helps["class_gamma"]
