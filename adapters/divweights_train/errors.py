"""Errors of the training program that are the user's to fix.

Each one carries a one-line message naming the option or file at fault and
what to do. The usage errors subclass :class:`ValueError`, so
``divweights-train`` reports them as usage errors (one line on stderr, exit
status 2); they are raised before any training starts. :class:`DiskFullError`
can come at any time of a run; it is reported in one line with exit status 1.
"""

from __future__ import annotations

__all__ = ["CheckpointError", "DiskFullError", "RunFolderError", "UsageError"]


class UsageError(ValueError):
    """An option, file or folder given to the training program cannot be used as it is."""


class RunFolderError(UsageError):
    """The output folder (``--out``) cannot hold this run: not a folder, not writable, in use or holding another run."""


class CheckpointError(UsageError):
    """A checkpoint cannot be resumed from: unreadable, of another format, or refused because loading it could run code."""


class DiskFullError(OSError):
    """A file of the run could not be written: no space is left on its device, or the disk quota is used up.

    Every file of a run is written atomically
    (:func:`divweights_train.checkpoint.atomic_write`), so what was written
    before -- the checkpoint of the last finished epoch included -- is intact:
    free some space and continue with ``--resume``. ``errno`` is the
    original ``ENOSPC`` or ``EDQUOT``, ``strerror`` the one-line message (also
    its ``str()``) and ``filename`` the file that could not be written.
    """

    def __str__(self) -> str:
        return self.strerror
