"""Interleaved timing: every candidate runs once per round, rounds repeat, medians reported.

Machines here are shared and noisy, so the numbers that matter are ratios
measured in the same run, never a single absolute time. Two helpers:

* :func:`interleaved`: median seconds per call of each candidate, the
  candidates called in a fixed order in every round;
* :func:`paired_rounds` + :func:`paired_ratio`: the candidates in a shuffled
  order in every round, and the median over rounds of each candidate's time
  divided by the baseline's time *of the same round* (a paired comparison:
  a slow drift of the machine's load cancels out).

The training-step benchmarks (``bench_torch_step.py``, ``bench_jax_step.py``,
``gpu_step.py``) also share their command line (:func:`step_parser`), the
summary of each step's times (:func:`summarise`) and the closing lines of
their tables (:func:`method_notes`, :func:`goals_line`).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable


def interleaved(
    candidates: dict,
    *,
    rounds: int = 15,
    inner: int = 1,
    warmup: int = 2,
    clock: Callable[[], float] = time.perf_counter,
) -> dict:
    """Return ``{name: median seconds per call}``; each round calls every candidate ``inner`` times.

    ``clock`` reads the time (``time.process_time`` for the process's CPU time).
    """
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    samples = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            t0 = clock()
            for _ in range(inner):
                fn()
            samples[name].append((clock() - t0) / inner)
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


# --------------------------------------------------------------------------- the step benchmarks
#: A preset flag of a step benchmark: its help and the options it sets.
Preset = tuple[str, dict]
#: The CPU step benchmarks' smoke test (``--tiny``).
CPU_TINY: Preset = (
    "batch 16, width 4, 2 rounds x 1 step: a smoke test",
    {"rounds": 2, "steps": 1, "warmup": 1, "batch": 16, "width": 4},
)


class StepParser(argparse.ArgumentParser):
    """An argument parser whose preset flags (``--tiny``, ``--quick``) set several options.

    The first preset given, in the order they were declared, overrides the
    options it names (also when they were given explicitly).
    """

    def __init__(self, doc: str, presets: dict[str, Preset]):
        super().__init__(
            description=doc.split("\n\n")[0],
            formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog=doc.split("\n\n", 1)[1],
        )
        self.presets = {flag: values for flag, (_, values) in presets.items()}
        for flag, (what, _) in presets.items():
            self.add_argument(f"--{flag}", action="store_true", help=what)

    def parse_args(self, args=None, namespace=None):
        out = super().parse_args(args, namespace)
        given = [flag for flag in self.presets if getattr(out, flag)]
        if given:
            vars(out).update(self.presets[given[0]])
        return out


def step_parser(
    doc: str,
    *,
    steps: int,
    tiny: Preset = CPU_TINY,
    quick: Preset | None = None,
    rounds: int = 15,
    warmup: int = 3,
    warmup_what: str = "compiles",
    width: str | None = None,
) -> StepParser:
    """The options every step benchmark takes, its ``doc`` as the help text.

    ``--rounds``, ``--steps``, ``--warmup``, ``--batch``, ``--seed``, the
    presets ``--tiny`` and ``--quick`` (where given); ``--width`` (of the
    model named ``width``) and ``--clock`` for the CPU benchmarks.
    """
    p = StepParser(doc, {"tiny": tiny} if quick is None else {"tiny": tiny, "quick": quick})
    for flag, default, text in (
        ("--rounds", rounds, f"interleaved timing rounds (default {rounds})"),
        ("--steps", steps, f"steps per method per round (default {steps})"),
        (
            "--warmup",
            warmup,
            f"untimed steps per method first ({warmup_what}; default {warmup})",
        ),
    ):
        p.add_argument(flag, type=int, default=default, help=text)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    if width is not None:
        p.add_argument(
            "--width",
            type=int,
            default=16,
            help=f"{width} width (default 16, the demo's)",
        )
        p.add_argument(
            "--clock",
            choices=("cpu", "wall"),
            default="cpu",
            help="cpu: process CPU time (robust on a shared machine); wall: elapsed time",
        )
    return p


def time_rounds(candidates, args, *, timer: Timer | None = None, on_error=None) -> dict[str, list[float]]:
    """:func:`paired_rounds` with a step benchmark's options: ``args.rounds`` rounds of
    ``args.steps`` calls, shuffled from ``args.seed``; without a ``timer``, the clock that
    ``args.clock`` names (``cpu``: the process's CPU time, ``wall``: elapsed time)."""
    if timer is None:
        timer = clock_timer(time.process_time if args.clock == "cpu" else time.perf_counter)
    return paired_rounds(
        candidates,
        rounds=args.rounds,
        repeat=args.steps,
        timer=timer,
        seed=args.seed,
        on_error=on_error,
    )


def summarise(times: dict[str, list[float]], name: str, base: str = "CE") -> dict:
    """``{"median_s", "ratio"}`` of candidate ``name`` (paired ratio to ``base``), or ``{}`` without times."""
    ts, base_ts = times.get(name), times.get(base)
    if not ts:
        return {}
    return {
        "median_s": statistics.median(ts),
        "ratio": paired_ratio(ts, base_ts) if base_ts else float("nan"),
    }


#: The columns every step table ends with (before any of its own).
STEP_COLUMNS = ("ms / step (median)", "ratio to CE (paired median)", "goal", "result")
_NUMERIC_COLUMNS = {
    "ms / step (median)",
    "ratio to CE (paired median)",
    "goal",
    "first call incl. compile (s)",
}


def table_head(title: str, columns) -> list[str]:
    """The first lines of a step table: its title, a blank line, the header (numbers right-aligned)."""
    align = ("---:" if c in _NUMERIC_COLUMNS else "---" for c in columns)
    return [title, "", f"| {' | '.join(columns)} |", f"|{'|'.join(align)}|"]


def goal_cell(goal: float | None) -> str:
    """The goal column of a step table: ``<= 1.03``, or empty for a step without a goal."""
    return f"<= {goal:.2f}" if goal else ""


def method_notes(descriptions) -> list[str]:
    """The lines under a step table: a blank line, then ``* name: description`` per method."""
    return ["", *(f"* {name}: {text}" for name, text in descriptions)]


def goals_line(goals: dict[str, float], same: str = "") -> str:
    """The closing line of a step benchmark: the ratio goals of issue #10, against the CE step ``same``."""
    goal_text = ", ".join(f"{k} <= {v}x" for k, v in goals.items())
    return f"\nGoals (issue #10): {goal_text} the CE step{same}."
