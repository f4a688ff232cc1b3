"""Atomic, code-free files of a run folder: checkpoints, weight files, JSON.

Atomic
------
Every file is written to a temporary file in the same folder, flushed and
fsync'ed, given the mode of the other outputs (``0o666`` minus the umask) and
moved over the old one with :func:`os.replace`, so a run killed at any moment
(even ``kill -9`` in the middle of a write) leaves either the previous file
or the new one, never a truncated file. Leftover temporaries of a killed write
are removed when the run folder is opened again
(:meth:`divweights_train.runfolder.RunFolder.open`). A write that fails for
want of space (a full device or quota, :data:`FULL_DISK_ERRNOS`) likewise
leaves the previous file, and raises an :class:`OSError` naming the file
(:func:`divweights_train.runloop.run` turns it into a one-line
:class:`~divweights_train.errors.DiskFullError`).

Code-free
---------
Loading a checkpoint never runs code from it, so a run folder from someone
else can be resumed safely. A checkpoint holds a JSON description (the
options, the epoch, the records) and arrays:

* ``checkpoint.pt`` (``--framework torch``): :func:`torch.save` of tensors,
  numbers, strings and plain containers, read back with
  ``torch.load(..., weights_only=True)``;
* ``checkpoint_jax.npz`` (``--framework jax``): a NumPy ``.npz`` archive read
  with ``allow_pickle=False``.

A file that would need unpickling of anything else -- a crafted file, or a
checkpoint written by divweights-train before checkpoint format 2 (pickled
NumPy random states, ``checkpoint_jax.pkl``) -- is refused with a
:class:`~divweights_train.errors.CheckpointError` before anything in it is
executed. JSON files are standard JSON: non-finite numbers are written as
``null`` (:func:`dumps_json`).
"""

from __future__ import annotations

import errno
import functools
import json
import math
import os
import pickle
import re
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from .errors import CheckpointError

__all__ = [
    "CHECKPOINT_NAME",
    "FORMAT",
    "FULL_DISK_ERRNOS",
    "JAX_CHECKPOINT_NAME",
    "LEGACY_CHECKPOINT_NAMES",
    "atomic_write",
    "dumps_json",
    "full_disk",
    "load_checkpoint",
    "load_torch",
    "save_checkpoint",
    "save_epoch_weights",
    "save_torch",
    "write_json",
    "write_run_description",
]

#: Version of the checkpoint layout (1: pickled, before the code-free format).
FORMAT = 2
#: File name of a torch run's checkpoint inside its output folder.
CHECKPOINT_NAME = "checkpoint.pt"
#: File name of a JAX run's checkpoint inside its output folder.
JAX_CHECKPOINT_NAME = "checkpoint_jax.npz"
#: Checkpoints of format 1 that only a pickle could read (refused, never loaded).
LEGACY_CHECKPOINT_NAMES = ("checkpoint_jax.pkl",)

_HOW = "resume from an intact copy, or start the run again with --overwrite"


# --------------------------------------------------------------------------- #
# Writing.
# --------------------------------------------------------------------------- #
@functools.lru_cache(maxsize=1)
def output_mode() -> int:
    """Mode of a new output file: ``0o666`` minus the process's umask (as :func:`open` gives)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


#: ``errno`` values of a write that failed for want of space: a full device, a used-up quota.
FULL_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def full_disk(err: BaseException | None) -> OSError | None:
    """The "no space left" :class:`OSError` behind ``err`` (itself, or its cause or context), or None.

    :func:`torch.save` reports a failed write as a :class:`RuntimeError`
    whose context is the ``OSError``; this finds it there too.

    Examples
    --------
    >>> import errno
    >>> try:
    ...     try:
    ...         raise OSError(errno.ENOSPC, "No space left on device")
    ...     except OSError:
    ...         raise RuntimeError("file write failed")
    ... except RuntimeError as err:
    ...     print(full_disk(err).strerror)
    No space left on device
    >>> full_disk(OSError(errno.EACCES, "Permission denied")) is None
    True
    """
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, OSError) and err.errno in FULL_DISK_ERRNOS:
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


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
        ``path``, now holding what ``write`` wrote.

    Raises
    ------
    OSError
        With ``errno`` ``ENOSPC`` or ``EDQUOT`` and ``filename`` ``path`` when
        the device or the quota is full, whatever layer reported it (the
        temporary file is removed and ``path`` keeps its previous content).

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = atomic_write(os.path.join(d, "x.bin"), lambda fh: fh.write(b"abc"))
    ...     print(p.read_bytes(), sorted(os.listdir(d)))
    b'abc' ['x.bin']
    """
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fchmod(fh.fileno(), output_mode())  # mkstemp creates 0o600
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        full = full_disk(err)
        if full is not None:  # whoever reported it (torch.save: a RuntimeError), name the file
            raise OSError(full.errno, full.strerror, str(path)) from err
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


def _finite_or_none(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    return obj


def dumps_json(obj, **kwargs) -> str:
    """Standard JSON text of ``obj``: non-finite floats (nan, inf) become ``null``.

    Python's :func:`json.dumps` writes a bare ``NaN``, which most JSON readers
    reject; readers of these files map ``null`` back to nan where a number is
    expected (:meth:`divweights_train.metrics.EpochRecord.from_dict`,
    :func:`divweights_train.metrics.read_summary`).

    Examples
    --------
    >>> dumps_json({"acc": float("nan"), "epochs": [1, float("inf")]})
    '{"acc": null, "epochs": [1, null]}'
    """
    return json.dumps(_finite_or_none(obj), allow_nan=False, **kwargs)


def write_json(path: str | os.PathLike, obj, **kwargs) -> Path:
    """Write :func:`dumps_json` of ``obj`` to ``path`` atomically."""
    text = dumps_json(obj, **kwargs).encode()
    return atomic_write(path, lambda fh: fh.write(text))


def save_epoch_weights(out: str | os.PathLike, epoch: int, arrays: dict) -> Path:
    """Write one epoch's per-example weights (``WeightStats.arrays()``) to
    ``OUT/weights/epoch_NNN.npz`` atomically."""
    import numpy as np

    wdir = Path(out) / "weights"
    wdir.mkdir(parents=True, exist_ok=True)
    return atomic_write(wdir / f"epoch_{epoch:03d}.npz", lambda fh: np.savez_compressed(fh, **arrays))


def write_run_description(out: Path, config, data, **schedule: int) -> None:
    """Write ``config.json`` (the resolved options) and ``data.json`` (the data and the schedule in steps).

    ``config.json`` is what ``--resume`` and the benchmark script compare a
    folder against (:meth:`TrainConfig.identity_diff`).
    """
    write_json(Path(out) / "config.json", config.to_dict(), sort_keys=True, indent=1)
    write_json(Path(out) / "data.json", {**data.describe(), **schedule}, indent=1)


# --------------------------------------------------------------------------- #
# Reading safely.
# --------------------------------------------------------------------------- #
def _unsafe(path: Path, what: str) -> CheckpointError:
    return CheckpointError(
        f"{path} was not loaded: it holds {what}, and loading it could run code. Checkpoints written by "
        f"divweights-train before checkpoint format {FORMAT} look like this too; load those only with the "
        f"version that wrote them, and only if you trust the file. Otherwise {_HOW}."
    )


def _sniff(path: Path) -> None:
    """Refuse what is not a zip archive (torch and npz checkpoints both are) before any reader sees it."""
    if not path.is_file():
        raise CheckpointError(f"{path} is not a file; remove it, or choose another --out")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if not head:
        raise CheckpointError(f"{path} is empty (an interrupted copy?); {_HOW}")
    if head[:1] == b"\x80":
        raise _unsafe(path, "a Python pickle")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path} is not a checkpoint of divweights-train (not a zip archive, or truncated); {_HOW}"
        )


def save_torch(path: str | os.PathLike, state: dict) -> Path:
    """``torch.save(state)`` to ``path`` atomically.

    ``state`` must hold only tensors, numbers, strings, None and plain
    containers, which :func:`load_torch` reads back without unpickling code.
    """
    import torch

    return atomic_write(path, lambda fh: torch.save(state, fh))


def load_torch(path: str | os.PathLike, map_location="cpu") -> Any:
    """Read a file written by :func:`save_torch` with ``torch.load(..., weights_only=True)``.

    Raises
    ------
    CheckpointError
        The file is empty, truncated or of another kind, or it refers to
        anything but tensors and plain values (it is refused, not executed).
    """
    import torch

    path = Path(path)
    _sniff(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (
        pickle.UnpicklingError,
        RuntimeError,
        EOFError,
        ValueError,
        OSError,
        KeyError,
        TypeError,
    ) as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        if found:
            raise _unsafe(path, f"a reference to {found.group(1)}") from None
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path} is damaged ({first}); {_HOW}") from None


def _flatten(tree, arrays: list):
    """JSON skeleton of a tree of string-keyed dicts whose leaves go to ``arrays`` (by index)."""
    if isinstance(tree, Mapping):
        if not all(isinstance(k, str) for k in tree):
            raise TypeError("checkpoint trees need string keys")
        return {k: _flatten(v, arrays) for k, v in tree.items()}
    arrays.append(tree)
    return len(arrays) - 1


def _unflatten(skeleton, arrays: Mapping):
    if isinstance(skeleton, dict):
        return {k: _unflatten(v, arrays) for k, v in skeleton.items()}
    return arrays[f"a{skeleton}"]


def _save_npz(path: Path, meta: dict, state: dict) -> Path:
    import numpy as np

    leaves: list = []
    skeleton = _flatten(state, leaves)
    arrays = {f"a{i}": np.asarray(a) for i, a in enumerate(leaves)}
    if any(a.dtype.hasobject for a in arrays.values()):
        raise TypeError("checkpoint arrays must be numeric (object arrays would need pickle)")
    arrays["meta"] = np.asarray(dumps_json(meta))
    arrays["tree"] = np.asarray(json.dumps(skeleton))
    return atomic_write(path, lambda fh: np.savez(fh, **arrays))


def _load_npz(path: Path) -> tuple[dict, dict]:
    import numpy as np

    _sniff(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta, skeleton = (
            json.loads(str(arrays.pop("meta"))),
            json.loads(str(arrays.pop("tree"))),
        )
        return meta, _unflatten(skeleton, arrays)
    except ValueError as err:
        if "pickle" in str(err):
            raise _unsafe(path, "object arrays (pickled Python objects)") from None
        raise CheckpointError(f"{path} is damaged ({err}); {_HOW}") from None
    except (KeyError, OSError, EOFError, zipfile.BadZipFile, TypeError) as err:
        raise CheckpointError(f"{path} is damaged ({type(err).__name__}: {err}); {_HOW}") from None


def save_checkpoint(path: str | os.PathLike, meta: dict, state: dict, *, kind: str) -> Path:
    """Write a checkpoint atomically: ``meta`` (JSON-able) and ``state`` (arrays).

    Parameters
    ----------
    path : str or path-like
    meta : dict
        Framework-neutral description (options, epoch, records ...); stored
        as JSON with ``format`` = :data:`FORMAT` added.
    state : dict
        The backend's state: ``kind="torch"``: tensors, numbers and plain
        containers; ``kind="npz"``: string-keyed dicts of NumPy arrays.
    kind : {"torch", "npz"}
    """
    meta = {**meta, "format": FORMAT}
    if kind == "torch":
        return save_torch(path, {"format": FORMAT, "meta": dumps_json(meta), "state": state})
    if kind == "npz":
        return _save_npz(Path(path), meta, state)
    raise ValueError(f"unknown checkpoint kind {kind!r}")


def load_checkpoint(path: str | os.PathLike, *, kind: str, framework: str, map_location="cpu") -> tuple[dict, dict]:
    """Read a checkpoint written by :func:`save_checkpoint`; never runs code from the file.

    Returns
    -------
    meta : dict
    state : dict

    Raises
    ------
    CheckpointError
        Unreadable, of another format or framework, or refused as unsafe.
    """
    path = Path(path)
    if kind == "torch":
        payload = load_torch(path, map_location=map_location)
        if not (isinstance(payload, dict) and isinstance(payload.get("meta"), str) and "state" in payload):
            raise CheckpointError(f"{path} is not a checkpoint of divweights-train; {_HOW}")
        meta, state = json.loads(payload["meta"]), payload["state"]
    elif kind == "npz":
        meta, state = _load_npz(path)
    else:
        raise ValueError(f"unknown checkpoint kind {kind!r}")
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} has checkpoint format {meta.get('format')!r}, this version reads {FORMAT}; {_HOW}"
        )
    if meta.get("framework") != framework:
        raise CheckpointError(
            f"{path} is a checkpoint of the {meta.get('framework')} trainer, not of "
            f"--framework {framework}; resume with the framework that wrote it"
        )
    return meta, state
