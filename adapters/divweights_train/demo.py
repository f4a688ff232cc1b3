"""``make demo``: a real noisy-label comparison on Fashion-MNIST, on a laptop CPU.

Trains the same small CNN on a 10,000-example stratified subset of the
Fashion-MNIST training set (9,000 for training, 1,000 as a *noisy* validation
split) whose labels were flipped to a different class with probability 0.6
(symmetric noise), and measures accuracy on the clean 10,000-image test set:

* ``CE``      -- plain cross-entropy (uniform weights);
* ``CIW``     -- constrained instance reweighting (KL ball around uniform);
* ``CICW-M``  -- instance and class reweighting with weighted mixup;
* ``Oracle``  -- a perfect filter (cross-entropy on the examples whose labels
  were not flipped): the ceiling of any reweighting that only drops examples,
  unless ``--no-oracle``;
* ``CE clean``-- cross-entropy on the clean labels (the reference), unless
  ``--no-clean``.

Every run uses the library's defaults for its method (chosen from the
measurements in ``benchmarks/demo_tuning.md``) and the same weight decay,
``DEMO_WEIGHT_DECAY`` (5e-3, which measured better than the default 5e-4
for the reweighted runs and equal for clean training).

Before training, the demo says how it will use this machine and how long it
expects to take: the runs go to ``--jobs`` parallel processes (default: one
per CPU core, at most one per run) with one torch thread each, and a short
warm-up (a few training steps of the demo's CNN in every process at once)
gives the time per step from which the whole demo is estimated. One thread
per run is the fastest use of the cores for this small network (measured on
2 busy cores: two runs side by side with one thread each took 47-50 s, the
same two runs one after the other with two threads each 146-156 s), and it
keeps the numbers identical on every machine whatever its number of cores.

A progress bar (or, when the output is not a terminal, a plain line at most
every 30 seconds) shows the epochs done, the latest test accuracy and the
time left. At the end the demo prints a table of the final clean test accuracy, the test accuracy at the
best noisy-validation epoch (the paper's protocol), the AUROC of the
instance weights for telling clean from flipped examples and the effective
sample size, one line explaining each column, the result against the target
once, and writes

* ``OUT/accuracy.png``: clean test and noisy validation accuracy per epoch;
* ``OUT/weights.png``: final-epoch weight histograms, clean vs flipped;
* ``OUT/results.json`` and ``results.md``; one sub-folder per run.

``OUT`` is ``runs/demo`` (``runs/demo-quick`` with ``--quick``); a folder
that already holds a demo's results is never overwritten unless
``--overwrite`` is given.

Usage::

    python -m divweights_train.demo [--quick] [--out DIR] [--overwrite] [--jobs J] [--threads T]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import multiprocessing
import queue as queue_mod
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .config import OptionError, TrainConfig

# The demo's parts, re-exported here: the run plan and time estimate, the progress bar, the result table and verdict.
from .demo_plan import (  # noqa: F401 (re-exported)
    _RESULT_FILES,
    DEMO_RUNS,
    DEMO_THREADS,
    DEMO_WEIGHT_DECAY,
    DEMO_WIDTH,
    QUICK_EPOCHS,
    QUICK_SUBSET,
    STEP_COST,
    _fmt_duration,
    _folder,
    _warmup,
    default_jobs,
    demo_configs,
    estimate_seconds,
    existing_results,
    run_costs,
)
from .demo_progress import _EPOCH, _STARTED, _TEST, _Progress  # noqa: F401
from .demo_results import COLUMNS, TARGET_ACC, TARGET_GAP, assess, format_legend, format_table  # noqa: F401

__all__ = [
    "COLUMNS",
    "DEMO_RUNS",
    "assess",
    "default_jobs",
    "demo_configs",
    "estimate_seconds",
    "existing_results",
    "format_table",
    "main",
]


# --------------------------------------------------------------------------- #
# Runs (in this process or in worker processes)
# --------------------------------------------------------------------------- #
_EVENTS = None  # the worker processes' queue of (label, log line)


def _mp_context():
    """Worker processes start from a clean server process (``forkserver``), not by forking this one:
    forking a process that has started threads (JAX, an OpenMP pool) can deadlock."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _init_worker(events) -> None:
    global _EVENTS
    _EVENTS = events


def _train_one(
    config: TrainConfig,
    label: str | None = None,
    on_log: Callable[[str, str], None] | None = None,
):
    import torch

    from .trainer_torch import train

    torch.set_num_threads(config.threads or 1)

    def log(line: str) -> None:
        if on_log is not None:
            on_log(label, line)
        elif _EVENTS is not None:
            _EVENTS.put((label, line))

    log(_STARTED)
    t0 = time.perf_counter()
    result = train(config, progress=False, log=log)
    return result.records, result.summary, time.perf_counter() - t0


def _run_all(configs: dict[str, TrainConfig], jobs: int, progress: _Progress) -> dict:
    """Train every run (longest first), reporting each epoch to ``progress``; ``{label: (records, summary, s)}``."""
    results = {}
    order = sorted(
        configs,
        key=lambda lb: -configs[lb].resolved().epochs * STEP_COST.get(configs[lb].method, 1.0),
    )
    if jobs == 1:
        for label in order:
            records, summary, seconds = _train_one(configs[label], label, progress.log_line)
            results[label] = (records, summary, seconds)
            progress.run_done(label, summary["final_test_acc"], seconds)
        return results
    ctx = _mp_context()
    events = ctx.Queue()

    def drain():
        while True:
            try:
                label, line = events.get_nowait()
            except queue_mod.Empty:
                return
            progress.log_line(label, line)

    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker, initargs=(events,)) as pool:
        futures = {pool.submit(_train_one, configs[label], label): label for label in order}
        pending = set(futures)
        while pending:
            done, pending = cf.wait(pending, timeout=0.25, return_when=cf.FIRST_COMPLETED)
            drain()
            for fut in done:
                label = futures[fut]
                results[label] = fut.result()
                progress.run_done(label, results[label][1]["final_test_acc"], results[label][2])
        drain()
    return results


def _measure(configs: dict[str, TrainConfig], jobs: int) -> dict:
    """Warm-up in ``jobs`` processes at once (so that they compete as the runs will)."""
    r = next(iter(configs.values())).resolved()
    args = (r.threads or 1, r.width, r.batch_size, r.eval_batch_size)
    if jobs == 1:
        return _warmup(*args)
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=_mp_context()) as pool:
        found = list(pool.map(_warmup, *zip(*[args] * jobs)))
    return {k: sum(f[k] for f in found) / len(found) for k in found[0]}


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #
class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m divweights_train.demo", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--out",
        default=None,
        help="output folder (default runs/demo, or runs/demo-quick with --quick)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the demo results already in the output folder (default: refuse)",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs per run (default: the library default, 30)",
    )
    p.add_argument(
        "--subset",
        type=int,
        default=10000,
        help="training subset incl. validation (default 10000)",
    )
    p.add_argument(
        "--threads",
        type=_positive,
        default=DEMO_THREADS,
        help=f"torch threads per run (default {DEMO_THREADS}: fastest for this small CNN, and the "
        "numbers then repeat on every machine)",
    )
    p.add_argument(
        "--jobs",
        type=_positive,
        default=None,
        help="runs trained in parallel processes (default: one per CPU core, at most one per run)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--width",
        type=int,
        default=DEMO_WIDTH,
        help=f"CNN width (default {DEMO_WIDTH})",
    )
    p.add_argument(
        "--weight-decay",
        type=float,
        default=DEMO_WEIGHT_DECAY,
        help=f"weight decay of every run (default {DEMO_WEIGHT_DECAY})",
    )
    p.add_argument(
        "--no-clean",
        dest="clean",
        action="store_false",
        help="skip the clean-label reference run",
    )
    p.add_argument(
        "--no-oracle",
        dest="oracle",
        action="store_false",
        help="skip the perfect-filter reference run",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke test: {QUICK_SUBSET} examples, {QUICK_EPOCHS} epochs, results in runs/demo-quick",
    )
    return p


def main(argv=None) -> int:
    p = build_parser()
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    prog = p.prog
    if args.quick:
        args.subset, args.epochs = QUICK_SUBSET, QUICK_EPOCHS
    out = Path(args.out if args.out is not None else ("runs/demo-quick" if args.quick else "runs/demo"))
    try:
        configs = demo_configs(
            out,
            epochs=args.epochs,
            subset=args.subset,
            threads=args.threads,
            seed=args.seed,
            clean=args.clean,
            oracle=args.oracle,
            width=args.width,
            weight_decay=args.weight_decay,
        )
    except OptionError as err:
        print(
            f"{prog}: error: argument --{err.field.replace('_', '-')}: {err.problem}",
            file=sys.stderr,
        )
        return 2
    jobs = args.jobs or default_jobs(len(configs))
    first = next(iter(configs.values())).resolved()
    print(
        f"divweights demo: {len(configs)} training runs on Fashion-MNIST with 60% label noise -> {out}/",
        flush=True,
    )

    found = existing_results(out)
    if found:
        if not args.overwrite:
            print(
                f"{prog}: error: {out} already holds demo results ({', '.join(found)}); to replace them run "
                f"`{prog} {' '.join([*(argv if argv is not None else sys.argv[1:]), '--overwrite'])}`, "
                "or give --out NEW_FOLDER to keep them",
                file=sys.stderr,
            )
            return 2
        for name in found:
            path = out / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        print(
            f"  --overwrite: removed the previous results in {out}/ ({', '.join(found)})",
            flush=True,
        )

    from .datasets import DatasetNotFoundError, load_fashion_mnist

    t0 = time.perf_counter()
    try:
        load_fashion_mnist(split="test")
    except DatasetNotFoundError as err:
        print(f"demo: {err}\nRun `make dataset` first.", file=sys.stderr)
        return 1
    load_s = 7 * (time.perf_counter() - t0)  # each run reads the test split and the 6x larger training split

    out.mkdir(parents=True, exist_ok=True)
    print(
        f"Fashion-MNIST, {args.subset} stratified training examples ({1 - first.val_fraction:.0%} train, "
        f"{first.val_fraction:.0%} noisy validation), 60% symmetric label noise, clean 10k test set."
    )
    print(
        f"model {first.model} (width {first.width}), {first.epochs} epochs, batch {first.batch_size}, "
        f"lr {first.lr} (milestones {list(first.lr_milestones)}), weight decay {first.weight_decay}"
    )
    for label, cfg in configs.items():
        r = cfg.resolved()
        strength = (
            ", ".join(f"{k}={v}" if isinstance(v, str) else f"{k}={v:.3g}" for k, v in r.strength().items())
            if r.method not in ("ce", "mixup", "oracle")
            else ""
        )
        extra = f" class {r.class_divergence} gamma={r.class_gamma}" if r.method in ("cicw", "cicw-m") else ""
        extra += ", class balance" if r.balance_classes else ""
        print(f"  {label:9s} method={r.method} noise={r.noise} {strength}{extra}")
    cores = default_jobs(10**6)
    print(f"{jobs} run(s) at a time x {args.threads} thread(s) each ({cores} CPU core(s) usable here).")
    print("Measuring this machine's speed (a few seconds)...", flush=True)
    warm = _measure(configs, jobs)
    speed = {
        "step_s": warm["step_s"],
        "eval_example_s": warm["eval_example_s"],
        "per_run_s": load_s,
    }
    estimate = estimate_seconds(configs, jobs=jobs, **speed)
    print(
        f"Expected time: about {_fmt_duration(estimate)} ({1000 * warm['step_s']:.0f} ms per training step "
        f"measured just now; other load on the machine changes it).",
        flush=True,
    )

    progress = _Progress(configs, costs=run_costs(configs, **speed), estimate_s=estimate)
    t_start = time.perf_counter()
    try:
        results = _run_all(configs, jobs, progress)
    finally:
        progress.close()
    total = time.perf_counter() - t_start

    rows = []
    for label in configs:
        _records, summary, seconds = results[label]
        rows.append({"label": label, **summary, "time": seconds})
    table = format_table(rows)
    legend = format_legend()
    print()
    print(table)
    print(legend)
    print(f"\ntotal wall-clock time: {_fmt_duration(total)} (estimated {_fmt_duration(estimate)})")

    import numpy as np

    from . import plots

    plots.plot_accuracy_curves(
        {label: results[label][0] for label in configs},
        out / "accuracy.png",
        title="Fashion-MNIST, 60% symmetric noise: clean test (solid), noisy val (dashed)",
    )
    hist = {}
    for label, cfg in configs.items():
        if cfg.method in ("ce", "mixup", "oracle") or cfg.noise == "none":
            continue
        last = Path(cfg.out) / "weights" / f"epoch_{results[label][0][-1].epoch:03d}.npz"
        if last.is_file():
            with np.load(last, allow_pickle=False) as z:
                hist[label] = (z["scaled_weights"], z["flipped"])
    if hist:
        plots.plot_weight_histograms(
            hist,
            out / "weights.png",
            title="final-epoch weights n*w_i: clean vs flipped",
        )

    verdict = assess(
        {label: results[label][1]["final_test_acc"] for label in configs},
        quick=args.quick,
    )
    print()
    for line in verdict["lines"]:
        print(line)
    print(f"Plots: {out / 'accuracy.png'}, {out / 'weights.png'}; tables: {out / 'results.md'}")

    payload = {
        "rows": rows,
        "total_time_s": total,
        "estimated_time_s": estimate,
        "warmup": warm,
        "jobs": jobs,
        "threads": args.threads,
        "quick": bool(args.quick),
        "configs": {label: cfg.resolved().to_dict() for label, cfg in configs.items()},
        "columns": dict(COLUMNS),
        "target": {k: v for k, v in verdict.items() if k != "lines"},
        "verdict": verdict["lines"],
    }
    (out / "results.json").write_text(json.dumps(payload, indent=1, sort_keys=True, default=str))
    (out / "results.md").write_text(
        table + "\n\n" + legend + "\n\n" + "\n".join(verdict["lines"]) + f"\n\ntotal time {total:.0f} s\n"
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
