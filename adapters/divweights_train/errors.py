"""Errors of the training program that are the user's to fix.

Each one carries a one-line message naming the option or file at fault and
what to do. They subclass :class:`ValueError`, so ``divweights-train`` reports
them as usage errors (one line on stderr, exit status 2) and they are raised
before any training starts.
"""

from __future__ import annotations

__all__ = ["CheckpointError", "RunFolderError", "UsageError"]


class UsageError(ValueError):
    """An option, file or folder given to the training program cannot be used as it is."""


class RunFolderError(UsageError):
    """The output folder (``--out``) cannot hold this run: not a folder, not writable, in use or holding another run."""


class CheckpointError(UsageError):
    """A checkpoint cannot be resumed from: unreadable, of another format, or refused because loading it could run code."""
