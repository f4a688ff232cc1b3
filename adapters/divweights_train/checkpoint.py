"""Atomic checkpoint files.

A checkpoint is written to a temporary file in the same folder, flushed and
fsync'ed, then moved over the old one with :func:`os.replace`, so a run killed
at any moment (even ``kill -9`` in the middle of a write) leaves either the
previous checkpoint or the new one, never a truncated file.

:func:`atomic_write` is framework-neutral (it takes a function that writes to
a binary file object); :func:`save_torch` and :func:`load_torch` use it for
``torch.save``/``torch.load``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["CHECKPOINT_NAME", "atomic_write", "load_torch", "save_torch", "write_run_description"]

#: File name of a run's checkpoint inside its output folder.
CHECKPOINT_NAME = "checkpoint.pt"


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Write a file atomically: ``write(fh)`` fills a temporary file that replaces ``path``.

    Parameters
    ----------
    path : str or path-like
        Destination; its folder must exist.
    write : callable
        Called with a binary file object open for writing.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = atomic_write(os.path.join(d, "x.bin"), lambda fh: fh.write(b"abc"))
    ...     print(p.read_bytes(), sorted(os.listdir(d)))
    b'abc' ['x.bin']
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename durable too
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # pragma: no cover - some file systems refuse directory fsync
        pass
    return path


def save_epoch_weights(out: str | os.PathLike, epoch: int, arrays: dict) -> Path:
    """Write one epoch's per-example weights (``WeightStats.arrays()``) to
    ``OUT/weights/epoch_NNN.npz`` atomically."""
    import numpy as np

    wdir = Path(out) / "weights"
    wdir.mkdir(parents=True, exist_ok=True)
    return atomic_write(wdir / f"epoch_{epoch:03d}.npz", lambda fh: np.savez_compressed(fh, **arrays))


def save_torch(path: str | os.PathLike, state: dict) -> Path:
    """``torch.save(state)`` to ``path`` atomically."""
    import torch

    return atomic_write(path, lambda fh: torch.save(state, fh))


def load_torch(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint written by :func:`save_torch` (a trusted, local file)."""
    import torch

    return torch.load(path, map_location=map_location, weights_only=False)


def write_run_description(out: Path, config, data, **schedule: int) -> None:
    """Write ``config.json`` (the resolved options) and ``data.json`` (the data and the schedule in steps).

    ``config.json`` is what ``--resume`` and the benchmark script compare a
    folder against (:meth:`TrainConfig.identity_diff`).
    """
    import json

    (Path(out) / "config.json").write_text(config.to_json())
    (Path(out) / "data.json").write_text(json.dumps({**data.describe(), **schedule}, indent=1))
