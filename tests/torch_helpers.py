"""Shared pieces of the torch tests: a batch, the per-example cross-entropy, the strengths every
test file sweeps, and deterministic cost counters (aten ops dispatched, host reads).

The op count follows ``shared/tools/opcount.py``: every aten operator that reaches
the dispatcher below autograd counts once (each is a kernel launch on a GPU),
except ``detach``, ``_to_copy`` and ``lift_fresh`` (no-ops or copies that a
compiled graph folds away).
"""

from __future__ import annotations

from collections import Counter

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from divweights import KL, Alpha, ChiSquared, ReverseKL, TotalVariation

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


def make_batch(seed: int = 7):
    """16 x 5 float64 logits (scale 2) and integer labels."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(16, 5, generator=g, dtype=torch.float64) * 2
    labels = torch.randint(0, 5, (16,), generator=g)
    return logits, labels


def ce(logits, labels):
    """Per-example cross-entropy."""
    return F.cross_entropy(logits, labels, reduction="none")


STRENGTHS = [
    (KL(), {"delta": 0.3}),
    (KL(), {"temperature": 0.7}),
    (Alpha(0.1), {"temperature": 0.1}),
    (ReverseKL(), {"lam": 0.5}),
    (ChiSquared(), {"lam": 2.0}),
    (TotalVariation(), {"delta": 0.25}),
]
