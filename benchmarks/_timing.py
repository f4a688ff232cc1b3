"""Interleaved timing: every candidate runs once per round, rounds repeat, medians reported.

Machines here are shared and noisy, so the numbers that matter are ratios
measured in the same run, never a single absolute time. Two helpers:

* :func:`interleaved`: median seconds per call of each candidate, the
  candidates called in a fixed order in every round;
* :func:`paired_rounds` + :func:`paired_ratio`: the candidates in a shuffled
  order in every round, and the median over rounds of each candidate's time
  divided by the baseline's time *of the same round* (a paired comparison:
  a slow drift of the machine's load cancels out).
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable


def interleaved(
    candidates: dict, *, rounds: int = 15, inner: int = 1, warmup: int = 2
) -> dict:
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


Timer = Callable[[Callable[[], object], int], float]


def clock_timer(clock: Callable[[], float] = time.perf_counter) -> Timer:
    """A timer ``(fn, repeat) -> seconds per call`` reading ``clock`` around ``repeat`` calls."""

    def timer(fn, repeat):
        t0 = clock()
        for _ in range(repeat):
            fn()
        return (clock() - t0) / repeat

    return timer


def paired_rounds(
    candidates: dict[str, Callable[[], object]],
    *,
    rounds: int,
    repeat: int = 1,
    timer: Timer | None = None,
    seed: int = 0,
    on_error: Callable[[str, BaseException], None] | None = None,
) -> dict[str, list[float]]:
    """Seconds per call of each candidate in every round, the candidates shuffled anew each round.

    A candidate that raises is dropped from the later rounds; ``on_error(name, exc)``
    is told (without it the exception propagates). The returned lists of a
    dropped candidate are shorter than ``rounds``.
    """
    timer = timer or clock_timer()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    alive = list(candidates)
    rng = random.Random(seed)
    for _ in range(rounds):
        order = alive[:]
        rng.shuffle(order)
        for name in order:
            try:
                times[name].append(timer(candidates[name], repeat))
            except Exception as exc:
                if on_error is None:
                    raise
                on_error(name, exc)
                alive.remove(name)
    return times


def paired_ratio(times: list[float], base: list[float]) -> float:
    """Median over rounds of ``times[r] / base[r]`` (rounds that both have)."""
    pairs = [t / b for t, b in zip(times, base) if b > 0]
    return statistics.median(pairs) if pairs else float("nan")


def verdict(ratio: float, goal: float | None) -> str:
    """``PASS`` / ``FAIL`` against a ratio goal, or an empty string when there is no goal."""
    if goal is None:
        return ""
    return "PASS" if ratio <= goal else "FAIL"


def fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"
