"""Deterministic cost counters for the torch tests: aten ops dispatched and host reads.

The op count follows ``shared/tools/opcount.py``: every aten operator that reaches
the dispatcher below autograd counts once (each is a kernel launch on a GPU),
except ``detach``, ``_to_copy`` and ``lift_fresh`` (no-ops or copies that a
compiled graph folds away).
"""

from __future__ import annotations

from collections import Counter

from torch.utils._python_dispatch import TorchDispatchMode

SKIP = {"detach.default", "_to_copy.default", "lift_fresh.default"}


class _Record(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[func.__name__] += 1
        return func(*args, **(kwargs or {}))


def op_counts(fn) -> Counter:
    """``Counter`` of the aten operators ``fn()`` dispatches (``SKIP`` left out)."""
    with _Record() as rec:
        fn()
    return Counter({name: c for name, c in rec.ops.items() if name not in SKIP})


def count_ops(fn) -> int:
    """Number of aten operators ``fn()`` dispatches (``SKIP`` left out)."""
    return sum(op_counts(fn).values())


def host_reads(fn) -> int:
    """Number of device-to-host scalar reads (``.item()``, ``float()``, ``bool()``) made by ``fn()``."""
    with _Record() as rec:
        fn()
    return rec.ops["_local_scalar_dense.default"]
