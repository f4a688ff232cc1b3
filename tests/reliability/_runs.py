"""Helpers of the reliability suite: what a run folder holds, as bytes, to compare runs bit for bit."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from divweights_train.checkpoint import (
    CHECKPOINT_NAME,
    JAX_CHECKPOINT_NAME,
    load_checkpoint,
)
from divweights_train.metrics import read_metrics


def folder_bytes(folder: Path, skip: tuple[str, ...] = (".lock",)) -> dict[str, bytes]:
    """Every file below ``folder`` (but ``skip``), by relative path: to check that nothing changed."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in skip
    }


def _array_bytes(a) -> bytes:
    a = np.asarray(a)
    return f"{a.dtype.str}{a.shape}".encode() + a.tobytes()


def _leaves(tree, prefix: str, out: dict) -> None:
    if isinstance(tree, Mapping):
        for k, v in tree.items():
            _leaves(v, f"{prefix}/{k}", out)
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            _leaves(v, f"{prefix}/{i}", out)
    elif hasattr(tree, "detach"):  # a torch tensor
        out[prefix] = _array_bytes(tree.detach().cpu().numpy())
    elif isinstance(tree, (np.ndarray, np.generic)):
        out[prefix] = _array_bytes(tree)
    else:
        out[prefix] = repr(tree).encode()


def run_state(out: Path) -> dict[str, bytes]:
    """What an interruption must not change, by name: the metrics (without timings), the arrays of
    every weight file, and the checkpoint's state (model, optimiser, loss, the run's random streams)."""
    state = {
        f"metrics/{r.epoch}": repr(sorted(r.without_timing().items())).encode()
        for r in read_metrics(out / "metrics.jsonl")
    }
    for path in sorted((out / "weights").glob("epoch_*.npz")):
        with np.load(path, allow_pickle=False) as z:
            state.update({f"weights/{path.name}/{k}": _array_bytes(z[k]) for k in z.files})
    if (out / JAX_CHECKPOINT_NAME).is_file():
        _, saved = load_checkpoint(out / JAX_CHECKPOINT_NAME, kind="npz", framework="jax")
    else:
        _, saved = load_checkpoint(out / CHECKPOINT_NAME, kind="torch", framework="torch")
        # The process-wide Python and NumPy generators are saved for the user's code but not seeded
        # by the run, which never draws from them (its streams derive from --seed): they differ
        # between any two processes.
        del saved["rng"]["python"], saved["rng"]["numpy"]
    _leaves(saved, "checkpoint", state)
    return state


def differences(got: dict[str, bytes], expected: dict[str, bytes]) -> list[str]:
    """The names whose bytes differ (or that only one side has), sorted."""
    return sorted(k for k in got.keys() | expected.keys() if got.get(k) != expected.get(k))
