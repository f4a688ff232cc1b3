"""End-to-end tests of the training program (``divweights-train``), kept small and fast."""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from divweights_train import cli  # noqa: E402
from divweights_train.config import TrainConfig  # noqa: E402
from _writers import write_cifar_like  # noqa: E402
from divweights_train.datasets import DEFAULT_FASHION_MNIST_DIR  # noqa: E402
from divweights_train.metrics import read_metrics  # noqa: E402

MOONS = ["--dataset", "two-moons", "--noise", "symmetric:0.3", "--threads", "1", "--quiet"]


def _run(args, out):
    assert cli.main([*args, "--out", str(out)]) == 0
    return [r.without_timing() for r in read_metrics(Path(out) / "metrics.jsonl")]


def _fashion_mnist_available() -> bool:
    return (DEFAULT_FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz").is_file() or (
        DEFAULT_FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte"
    ).is_file()


def test_two_moons_end_to_end_writes_metrics_checkpoint_and_plots(tmp_path):
    out = tmp_path / "moons"
    recs = _run([*MOONS, "--subset", "600", "--epochs", "2", "--method", "cicw", "--burnin-steps", "2",
                 "--anneal-steps", "2"], out)
    assert [r["epoch"] for r in recs] == [1, 2]
    for name in ("checkpoint.pt", "accuracy.png", "weights.png", "summary.json", "config.json"):
        assert (out / name).is_file(), name
    assert (out / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 0.0 <= recs[-1]["test_acc"] <= 1.0
    assert recs[-1]["reweighting"] is True
    assert 0.0 < recs[-1]["ess"] <= 1.0 and 0.0 <= recs[-1]["auroc"] <= 1.0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["completed"] is True and summary["epochs"] == 2
    with np.load(out / "weights" / "epoch_002.npz") as z:
        assert z["scaled_weights"].shape == z["flipped"].shape


def test_oracle_puts_zero_weight_exactly_on_the_flipped_examples(tmp_path):
    out = tmp_path / "oracle"
    recs = _run([*MOONS, "--subset", "600", "--epochs", "2", "--method", "oracle", "--no-plots"], out)
    assert all(r["reweighting"] and r["auroc"] == 1.0 and r["flipped_mass"] == 0.0 for r in recs)
    with np.load(out / "weights" / "epoch_002.npz") as z:
        seen = ~np.isnan(z["scaled_weights"])  # the last incomplete batch is dropped
        assert seen.sum() > 500
        assert np.all(z["scaled_weights"][z["flipped"] & seen] == 0.0)
        assert np.all(z["scaled_weights"][~z["flipped"] & seen] > 0.0)


@pytest.mark.skipif(not _fashion_mnist_available(), reason="Fashion-MNIST idx files not installed")
def test_fashion_mnist_two_epochs_cicw_m(tmp_path):
    out = tmp_path / "fmnist"
    recs = _run(["--dataset", "fashion-mnist", "--subset", "400", "--noise", "symmetric:0.6", "--method", "cicw-m",
                 "--model", "cnn", "--width", "4", "--epochs", "2", "--burnin-steps", "1", "--anneal-steps", "1",
                 "--threads", "1", "--quiet"], out)
    assert len(recs) == 2
    assert (out / "checkpoint.pt").is_file() and (out / "accuracy.png").is_file()
    data = json.loads((out / "data.json").read_text())
    assert data["num_train"] == 360 and data["num_test"] == 10000
    assert data["train_flip_rate"] == pytest.approx(0.6, abs=0.06)


@pytest.fixture(scope="module")
def moons_reference(tmp_path_factory):
    """Three uninterrupted epochs of CIW on two-moons (shared by the resume and determinism tests)."""
    args = [*MOONS, "--subset", "400", "--batch-size", "32", "--epochs", "3", "--method", "ciw",
            "--burnin-steps", "5", "--anneal-steps", "5", "--no-plots", "--no-save-weights"]
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


def test_resume_after_sigkill_mid_epoch_matches_uninterrupted(tmp_path):
    args = [*MOONS, "--subset", "3000", "--batch-size", "16", "--epochs", "3", "--method", "cicw",
            "--burnin-steps", "100", "--anneal-steps", "100", "--no-plots", "--no-save-weights"]
    reference = _run(args, tmp_path / "reference")
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "divweights_train.cli", *args, "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if metrics.is_file() and len(metrics.read_text().splitlines()) >= 1:
                break
            time.sleep(0.01)
        killed_mid_run = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    done = len(metrics.read_text().splitlines()) if metrics.is_file() else 0
    if killed_mid_run:
        assert done < 3
    resumed = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert [r.without_timing() for r in read_metrics(metrics)] == reference


@pytest.mark.parametrize("name, noise", [("cifar10", "asymmetric:0.4"), ("cifar100", "cifar100-next:0.4")])
def test_cifar_preact_resnet18_smoke(tmp_path, name, noise):
    write_cifar_like(tmp_path / "data", name, num_train=60, num_test=8, rng=0)
    out = tmp_path / name
    recs = _run(["--dataset", name, "--data-dir", str(tmp_path / "data"), "--noise", noise, "--method", "cicw-m",
                 "--batch-size", "8", "--max-steps", "2", "--eval-batch-size", "16", "--threads", "1", "--quiet",
                 "--burnin-steps", "1", "--anneal-steps", "0"], out)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"] == "preact-resnet18" and cfg["augment"] == "crop-flip"
    assert recs[-1]["step"] == 2
    assert (out / "checkpoint.pt").is_file()


def test_print_config_resolves_defaults(capsys):
    assert cli.main(["--dataset", "cifar10", "--epochs", "120", "--print-config"]) == 0
    cfg = TrainConfig.from_dict(json.loads(capsys.readouterr().out))
    assert cfg.model == "preact-resnet18" and cfg.lr == 0.1 and cfg.lr_milestones == (30, 80, 110)


def test_bad_options_exit_with_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--dataset", "two-moons", "--delta", "-1"])
    assert exc.value.code == 2
    assert "delta" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("divweights_train.trainer_jax") is not None,
                    reason="the JAX trainer is installed")
def test_framework_jax_without_trainer_is_a_clear_error(tmp_path, capsys):
    assert cli.main([*MOONS, "--framework", "jax", "--epochs", "1", "--out", str(tmp_path / "j")]) == 2
    assert "trainer_jax" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("divweights_train.trainer_jax") is None,
                    reason="the JAX trainer is not installed")
def test_framework_jax_dispatches_to_trainer_jax():
    import divweights_train.trainer_jax as tj

    assert cli.get_trainer("jax") is tj.train
