"""Progress of ``make demo``: one bar (or plain lines) over all of its runs, with the time left.

The workers report each run's log lines; :class:`_Progress` turns the
trainers' one line per epoch into the fraction of the demo done, weighted by
each run's estimated cost (:func:`~divweights_train.demo_plan.run_costs`).
Re-exported by :mod:`divweights_train.demo`.
"""

from __future__ import annotations

import io
import math
import os
import re
import sys
import time
from collections.abc import Mapping

from .config import TrainConfig
from .demo_plan import _fmt_duration

_EPOCH = re.compile(r"epoch\s+(\d+)")
_STARTED = "\0started"  # sent by a worker when its run starts
_TEST = re.compile(r"\btest\s+([0-9.]+)")


class _Progress:
    """Progress of the whole demo: a tqdm bar on a terminal, plain lines (at most every 30 s) otherwise.

    The fraction done weighs each run's data loading and epochs by their
    estimated cost (:func:`run_costs`), so the time left is sensible from the
    first epoch on; before that it is the up-front estimate.
    """

    def __init__(
        self,
        configs: Mapping[str, TrainConfig],
        *,
        costs: Mapping[str, tuple[float, float]] | None = None,
        estimate_s: float | None = None,
        tty: bool | None = None,
        stream=None,
        plain_every_s: float = 30.0,
    ):
        self.epochs = {label: cfg.resolved().epochs for label, cfg in configs.items()}
        self.costs = dict(costs) if costs is not None else {label: (0.0, 1.0) for label in configs}
        self.total_cost = sum(f + self.epochs[lb] * e for lb, (f, e) in self.costs.items()) or 1.0
        self.done = dict.fromkeys(configs, 0)
        self.total = sum(self.epochs.values())
        self.estimate_s = estimate_s
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.plain_every_s = plain_every_s
        self.t0 = time.perf_counter()
        self.last_plain = -math.inf
        self.bar = None
        if self.tty:
            from tqdm.auto import tqdm

            try:
                width = os.get_terminal_size(self.stream.fileno()).columns
            except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
                width = 0
            # A pseudo-terminal without a size (e.g. under `script`) reports 0 x 0, from which tqdm derives
            # -1 rows and then hides the bar: give it a size.
            sized = width >= 40
            self.bar = tqdm(
                total=100.0,
                desc="demo",
                file=self.stream,
                dynamic_ncols=sized,
                ncols=None if sized else 120,
                nrows=None if sized else 24,
                smoothing=0.0,
                bar_format="{l_bar}{bar}| [{elapsed}<{remaining}{postfix}]",
            )
            self.bar.set_postfix_str(
                f"0/{self.total} epochs, expected {_fmt_duration(estimate_s)}"
                if estimate_s is not None
                else f"0/{self.total} epochs"
            )
        else:
            self._plain("training started", force=True)

    def fraction(self) -> float:
        """Estimated fraction of the demo's work done."""
        done = sum((f if self.done[lb] else 0.0) + self.done[lb] * e for lb, (f, e) in self.costs.items())
        return min(1.0, done / self.total_cost)

    def time_left(self) -> float | None:
        """Estimated seconds left (None when unknown)."""
        f, elapsed = self.fraction(), time.perf_counter() - self.t0
        if f > 0:
            return elapsed * (1 - f) / f
        return None if self.estimate_s is None else max(0.0, self.estimate_s - elapsed)

    def _plain(self, what: str, *, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last_plain < self.plain_every_s:
            return
        self.last_plain = now
        left = self.time_left()
        left = "time left unknown" if left is None else f"about {_fmt_duration(left)} left"
        print(
            f"  [{self.fraction():4.0%}, {sum(self.done.values())}/{self.total} epochs, "
            f"{_fmt_duration(now - self.t0)} elapsed, {left}] {what}",
            flush=True,
        )

    def log_line(self, label: str, line: str) -> None:
        """One log line of run ``label`` (the trainers log one line per epoch; others are ignored)."""
        if line == _STARTED:
            if self.bar is not None and not any(self.done.values()):
                self.bar.set_postfix_str(f"{label} loading data", refresh=True)
            return
        m = _EPOCH.search(line)
        if m is None:
            return
        acc = _TEST.search(line)
        self.advance(
            label,
            min(int(m.group(1)), self.epochs[label]),
            float(acc.group(1)) if acc else None,
        )

    def advance(self, label: str, epoch: int, test_acc: float | None) -> None:
        """Run ``label`` has finished ``epoch`` epochs."""
        if epoch <= self.done[label]:
            return
        before = self.fraction()
        self.done[label] = epoch
        what = f"{label} epoch {epoch}/{self.epochs[label]}" + (
            "" if test_acc is None else f", test acc {test_acc:.3f}"
        )
        if self.bar is not None:
            self.bar.set_postfix_str(f"{sum(self.done.values())}/{self.total} epochs, {what}", refresh=False)
            self.bar.update(100.0 * (self.fraction() - before))
        else:
            self._plain(what)

    def run_done(self, label: str, final_acc: float, seconds: float) -> None:
        self.advance(label, self.epochs[label], None)
        line = f"  done: {label:9s} final test acc {final_acc:.4f} ({seconds:.0f} s)"
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
