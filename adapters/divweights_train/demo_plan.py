"""The run plan of ``make demo``: its runs, their configurations, and how long they should take.

:func:`demo_configs` builds one :class:`~divweights_train.config.TrainConfig`
per run of :data:`DEMO_RUNS`; :func:`run_costs` and :func:`estimate_seconds`
turn a short warm-up measurement (:func:`_warmup`) into the time the demo
should take on ``jobs`` parallel workers.  Everything here is re-exported by
:mod:`divweights_train.demo`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

from .config import TrainConfig

__all__ = [
    "DEMO_RUNS",
    "DEMO_THREADS",
    "DEMO_WEIGHT_DECAY",
    "DEMO_WIDTH",
    "QUICK_EPOCHS",
    "QUICK_SUBSET",
    "STEP_COST",
    "default_jobs",
    "demo_configs",
    "estimate_seconds",
    "existing_results",
    "run_costs",
]

#: (label, method, noise) of the demo's runs, in display order.
DEMO_RUNS = (
    ("CE", "ce", "symmetric:0.6"),
    ("CIW", "ciw", "symmetric:0.6"),
    ("CICW-M", "cicw-m", "symmetric:0.6"),
    ("Oracle", "oracle", "symmetric:0.6"),
    ("CE clean", "ce", "none"),
)


#: Channels of the demo CNN's first block (SmallCNN; 16 keeps the demo within minutes on two cores).
DEMO_WIDTH = 16

#: Weight decay of every demo run (the library default is 5e-4). Measured at 60% noise
#: (benchmarks/demo_tuning.md): CIW 0.8425 -> 0.8533 with 5e-3, clean training unchanged (0.892).
DEMO_WEIGHT_DECAY = 5e-3

#: Torch threads per run: one (see the module docstring for the measurement).
DEMO_THREADS = 1

#: ``--quick``: training subset and epochs of the smoke test.
QUICK_SUBSET, QUICK_EPOCHS = 2000, 3

#: Cost of a training step relative to plain cross-entropy (mixup methods add a forward pass
#: without gradient; the same figures as ``benchmarks/fashion_mnist_table.py``).
STEP_COST = {
    "ce": 1.0,
    "bootstrap": 1.05,
    "mixup": 1.05,
    "ciw": 1.05,
    "cicw": 1.1,
    "ciw-m": 1.45,
    "cicw-m": 1.45,
    "oracle": 1.0,
}

#: Output files of a demo (besides one folder per run).
_RESULT_FILES = ("results.json", "results.md", "accuracy.png", "weights.png")


def _folder(label: str) -> str:
    return label.lower().replace(" ", "-")


def demo_configs(
    out: Path,
    *,
    epochs: int | None = None,
    subset: int = 10000,
    threads: int = DEMO_THREADS,
    seed: int = 0,
    clean: bool = True,
    oracle: bool = True,
    quiet: bool = True,
    width: int = DEMO_WIDTH,
    weight_decay: float = DEMO_WEIGHT_DECAY,
) -> dict[str, TrainConfig]:
    """The demo's run configurations, keyed by label."""
    configs = {}
    for label, method, noise in DEMO_RUNS:
        if (noise == "none" and not clean) or (method == "oracle" and not oracle):
            continue
        kw = {
            "dataset": "fashion-mnist",
            "subset": subset,
            "noise": noise,
            "method": method,
            "seed": seed,
            "model": "cnn",
            "width": width,
            "weight_decay": weight_decay,
            "threads": threads,
            "quiet": quiet,
            "out": str(Path(out) / _folder(label)),
        }
        if epochs is not None:
            kw["epochs"] = epochs
        configs[label] = TrainConfig(**kw)
    return configs


def existing_results(out: Path) -> list[str]:
    """Names of the demo outputs (result files and run folders) already in ``out``."""
    out = Path(out)
    names = [*_RESULT_FILES, *(_folder(label) for label, _, _ in DEMO_RUNS)]
    return [n for n in names if (out / n).exists()]


def default_jobs(num_runs: int, cores: int | None = None) -> int:
    """Parallel runs: one per usable CPU core, at most one per run.

    Examples
    --------
    >>> default_jobs(5, cores=2), default_jobs(5, cores=16), default_jobs(3, cores=1)
    (2, 5, 1)
    """
    if cores is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):  # pragma: no cover - not Linux
            cores = os.cpu_count() or 1
    return max(1, min(int(num_runs), int(cores)))


# --------------------------------------------------------------------------- #
# Time estimate
# --------------------------------------------------------------------------- #
def _warmup(
    threads: int,
    width: int,
    batch_size: int,
    eval_batch_size: int,
    seconds: float = 2.0,
) -> dict:
    """Seconds per training step and per evaluated example of the demo's CNN, measured here and now."""
    import torch

    from .models_torch import build_model

    torch.set_num_threads(int(threads))
    torch.manual_seed(0)
    model = build_model("cnn", (1, 28, 28), 10, width=width)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch_size, 1, 28, 28)
    y = torch.randint(0, 10, (batch_size,))

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    step()
    n, t0 = 0, time.perf_counter()
    while n < 3 or (time.perf_counter() - t0 < seconds and n < 500):
        step()
        n += 1
    step_s = (time.perf_counter() - t0) / n
    model.eval()
    xe = torch.randn(eval_batch_size, 1, 28, 28)
    with torch.no_grad():
        model(xe)
        t0 = time.perf_counter()
        for _ in range(2):
            model(xe)
    eval_s = (time.perf_counter() - t0) / (2 * eval_batch_size)
    return {"step_s": step_s, "eval_example_s": eval_s}


def run_costs(
    configs: Mapping[str, TrainConfig],
    *,
    step_s: float,
    eval_example_s: float,
    num_test: int = 10000,
    per_run_s: float = 0.0,
) -> dict[str, tuple[float, float]]:
    """Estimated ``(fixed, per_epoch)`` seconds of each run.

    ``fixed`` is ``per_run_s`` (loading the data); an epoch is its training
    steps at ``step_s`` times :data:`STEP_COST` of the method plus the
    evaluation of the test and validation examples at ``eval_example_s`` each.
    """
    out = {}
    for label, cfg in configs.items():
        r = cfg.resolved()
        n = int(r.subset) if r.subset is not None else 60000
        n_val = round(n * r.val_fraction)
        steps = max(1, (n - n_val) // min(r.batch_size, n - n_val))
        out[label] = (
            per_run_s,
            steps * step_s * STEP_COST.get(r.method, 1.0) + (num_test + n_val) * eval_example_s,
        )
    return out


def estimate_seconds(
    configs: Mapping[str, TrainConfig],
    *,
    step_s: float,
    eval_example_s: float,
    jobs: int,
    num_test: int = 10000,
    per_run_s: float = 0.0,
) -> float:
    """Wall-clock seconds the demo's runs should take on ``jobs`` parallel workers.

    Each run costs :func:`run_costs`; the runs are handed to the earliest free
    worker, longest first (as :func:`main` submits them).

    Examples
    --------
    >>> cfgs = demo_configs(Path("runs/x"), epochs=2, subset=1000, clean=False, oracle=False)
    >>> round(estimate_seconds(cfgs, step_s=0.01, eval_example_s=0.0, jobs=1), 2)  # 7 steps x 2 epochs x cost
    0.49
    >>> round(estimate_seconds(cfgs, step_s=0.01, eval_example_s=0.0, jobs=3), 3)  # the longest run, CICW-M
    0.203
    """
    costs = run_costs(
        configs,
        step_s=step_s,
        eval_example_s=eval_example_s,
        num_test=num_test,
        per_run_s=per_run_s,
    )
    workers = [0.0] * max(1, int(jobs))
    for label in sorted(
        costs,
        key=lambda lb: -(costs[lb][0] + configs[lb].resolved().epochs * costs[lb][1]),
    ):
        i = workers.index(min(workers))
        workers[i] += costs[label][0] + configs[label].resolved().epochs * costs[label][1]
    return max(workers)


def _fmt_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
