"""Kill -9 and resume: a run killed at random moments and resumed ends as if it had never stopped.

A two-moons run of ``divweights-train`` is started in a subprocess, killed with
SIGKILL at a random moment after it has opened its output folder (mid-epoch,
between epochs or in the middle of a write), started again with ``--resume``,
killed again, and so on; the last start runs to the end. Its metrics (less the
timings), its weight files and its final checkpoint (model, optimiser, loss
state and random streams) must equal, bit for bit, those of a run that was
never interrupted (:func:`_runs.run_state`).

The default test kills twice; ``@pytest.mark.slow`` ones kill more often, with
the mixup method, with the JAX trainer, and right when a file is being
written. (This replaces the single mid-epoch kill of tests/test_train_cli.py,
which compared the metrics only.)
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")

from _runs import differences, run_state
from divweights_train import cli
from divweights_train.runfolder import LOCK_NAME
from train_helpers import MOONS, MOONS_JAX

pytestmark = pytest.mark.reliability

#: Three epochs of about 60 steps (a second or two on one thread): kills land mid-epoch and between epochs.
_RUN = "--subset 1000 --batch-size 16 --epochs 3 --method cicw --burnin-steps 20 --anneal-steps 20"
ARGS = [*MOONS, *_RUN.split()]
#: The same with weighted mixup (more random streams to restore: partners and ratios).
MIXUP_ARGS = [*ARGS, "--method", "cicw-m"]
#: The same with JAX.
JAX_ARGS = [*MOONS_JAX, *_RUN.split()]


def _reference(args: list[str], out: Path) -> tuple[dict[str, bytes], float]:
    """The uninterrupted run's state and how long it took (in this process: no start-up time)."""
    t0 = time.perf_counter()
    assert cli.main([*args, "--out", str(out)]) == 0
    return run_state(out), time.perf_counter() - t0


def _start(args: list[str], out: Path) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "divweights_train.cli",
        *args,
        "--resume",
        "--out",
        str(out),
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_until_open(proc: subprocess.Popen, out: Path, timeout: float = 120) -> bool:
    """Wait until ``proc`` holds the run folder's lock (imports done, training about to start); False if it ended."""
    lock, deadline = out / LOCK_NAME, time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if lock.is_file() and lock.read_text().strip() == str(proc.pid):
            return True
        time.sleep(0.005)
    return proc.poll() is None


def _kill(proc: subprocess.Popen) -> bool:
    """SIGKILL ``proc``; True if it was still running (the kill interrupted it)."""
    running = proc.poll() is None
    proc.kill()
    proc.wait(timeout=30)
    return running


def _finish(args: list[str], out: Path) -> None:
    proc = _start(args, out)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()


def kill_at_random_times(args: list[str], out: Path, kills: int, span: float, seed: int) -> int:
    """Start, kill after a random delay in ``[0, span)`` seconds of training, resume; ``kills`` times, then finish.

    Returns how many kills interrupted a running process (a start may end before its kill).
    """
    delays = random.Random(seed)
    hits = 0
    for _ in range(kills):
        proc = _start(args, out)
        if _wait_until_open(proc, out):
            time.sleep(delays.uniform(0, span))
        hits += _kill(proc)
    _finish(args, out)
    return hits


def kill_during_writes(args: list[str], out: Path, kills: int) -> int:
    """Start and kill as soon as a temporary file of an atomic write appears (a write in flight), ``kills``
    times, then finish; returns how many kills landed while such a file existed."""
    caught = 0
    for _ in range(kills):
        proc = _start(args, out)
        _wait_until_open(proc, out)
        while proc.poll() is None and not any(out.rglob("*.tmp")):
            pass  # busy: a write lasts milliseconds
        caught += _kill(proc) and any(out.rglob("*.tmp"))
    _finish(args, out)
    return caught


def test_killed_twice_at_random_times_ends_bit_identical(tmp_path):
    expected, span = _reference(ARGS, tmp_path / "reference")
    hits = kill_at_random_times(ARGS, tmp_path / "killed", kills=2, span=0.8 * span, seed=0)
    assert hits >= 1  # the first start is killed before it can finish its three epochs
    assert differences(run_state(tmp_path / "killed"), expected) == []


@pytest.mark.slow
@pytest.mark.parametrize("args, seed", [(ARGS, 1), (MIXUP_ARGS, 2)], ids=["cicw", "cicw-m"])
def test_killed_many_times_ends_bit_identical(tmp_path, args, seed):
    expected, span = _reference(args, tmp_path / "reference")
    hits = kill_at_random_times(args, tmp_path / "killed", kills=6, span=span / 2, seed=seed)
    assert hits >= 3
    assert differences(run_state(tmp_path / "killed"), expected) == []


@pytest.mark.slow
def test_jax_run_killed_at_random_times_ends_bit_identical(tmp_path):
    pytest.importorskip("jax")
    expected, span = _reference(JAX_ARGS, tmp_path / "reference")
    hits = kill_at_random_times(JAX_ARGS, tmp_path / "killed", kills=3, span=span / 2, seed=3)
    assert hits >= 1
    assert differences(run_state(tmp_path / "killed"), expected) == []


@pytest.mark.slow
def test_killed_while_writing_ends_bit_identical(tmp_path):
    expected, _ = _reference(ARGS, tmp_path / "reference")
    assert kill_during_writes(ARGS, tmp_path / "killed", kills=4) >= 1
    assert differences(run_state(tmp_path / "killed"), expected) == []
