"""The run folder (``--out``): one writer at a time, never silently reused, checked before training."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("torch")

from divweights_train import cli
from divweights_train.config import TrainConfig
from divweights_train.metrics import read_metrics
from divweights_train.runfolder import LOCK_NAME, RunFolder
from divweights_train.trainer_torch import train
from train_helpers import MOONS, forbid_training, refused

OPTIONS = {
    "dataset": "two-moons",
    "noise": "symmetric:0.3",
    "threads": 1,
    "quiet": True,
    "subset": 200,
    "batch_size": 32,
    "epochs": 2,
    "method": "ciw",
    "plots": False,
}


@pytest.fixture
def no_training(monkeypatch):
    forbid_training(monkeypatch)


# --------------------------------------------------------------------------- #
# One writer.
# --------------------------------------------------------------------------- #
def test_second_writer_is_refused_while_another_process_holds_the_folder(tmp_path, capsys, no_training):
    out = tmp_path / "r"
    out.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import fcntl, os, sys, time
        fd = os.open({str(out / LOCK_NAME)!r}, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, str(os.getpid()).encode())
        print("locked", flush=True)
        time.sleep(60)
    """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        err = refused([*MOONS, "--out", str(out)], capsys)
    finally:
        holder.kill()
        holder.wait()
    assert f"in use by process {holder.pid}" in err
    assert not (out / "metrics.jsonl").exists()


def test_lock_is_released_when_the_run_ends_and_a_stale_lock_is_taken_over(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    (out / LOCK_NAME).write_text(dead.stdout)  # left by a process that is gone
    train(TrainConfig(out=str(out), **OPTIONS))
    with RunFolder.open(out, resume=True, overwrite=False) as folder:
        assert (folder.path / LOCK_NAME).read_text().strip() == str(os.getpid())


# --------------------------------------------------------------------------- #
# Never silently reused.
# --------------------------------------------------------------------------- #
def test_rerun_without_resume_is_refused_and_keeps_the_run(tmp_path, capsys):
    out = tmp_path / "r"
    assert cli.main([*MOONS, "--out", str(out)]) == 0
    before = (out / "metrics.jsonl").read_bytes(), (out / "checkpoint.pt").read_bytes()
    err = refused([*MOONS, "--epochs", "1", "--out", str(out)], capsys)
    assert "already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert (
        (out / "metrics.jsonl").read_bytes(),
        (out / "checkpoint.pt").read_bytes(),
    ) == before


def test_overwrite_deletes_the_previous_run_and_nothing_else(tmp_path):
    out = tmp_path / "r"
    train(TrainConfig(out=str(out), **OPTIONS))
    (out / "weights" / "epoch_009.npz").write_bytes(b"stale")
    (out / "notes.txt").write_text("mine")
    train(TrainConfig(out=str(out), overwrite=True, **{**OPTIONS, "epochs": 1}))
    assert [r.epoch for r in read_metrics(out / "metrics.jsonl")] == [1]
    assert sorted(p.name for p in (out / "weights").iterdir()) == ["epoch_001.npz"]
    assert (out / "notes.txt").read_text() == "mine"


def test_resume_and_overwrite_together_arerefused():
    with pytest.raises(ValueError, match="cannot be combined with resume"):
        TrainConfig(dataset="two-moons", resume=True, overwrite=True)


# --------------------------------------------------------------------------- #
# Checked before training.
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("where", ["is-a-file", "under-a-file"])
def test_out_that_is_a_file_or_under_a_file_is_a_usage_error(tmp_path, capsys, no_training, where):
    (tmp_path / "f").write_text("")
    out = tmp_path / "f" if where == "is-a-file" else tmp_path / "f" / "run"
    err = refused([*MOONS, "--out", str(out)], capsys)
    assert f"{tmp_path / 'f'}" in err and "choose another --out" in err


def test_empty_out_is_a_usage_error(capsys, no_training):
    assert "--out" in refused([*MOONS, "--out", ""], capsys)


def test_read_only_out_is_a_usage_error(tmp_path, capsys, no_training, monkeypatch):
    out = tmp_path / "r"
    out.mkdir()
    out.chmod(0o555)
    try:
        if os.geteuid() == 0:  # root writes anywhere: see the folder as the permission bits say
            monkeypatch.setattr(os, "access", lambda p, mode: not (mode & os.W_OK and Path(p) == out))
        err = refused([*MOONS, "--out", str(out)], capsys)
    finally:
        out.chmod(0o755)
    assert f"{out} is not writable" in err


@pytest.mark.parametrize("resume", [False, True])
def test_checkpoint_name_taken_by_a_folder_is_an_error_before_training(tmp_path, capsys, no_training, resume):
    out = tmp_path / "r"
    (out / "checkpoint.pt").mkdir(parents=True)
    err = refused([*MOONS, *(["--resume"] if resume else []), "--out", str(out)], capsys)
    assert f"{out / 'checkpoint.pt'} is not a file" in err


def test_leftover_temporaries_are_removed_on_resume(tmp_path):
    out = tmp_path / "r"
    train(TrainConfig(out=str(out), stop_after_epochs=1, **OPTIONS))
    leftovers = [
        out / "checkpoint.pt.x1y2.tmp",
        out / "metrics.jsonl.tmp",
        out / "weights" / "epoch_002.npz.ab.tmp",
    ]
    for p in leftovers:
        p.write_bytes(b"partial")
    (out / "mine.tmp").write_text("not the run's")
    train(TrainConfig(out=str(out), resume=True, **OPTIONS))
    assert not any(p.exists() for p in leftovers)
    assert (out / "mine.tmp").exists()


def test_checkpoint_gets_the_file_mode_of_the_other_outputs(tmp_path):
    out = tmp_path / "r"
    train(TrainConfig(out=str(out), **OPTIONS))
    modes = {
        p.name: stat.S_IMODE(p.stat().st_mode)
        for p in (
            out / "checkpoint.pt",
            out / "metrics.jsonl",
            out / "config.json",
            out / "weights" / "epoch_002.npz",
        )
    }
    probe = out / "probe"
    probe.write_text("")
    assert set(modes.values()) == {stat.S_IMODE(probe.stat().st_mode)}, modes
