"""The output folder of a training run: checked, locked, never silently reused.

:meth:`RunFolder.open` runs before any data is loaded or any model trained,
and turns every problem with ``--out`` into a one-line
:class:`~divweights_train.errors.RunFolderError`:

* ``--out`` is empty, is a file, lies under a file or cannot be written to;
* another process is writing to the folder (an exclusive lock, see below);
* the folder holds a run and neither ``--resume`` (continue it) nor
  ``--overwrite`` (delete its files first) was given;
* one of the run's file names is taken by a folder (``checkpoint.pt/``).

Locking
-------
The writer holds an exclusive :func:`fcntl.flock` on ``OUT/.lock`` for the
whole run and writes its process id into the file. The operating system
releases the lock when the process ends, however it ends (``kill -9``
included), so a lock file left behind by a dead run is stale by
construction and simply taken over. Where ``fcntl`` does not exist the lock
file is created exclusively and a lock whose process is gone is treated as
stale.

Opening also removes the temporary files of writes that were interrupted
(``checkpoint.pt.*.tmp``, ``weights/epoch_*.npz.*.tmp`` ...): while the lock
is held no other writer can own them.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Self

from .checkpoint import CHECKPOINT_NAME, JAX_CHECKPOINT_NAME, LEGACY_CHECKPOINT_NAMES
from .errors import RunFolderError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["LOCK_NAME", "RUN_FILES", "RunFolder"]

#: Name of the lock file inside the run folder.
LOCK_NAME = ".lock"
#: The files a run writes at the top of its folder (``weights/`` holds ``epoch_NNN.npz``).
RUN_FILES = (
    "config.json",
    "data.json",
    "metrics.jsonl",
    "summary.json",
    CHECKPOINT_NAME,
    JAX_CHECKPOINT_NAME,
    *LEGACY_CHECKPOINT_NAMES,
    "accuracy.png",
    "weights.png",
)
_WEIGHTS = "weights"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class RunFolder:
    """An output folder, opened for one writer (see the module docstring).

    Use :meth:`open`; :meth:`close` (or leaving the ``with`` block) releases the lock.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with RunFolder.open(os.path.join(d, "run"), resume=False, overwrite=False) as folder:
    ...         _ = (folder.path / "metrics.jsonl").write_text("")
    ...         try:
    ...             RunFolder.open(folder.path, resume=True, overwrite=False)
    ...         except ValueError as err:
    ...             print("refused:", "is in use" in str(err))
    ...     folder.holds_run()
    refused: True
    ['metrics.jsonl']
    """

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    # ------------------------------------------------------------------ open
    @classmethod
    def open(cls, path: str | os.PathLike, *, resume: bool, overwrite: bool) -> RunFolder:
        """Check, create and lock ``path``; refuse or clear a run already in it.

        Parameters
        ----------
        path : str or path-like
            The output folder (created with its parents).
        resume : bool
            A run in the folder is continued (its files are kept).
        overwrite : bool
            A run in the folder is deleted first (only the files a run writes,
            :data:`RUN_FILES` and ``weights/epoch_*.npz``; nothing else).

        Raises
        ------
        RunFolderError
        """
        if str(path) == "":
            raise RunFolderError("--out must name a folder, got an empty string")
        folder = cls(Path(path))
        folder._create()
        folder._lock()
        try:
            folder._check_names()
            folder.remove_temporaries()
            present = folder.holds_run()
            if present and not resume:
                if not overwrite:
                    files = [n for n in present if not n.startswith(_WEIGHTS)]
                    if len(files) < len(present):
                        files.append(f"{len(present) - len(files)} weight files")
                    raise RunFolderError(
                        f"{folder.path} already holds a run ({', '.join(files)}); add --resume to continue it, "
                        "--overwrite to delete it and start again, or choose another --out"
                    )
                folder.clear()
        except BaseException:
            folder.close()
            raise
        return folder

    def _create(self) -> None:
        p = self.path
        if p.exists() and not p.is_dir():
            raise RunFolderError(f"--out {p} is a file, not a folder; choose another --out")
        for parent in p.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise RunFolderError(f"--out {p} lies under {parent}, which is a file; choose another --out")
                break
        try:
            p.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise RunFolderError(
                f"cannot create the output folder {p} ({err.strerror}); choose another --out"
            ) from None
        if not os.access(p, os.W_OK | os.X_OK):
            raise RunFolderError(f"the output folder {p} is not writable; choose another --out")

    def _lock(self) -> None:
        lock = self.path / LOCK_NAME
        try:
            if fcntl is not None:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as err:
                    os.close(fd)
                    if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                        raise
                    self._refuse_in_use(_read_pid(lock))
            else:  # pragma: no cover - Windows
                fd = self._lock_exclusive_create(lock)
        except OSError as err:
            raise RunFolderError(
                f"cannot write to the output folder {self.path} ({err.strerror}); choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def _lock_exclusive_create(self, lock: Path) -> int:  # pragma: no cover - Windows
        for _ in range(2):
            try:
                return os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                pid = _read_pid(lock)
                if pid is not None and _pid_alive(pid):
                    self._refuse_in_use(pid)
                lock.unlink(missing_ok=True)  # stale: its process is gone
        self._refuse_in_use(_read_pid(lock))

    def _refuse_in_use(self, pid: int | None):
        holder = f"process {pid}" if pid is not None else "another process"
        raise RunFolderError(
            f"the output folder {self.path} is in use by {holder} (another divweights-train "
            "writing there); wait for it to finish, or choose another --out"
        )

    def close(self) -> None:
        """Release the lock (the lock file stays; it is stale from now on)."""
        if self._fd is not None:
            if fcntl is None:  # pragma: no cover - Windows
                (self.path / LOCK_NAME).unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --------------------------------------------------------------- content
    def _check_names(self) -> None:
        for name in RUN_FILES:
            p = self.path / name
            if p.exists() and not p.is_file():
                raise RunFolderError(
                    f"{p} is not a file (the run writes its {name} there); remove it, or choose another --out"
                )
        w = self.path / _WEIGHTS
        if w.exists() and not w.is_dir():
            raise RunFolderError(
                f"{w} is not a folder (the run writes its weight files there); remove it, or choose another --out"
            )

    def weight_files(self) -> list[Path]:
        """``weights/epoch_*.npz``, sorted."""
        w = self.path / _WEIGHTS
        return sorted(w.glob("epoch_*.npz")) if w.is_dir() else []

    def holds_run(self) -> list[str]:
        """Names of the run files present (empty: the folder holds no run)."""
        names = [n for n in RUN_FILES if (self.path / n).exists()]
        return names + [f"{_WEIGHTS}/{p.name}" for p in self.weight_files()]

    def clear(self) -> None:
        """Delete the files a run writes (and ``weights/`` if it ends up empty); nothing else."""
        for name in RUN_FILES:
            (self.path / name).unlink(missing_ok=True)
        for p in self.weight_files():
            p.unlink()
        w = self.path / _WEIGHTS
        if w.is_dir() and not any(w.iterdir()):
            w.rmdir()

    def remove_weight_files_after(self, epoch: int) -> None:
        """Delete ``weights/epoch_NNN.npz`` of epochs after ``epoch`` (left by an interrupted run)."""
        for p in self.weight_files():
            if p.stem[len("epoch_") :].isdigit() and int(p.stem[len("epoch_") :]) > epoch:
                p.unlink()

    def remove_temporaries(self) -> list[Path]:
        """Delete the ``NAME.*.tmp`` files of interrupted atomic writes; return them."""
        found = [p for p in self.path.glob("*.tmp") if p.name.split(".tmp")[0].startswith(RUN_FILES)]
        found += list((self.path / _WEIGHTS).glob("epoch_*.npz.*.tmp"))
        found = [p for p in found if p.is_file()]
        for p in found:
            p.unlink()
        return found
