"""A full disk stops a run with one line naming the file and the folder; nothing written before is lost.

The disk is simulated (no root, no tmpfs): the modules that write the run's
files (:mod:`divweights_train.checkpoint` for every atomic write, and the
metrics writer's append) see a file system that, from the ``nth`` write of one
file on, takes only a few more bytes and then fails with ``ENOSPC`` -- as a
real full disk does, possibly in the middle of a write (``torch.save`` then
reports it as a RuntimeError). Each case checks that the program exits with
status 1 and one line naming the file, the folder and the epoch of the
checkpoint that survived; that every file the folder held when the disk
filled is unchanged and no temporary file is left; and that, once there is
space again, ``--resume`` ends exactly as an uninterrupted run.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("torch")

from _runs import differences, folder_bytes, run_state
from divweights_train import checkpoint, cli, metrics
from train_helpers import MOONS

pytestmark = pytest.mark.reliability


class _Module:
    """A stand-in for a module: ``overrides`` first, everything else from ``module``."""

    def __init__(self, module, **overrides):
        self._module = module
        self.__dict__.update(overrides)

    def __getattr__(self, name):
        return getattr(self._module, name)


class _File:
    """A file object whose writes draw on the bytes left on a :class:`FillingDisk`."""

    def __init__(self, fh, disk: FillingDisk):
        self._fh, self._disk = fh, disk

    def write(self, data):
        self._disk.take(len(data))
        return self._fh.write(data)

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._fh.__exit__(*exc)


class FillingDisk:
    """The run folder ``out`` on a disk that fills up when the ``nth`` write of a file whose name starts
    with ``name`` starts: from then on only ``room`` more bytes fit, and ``folder`` records what the
    folder held at that moment."""

    def __init__(self, out: Path, name: str, nth: int, room: int = 100):
        self.out, self.name, self.nth, self.room = out, name, nth, room
        self.starts, self.left, self.folder = 0, None, None

    def take(self, n: int) -> None:
        if self.left is not None:
            if n > self.left:
                self.left = 0
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.left -= n

    def _starting(self, name: str) -> None:
        if name.startswith(self.name):
            self.starts += 1
            if self.starts == self.nth:
                self.folder = folder_bytes(self.out)
                self.left = self.room

    def mkstemp(self, *, prefix: str, **kwargs):
        """Every atomic write starts here; ``prefix`` is its file's name and a dot."""
        self._starting(prefix[:-1])
        return tempfile.mkstemp(prefix=prefix, **kwargs)

    def fdopen(self, fd, *args, **kwargs):
        return _File(os.fdopen(fd, *args, **kwargs), self)

    def open(self, path, mode="r", *args, **kwargs):
        """The metrics writer appends a line with ``open(path, "a")``."""
        if "a" not in mode:
            return open(path, mode, *args, **kwargs)
        self._starting(Path(path).name)
        return _File(open(path, mode, *args, **kwargs), self)

    def install(self, monkeypatch) -> None:
        mkstemp, fdopen = (
            _Module(tempfile, mkstemp=self.mkstemp),
            _Module(os, fdopen=self.fdopen),
        )
        monkeypatch.setattr(checkpoint, "tempfile", mkstemp)
        monkeypatch.setattr(checkpoint, "os", fdopen)
        monkeypatch.setattr(metrics, "open", self.open, raising=False)


#: Two epochs with weight files (``MOONS`` with the weights saved; no plots).
ARGS = MOONS


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full-disk") / "reference"
    assert cli.main([*ARGS, "--out", str(out)]) == 0
    return run_state(out)


#: (file, which of its writes fills the disk, epoch of the checkpoint that survives).
#: metrics.jsonl: its 3rd write is epoch 2's line (after the rewrite at the start and epoch 1's).
FULL_AT = [
    pytest.param("config.json", 1, None, id="config-before-the-first-epoch"),
    pytest.param("epoch_002.npz", 1, 1, id="weight-file-of-epoch-2"),
    pytest.param("checkpoint.pt", 2, 1, id="checkpoint-of-epoch-2-mid-write"),
    pytest.param("metrics.jsonl", 3, 2, id="metrics-line-of-epoch-2"),
    pytest.param("summary.json", 1, 2, id="summary-at-the-end"),
]


@pytest.mark.parametrize("name, nth, survivor", FULL_AT)
def test_full_disk_is_one_line_and_keeps_the_last_checkpoint(
    tmp_path, capsys, monkeypatch, uninterrupted, name, nth, survivor
):
    out = tmp_path / "run"
    disk = FillingDisk(out, name, nth)
    with monkeypatch.context() as patch:
        disk.install(patch)
        capsys.readouterr()
        assert cli.main([*ARGS, "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert disk.folder is not None, f"no write of {name} number {nth}"
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"cannot write {out}" in err and name in err and "No space left on device" in err
    assert f"the run in {out} stopped" in err and "--resume" in err
    if survivor is None:
        assert "no epoch had been checkpointed yet" in err
    else:
        assert f"its checkpoint of epoch {survivor} is intact" in err
    # Nothing changed, nothing half-written, no temporary file left:
    assert folder_bytes(out) == disk.folder
    assert cli.main([*ARGS, "--resume", "--out", str(out)]) == 0  # space again
    assert differences(run_state(out), uninterrupted) == []


def test_full_disk_before_the_checkpoint_is_read_says_it_is_intact(tmp_path, capsys, monkeypatch):
    """Resuming, the scores of instance-dependent noise are computed and cached before the checkpoint is read."""
    out, cache = tmp_path / "run", tmp_path / "cache"
    args = [
        *ARGS,
        "--noise",
        "instance:0.3",
        "--cache-dir",
        str(cache),
        "--out",
        str(out),
    ]
    assert cli.main([*args, "--stop-after-epochs", "1"]) == 0
    shutil.rmtree(cache)
    disk = FillingDisk(out, "confusion-", 1)
    disk.install(monkeypatch)
    capsys.readouterr()
    assert cli.main([*args, "--resume"]) == 1
    err = capsys.readouterr().err.strip()
    assert f"cannot write {cache}" in err and "its checkpoint checkpoint.pt is intact" in err
    assert folder_bytes(out) == disk.folder


def test_atomic_write_names_the_file_when_torch_save_hides_the_full_disk(tmp_path, monkeypatch):
    """torch.save reports a failed write as a RuntimeError (the OSError only as its context)."""
    torch = pytest.importorskip("torch")
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"previous")
    disk = FillingDisk(tmp_path, path.name, 1, room=1000)
    disk.install(monkeypatch)
    with pytest.raises(OSError) as info:
        checkpoint.save_torch(path, {"w": torch.zeros(10_000)})
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert path.read_bytes() == b"previous" and sorted(os.listdir(tmp_path)) == [path.name]
