"""Loading a run folder never executes code from it; damaged checkpoints are clear errors before training."""

from __future__ import annotations

import json
import math
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from divweights_train import cli
from divweights_train.metrics import read_summary
from train_helpers import MOONS as MOONS_RUN
from train_helpers import MOONS_JAX, forbid_training, refused

MOONS = [*MOONS_RUN, "--no-save-weights"]
JAX = [*MOONS_JAX, "--no-save-weights"]


class _Payload:
    """Unpickling this object runs ``touch MARKER``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def no_training(monkeypatch):
    forbid_training(monkeypatch)


def _stopped_run(out: Path, *args: str) -> None:
    """One epoch of a two-epoch run (``args``: the CLI options, default :data:`MOONS`)."""
    args = args or MOONS
    assert cli.main([*args, "--stop-after-epochs", "1", "--out", str(out)]) == 0


def test_torch_checkpoint_loads_with_weights_only(tmp_path):
    _stopped_run(tmp_path / "r")
    payload = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)
    assert json.loads(payload["meta"])["epoch"] == 1
    assert set(payload["state"]) == {"model", "optimizer", "loss", "rng"}


def test_crafted_torch_checkpoint_is_refused_and_runs_nothing(tmp_path, capsys, no_training):
    out, marker = tmp_path / "r", tmp_path / "PWNED"
    out.mkdir()
    torch.save({"format": _Payload(marker)}, out / "checkpoint.pt")
    err = refused([*MOONS, "--resume", "--out", str(out)], capsys)
    assert not marker.exists()
    assert "checkpoint.pt was not loaded" in err and "could run code" in err and "posix.system" in err


def test_checkpoint_of_the_pickled_format_isrefused(tmp_path, capsys, monkeypatch):
    out = tmp_path / "r"
    _stopped_run(out)
    forbid_training(monkeypatch)
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    legacy = {**json.loads(state["meta"]), **state["state"], "format": 1}
    legacy["rng"]["numpy"] = np.random.get_state()  # what format 1 stored: a pickled NumPy state
    torch.save(legacy, out / "checkpoint.pt")
    err = refused([*MOONS, "--resume", "--out", str(out)], capsys)
    assert "before checkpoint format 2" in err and "--overwrite" in err


def test_crafted_jax_pickle_checkpoint_is_refused_and_runs_nothing(tmp_path, capsys, no_training):
    out, marker = tmp_path / "r", tmp_path / "PWNED"
    out.mkdir()
    (out / "checkpoint_jax.pkl").write_bytes(pickle.dumps({"format": _Payload(marker)}, protocol=4))
    err = refused([*JAX, "--resume", "--out", str(out)], capsys)
    assert not marker.exists()
    assert "checkpoint_jax.pkl was not loaded" in err and "pickle" in err


@pytest.mark.parametrize("how", ["object-array", "pickle-named-npz"])
def test_crafted_jax_npz_checkpoint_is_refused_and_runs_nothing(tmp_path, capsys, no_training, how):
    out, marker = tmp_path / "r", tmp_path / "PWNED"
    out.mkdir()
    path = out / "checkpoint_jax.npz"
    if how == "object-array":
        with open(path, "wb") as fh:
            np.savez(fh, meta=np.array([_Payload(marker)], dtype=object))
    else:
        path.write_bytes(pickle.dumps(_Payload(marker)))
    err = refused([*JAX, "--resume", "--out", str(out)], capsys)
    assert not marker.exists()
    assert "checkpoint_jax.npz was not loaded" in err and "could run code" in err


def test_jax_checkpoint_is_npz_and_json(tmp_path):
    jax = pytest.importorskip("jax")  # noqa: F841
    _stopped_run(tmp_path / "r", *JAX, "--temperature", "1.0")
    with np.load(tmp_path / "r" / "checkpoint_jax.npz", allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        assert not any(z[k].dtype.hasobject for k in z.files)
    assert meta["framework"] == "jax" and meta["epoch"] == 1 and meta["format"] == 2


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_damaged_checkpoint_is_a_one_line_error_before_training(tmp_path, capsys, damage, monkeypatch):
    out = tmp_path / "r"
    _stopped_run(out)
    ckpt = out / "checkpoint.pt"
    data = ckpt.read_bytes()
    ckpt.write_bytes(
        {
            "empty": b"",
            "truncated": data[: len(data) // 2],
            "garbage": b"not a checkpoint" * 10,
        }[damage]
    )
    forbid_training(monkeypatch)
    err = refused([*MOONS, "--resume", "--out", str(out)], capsys)
    assert str(ckpt) in err and "--overwrite" in err


def test_summary_and_data_json_are_standard_json(tmp_path):
    out = tmp_path / "r"
    assert cli.main([*MOONS, "--noise", "none", "--val-fraction", "0", "--out", str(out)]) == 0

    def reject(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    for name in ("summary.json", "data.json", "config.json"):
        json.loads((out / name).read_text(), parse_constant=reject)
    summary = read_summary(out / "summary.json")
    assert math.isnan(summary["best_val_acc"]) and math.isnan(summary["final_auroc"])  # no val split, no noise
    assert summary["completed"] is True
