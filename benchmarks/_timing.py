"""Interleaved timing: every candidate runs once per round, rounds repeat, medians reported.

Machines here are shared and noisy, so the numbers that matter are ratios
measured in the same run, never a single absolute time.
"""

from __future__ import annotations

import statistics
import time


def interleaved(candidates: dict, *, rounds: int = 15, inner: int = 1, warmup: int = 2) -> dict:
    """Return ``{name: median seconds per call}``; each round calls every candidate ``inner`` times."""
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    samples = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            samples[name].append((time.perf_counter() - t0) / inner)
    return {name: statistics.median(v) for name, v in samples.items()}


def fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"
