"""Benchmark of record: Fashion-MNIST accuracy under label noise, method by method.

Grid: symmetric noise 20/40/60/80% and asymmetric noise 40% (the
``FASHION_MNIST_ASYMMETRIC`` class mapping of :mod:`divweights_train.noise`) x the
methods (CE, bootstrap, bi-tempered, NCE+RCE, mixup, Dynamic Mixup, CIW, CICW, CIW-M,
CICW-M; optionally the oracle filter, CE on the clean labels, GCE and SCE) x at least two seeds. Every
cell is one ``divweights-train`` run with the library defaults on a stratified
training subset (10% of it held out as a noisy validation split), evaluated on
the clean 10,000-image test set. The output is a Markdown table of the mean and
standard deviation over seeds of the final clean test accuracy and of the
test accuracy at the epoch of best noisy-validation accuracy, plus a JSON file
with every run's summary, and a figure (``figure.png``: accuracy against the noise rate,
a line per method, error bars over seeds: the authors' comparison redrawn).

Runs are resumable: a finished cell (``summary.json`` with ``completed``) is
reused when the configuration saved beside it defines the same run, an
interrupted one continues from its checkpoint. Every grid scale (subset,
width, epochs) has its own folder under ``--out``, e.g. ``n10000-w16-e30``.
Finished cells of the full grid are also appended to a committed record
(``benchmarks/results/fashion_mnist_table.jsonl``: configuration, summary,
machine, commit), so that another session or machine continues the grid
rather than re-running it; a record is reused only for the same run (a
changed default re-runs its cells).  ``--no-train`` draws the table and the
figure of what is finished.

Examples
--------
Estimate the time of the full grid, then run a reduced version on two cores::

    python benchmarks/fashion_mnist_table.py --estimate
    python benchmarks/fashion_mnist_table.py --quick --jobs 2

An ablation: every cell with one option changed (own folders and records)::

    python benchmarks/fashion_mnist_table.py --seeds 0,1,2 --methods cicw-m --set balance-classes=false

The README's table and figure, from the committed record::

    python benchmarks/fashion_mnist_table.py --no-train --seeds 0,1,2 \\
        --methods ce,bi-tempered,nce-rce,mixup,dynamic-mixup,ciw,cicw,ciw-m,cicw-m,oracle,clean
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

NOISES = ("symmetric:0.2", "symmetric:0.4", "symmetric:0.6", "symmetric:0.8", "asymmetric:0.4")
#: The methods of the authors' figure (CE, bi-tempered, NCE+RCE, CICW, mixup, Dynamic Mixup, CICW-M) and ours.
METHODS = ("ce", "bootstrap", "bi-tempered", "nce-rce", "mixup", "dynamic-mixup", "ciw", "cicw", "ciw-m", "cicw-m")
#: Optional rows: the perfect filter (``oracle``, needs the flip mask) as a ceiling; CE on the clean labels
#: (``clean``: one run per seed, shared by every noise column); two more robust losses.
EXTRA_METHODS = ("oracle", "clean", "gce", "sce")
# name, label, relative cost of a training step (mixup methods need a second forward pass)
_ROWS = (
    ("ce", "CE", 1.0), ("bootstrap", "Bootstrap", 1.05), ("bi-tempered", "Bi-tempered", 1.1),
    ("nce-rce", "NCE+RCE", 1.05), ("mixup", "Mixup", 1.05), ("dynamic-mixup", "Dynamic Mixup", 1.5),
    ("ciw", "CIW", 1.05), ("cicw", "CICW", 1.1), ("ciw-m", "CIW-M", 1.45), ("cicw-m", "CICW-M", 1.45),
    ("oracle", "Oracle filter", 1.0), ("clean", "CE, clean labels", 1.0), ("gce", "GCE", 1.05), ("sce", "SCE", 1.05),
)  # fmt: skip
LABELS = {name: label for name, label, _ in _ROWS}
COST = {name: cost for name, _, cost in _ROWS}
#: Reference rows, drawn dashed (CE on clean labels does not depend on the noise column).
REFERENCES = ("oracle", "clean")


def scale_tag(args) -> str:
    """Folder name of a grid's scale: runs of different sizes (or ablations, ``--set``) never share a folder."""
    from divweights_train.config import TrainConfig

    epochs = args.epochs if args.epochs is not None else TrainConfig(dataset="fashion-mnist").resolved().epochs
    tag = f"n{args.subset}-w{args.width}-e{epochs}"
    for name, value in sorted(getattr(args, "overrides", {}).items()):
        tag += f"-{name}={value if isinstance(value, str) else json.dumps(value)}"
    return tag


#: Options a ``--set`` ablation may not change: they define the grid's cells and scale.
_CELL_OPTIONS = ("dataset", "noise", "method", "seed", "subset", "width", "epochs", "out", "model", "data_dir")


def parse_overrides(items) -> dict:
    """``["balance-classes=false", ...]`` -> ``{"balance_classes": False}`` (values as JSON, else text).

    Raises ``ValueError`` naming an item without ``=``, an unknown option, or one that defines the grid.
    """
    import dataclasses

    from divweights_train.config import TrainConfig

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise ValueError(f"--set takes OPTION=VALUE; got {item!r}")
        if name not in fields:
            raise ValueError(f"--set {item!r}: no option {name!r} (the options of divweights_train.TrainConfig)")
        if name in _CELL_OPTIONS:
            raise ValueError(f"--set {item!r}: {name} defines the grid; use the script's own option")
        try:
            out[name] = json.loads(text)
        except json.JSONDecodeError:
            out[name] = text
    return out


def _config(args, noise: str, method: str, seed: int):
    from divweights_train.config import TrainConfig

    if method == "clean":  # CE on the clean labels: the same run for every noise column
        noise, method = "none", "ce"
    out = Path(args.out) / scale_tag(args) / "runs" / noise.replace(":", "-") / method / f"s{seed}"
    kw = {
        "dataset": "fashion-mnist",
        "data_dir": args.data_dir,
        "subset": args.subset,
        "noise": noise,
        "method": method,
        "seed": seed,
        "model": "cnn",
        "width": args.width,
        "threads": args.threads,
        "quiet": True,
        "plots": False,
        "save_weights": False,
        "resume": True,
        "out": str(out),
    }
    if args.epochs is not None:
        kw["epochs"] = args.epochs
    kw.update(getattr(args, "overrides", {}))
    return TrainConfig(**kw)


def finished_summary(config) -> dict | None:
    """The summary of a finished cell of ``config``, or None when it must (still) run.

    A cell is reused only when the configuration saved beside its summary
    defines the same computation (:meth:`TrainConfig.identity_diff`); a folder
    holding a different run is an error rather than a silently wrong table.
    """
    from divweights_train.config import TrainConfig

    folder = Path(config.out)
    summary_path, config_path = folder / "summary.json", folder / "config.json"
    if not summary_path.is_file():
        return None
    summary = json.loads(summary_path.read_text())
    if not summary.get("completed"):
        return None
    if not config_path.is_file():
        raise ValueError(f"{folder} has a summary but no config.json; remove the folder to rerun the cell")
    saved = TrainConfig.from_dict(json.loads(config_path.read_text())).resolved()  # options added since: defaults
    diff = config.resolved().identity_diff(saved)
    if diff:
        raise ValueError(
            f"{folder} holds a different run (options differ: {', '.join(diff)}); "
            "use another --out or remove the folder"
        )
    return summary


def _run_cell(config):
    import torch
    from divweights_train.trainer_torch import train

    summary = finished_summary(config)
    if summary is not None:
        return summary
    torch.set_num_threads(config.threads or 1)
    return train(config, progress=False, log=lambda s: None).summary


#: Finished cells, committed: a later session (or machine) continues the grid instead of re-running it.
RECORD = Path(__file__).resolve().parent / "results" / "fashion_mnist_table.jsonl"
#: The summary fields a record keeps.
SUMMARY_KEYS = (
    "final_test_acc",
    "test_at_best_val",
    "max_test_acc",
    "best_val_acc",
    "final_ess",
    "final_auroc",
    "time",
)


def read_record(path) -> list[dict]:
    """The records of ``path`` (a JSON line per finished cell; no file: none)."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def recorded_summary(records: list[dict], config) -> dict | None:
    """The summary of the record that defines the same run as ``config`` (the latest one), or None.

    Records of other runs (another scale, a changed default) are not reused: their configuration's
    identity (:meth:`TrainConfig.run_identity`, defaults resolved) differs.
    """
    from divweights_train.config import TrainConfig

    mine = config.resolved().run_identity()
    for rec in reversed(records):
        saved = TrainConfig.from_dict(rec["config"]).resolved().run_identity()
        if saved == mine:
            return rec["summary"]
    return None


def make_record(key, config, summary: dict) -> dict:
    """The JSON record of a finished cell: the grid key, the configuration, the summary and where it ran."""
    import platform
    import subprocess

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            check=False,
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except OSError:  # pragma: no cover - no git
        commit = ""
    noise, method, seed = key
    return {
        "noise": noise,
        "method": method,
        "seed": seed,
        "summary": {k: summary[k] for k in SUMMARY_KEYS if k in summary},
        "config": config.to_dict(),
        "machine": platform.node(),
        "commit": commit,
        "date": time.strftime("%Y-%m-%d"),
    }


def _calibrate(args) -> float:
    """Seconds per CE epoch of the benchmark's model on this machine (timed on a few steps)."""
    import torch
    from divweights_train.config import TrainConfig
    from divweights_train.models_torch import build_model
    from divweights_train.trainer_torch import model_kwargs

    torch.set_num_threads(args.threads)
    cfg = TrainConfig(dataset="fashion-mnist", model="cnn", width=args.width).resolved()
    model = build_model("cnn", (1, 28, 28), 10, **model_kwargs(cfg))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
    for i in range(13):
        if i == 3:
            t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    per_step = (time.perf_counter() - t0) / 10
    model.eval()
    xe = torch.randn(256, 1, 28, 28)
    t0 = time.perf_counter()
    with torch.no_grad():
        for _ in range(4):
            model(xe)
    per_eval = (time.perf_counter() - t0) / 4 / 256
    n_train = int(args.subset * 0.9)
    return per_step * (n_train // 128) + per_eval * (10000 + args.subset * 0.1)


def _fmt(values) -> str:
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=float)
    if v.size == 0:
        return "n/a"
    if v.size == 1:
        return f"{100 * v[0]:.1f}"
    return f"{100 * v.mean():.1f} ± {100 * v.std(ddof=1):.1f}"


def markdown(results: dict, noises, methods, seeds, meta: dict) -> str:
    lines = [
        "# Fashion-MNIST under label noise",
        "",
        (
            f"Clean test accuracy (%), mean ± standard deviation over seeds {list(seeds)}; "
            f"{meta['subset']} stratified training examples (10% held out as noisy validation), "
            f"CNN width {meta['width']}, {meta['epochs']} epochs, library defaults per method."
        ),
        "",
    ]
    for key, title in (("final_test_acc", "Final epoch"), ("test_at_best_val", "At the best noisy-validation epoch")):
        lines += [f"## {title}", "", "| method | " + " | ".join(noises) + " |", "|---|" + "---|" * len(noises)]
        for m in methods:
            cells = [_fmt([results.get((n, m, s), {}).get(key) for s in seeds]) for n in noises]
            lines.append(f"| {LABELS[m]} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def rst(results: dict, noises, methods, seeds, meta: dict, command: str) -> str:
    """The table as reStructuredText list-tables (the docs' results page), with the command that made it."""
    head = [
        f".. Written by ``{command}``; do not edit by hand.",
        "",
        (
            f"Clean test accuracy (%), mean ± standard deviation over seeds {', '.join(map(str, seeds))}; "
            f"{meta['subset']:,} stratified training examples (10% held out as the noisy validation split), "
            f"the width-{meta['width']} CNN, {meta['epochs']} epochs, the library defaults per method."
        ),
    ]
    lines = head
    for key, title in (("final_test_acc", "final epoch"), ("test_at_best_val", "at the best noisy-validation epoch")):
        lines += ["", f".. list-table:: Clean test accuracy (%), {title}", "   :header-rows: 1", ""]
        lines += ["   * - method"] + [f"     - {n.replace(':', ' ')}" for n in noises]
        for m in methods:
            lines.append(f"   * - {LABELS[m]}")
            lines += [f"     - {_fmt([results.get((n, m, s), {}).get(key) for s in seeds])}" for n in noises]
    return "\n".join(lines) + "\n"


def _noise_rate(noise: str) -> float:
    return float(noise.split(":", 1)[1])


def series(results: dict, noises, method: str, seeds, key: str) -> list[tuple[str, float, float]]:
    """``(noise, mean %, sd %)`` of ``method`` for each noise column that has a result (sd 0 for one seed)."""
    points = []
    for n in noises:
        v = np.asarray(
            [
                results[(n, method, s)][key]
                for s in seeds
                if (n, method, s) in results and results[(n, method, s)].get(key) is not None
            ],
            float,
        )
        if v.size:
            points.append((n, 100 * v.mean(), 100 * v.std(ddof=1) if v.size > 1 else 0.0))
    return points


def figure(results: dict, noises, methods, seeds, meta: dict, path) -> None:
    """The authors' comparison redrawn: clean test accuracy against the noise rate, a line per method.

    Two rows (at the best noisy-validation epoch, the published protocol; and at the final epoch), two
    columns (symmetric noise rates as lines; asymmetric noise as points). Error bars are the standard
    deviation over ``seeds``; the reference rows (``oracle``, ``clean``) are dashed. Cells without a
    result are left out (a partial grid draws what it has).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sym = [n for n in noises if n.startswith("symmetric")]
    asym = [n for n in noises if not n.startswith("symmetric")]
    cols = 1 + bool(asym)
    fig, axes = plt.subplots(
        2,
        cols,
        figsize=(7.5 + 2.5 * (cols - 1), 8),
        squeeze=False,
        gridspec_kw={"width_ratios": [3, 1][:cols]},
        sharey="row",
    )
    tab = plt.get_cmap("tab10").colors
    palette = [c for i, c in enumerate(tab) if i != 7] + [
        "#000080",
        "#808000",
    ]  # no grey: the references are grey/black
    others = [m for m in methods if m not in REFERENCES]
    colours = {m: palette[i % len(palette)] for i, m in enumerate(others)} | {"oracle": "0.45", "clean": "black"}
    for row, (key, title) in enumerate(
        (("test_at_best_val", "at the best noisy-validation epoch"), ("final_test_acc", "at the final epoch"))
    ):
        for j, m in enumerate(methods):
            style = {
                "color": colours[m],
                "label": LABELS[m],
                "capsize": 3,
                "marker": "o",
                "markersize": 4,
                "linestyle": "--" if m in REFERENCES else "-",
            }
            pts = series(results, sym, m, seeds, key)
            if pts:
                axes[row, 0].errorbar(
                    [100 * _noise_rate(n) for n, _, _ in pts],
                    [mu for _, mu, _ in pts],
                    yerr=[sd for _, _, sd in pts],
                    **style,
                )
            for _, mu, sd in series(results, asym, m, seeds, key):
                axes[row, 1].errorbar([j], [mu], yerr=[sd], **{**style, "linestyle": "none"})
        axes[row, 0].set_title(f"symmetric noise, {title}", fontsize=10)
        axes[row, 0].set_xlabel("noise rate (%)")
        axes[row, 0].set_ylabel("clean test accuracy (%)")
        axes[row, 0].grid(alpha=0.3)
        if asym:
            axes[row, 1].set_title(", ".join(asym), fontsize=10)
            axes[row, 1].set_xticks([])
            axes[row, 1].grid(alpha=0.3)
    legend = {}  # label -> handle, from every panel: an asymmetric-only grid draws no symmetric line
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    if legend:
        fig.legend(
            list(legend.values()), list(legend), loc="lower center", ncol=min(len(legend), 6), fontsize=8, frameon=False
        )
    fig.suptitle(
        f"Fashion-MNIST, {meta['subset']} training examples, CNN width {meta['width']}, "
        f"{meta['epochs']} epochs; mean ± sd over seeds {list(seeds)}",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.07, 1, 0.97))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--out", default="runs/benchmarks/fashion_mnist", help="output folder (default runs/benchmarks/fashion_mnist)"
    )
    p.add_argument("--data-dir", default=None)
    p.add_argument("--noises", default=",".join(NOISES), help="comma-separated noise specs")
    p.add_argument(
        "--methods",
        default=",".join(METHODS),
        help=f"comma-separated methods (default {','.join(METHODS)}; also: {','.join(EXTRA_METHODS)})",
    )
    p.add_argument("--seeds", default="0,1", help="comma-separated seeds (at least two for a spread)")
    p.add_argument("--subset", type=int, default=10000)
    p.add_argument("--epochs", type=int, default=None, help="epochs per run (default: the library default)")
    p.add_argument("--width", type=int, default=16, help="CNN width (default 16)")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel processes")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--quick", action="store_true", help="reduced grid: 4000 examples, 12 epochs, width 8, seeds 0,1")
    p.add_argument("--estimate", action="store_true", help="print the estimated time of the grid and exit")
    p.add_argument(
        "--figure",
        default=None,
        help="also write the figure (accuracy against noise rate) to this PNG path; <out>/figure.png is always written",
    )
    p.add_argument("--rst", default=None, help="also write the table as reStructuredText to this path (the docs)")
    p.add_argument(
        "--record",
        default=str(RECORD),
        help="JSON-lines file of finished cells, read to reuse them and appended to (default "
        "benchmarks/results/fashion_mnist_table.jsonl, committed); 'none' for neither",
    )
    p.add_argument(
        "--no-train",
        action="store_true",
        help="run nothing: the table and figure of the cells already finished (in --out or in --record), "
        "recording the finished folders",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="OPTION=VALUE",
        help="a divweights-train option for every cell, for an ablation (repeatable; e.g. --set "
        "balance-classes=false); its cells get their own folders and records",
    )
    args = p.parse_args(argv)
    try:
        args.overrides = parse_overrides(args.set)
    except ValueError as exc:
        p.error(str(exc))
    if args.quick:
        args.subset, args.epochs, args.width = 4000, 12, 8
        if args.record == str(RECORD):  # the committed record holds the full grid only
            args.record = "none"
    noises = [n.strip() for n in args.noises.split(",") if n.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    seeds = [int(s) for s in args.seeds.split(",")]
    unknown = sorted(set(methods) - set(METHODS) - set(EXTRA_METHODS))
    if unknown:
        p.error(f"unknown methods {unknown}; choose from {', '.join(METHODS + EXTRA_METHODS)}")
    configs = {(n, m, s): _config(args, n, m, s) for n in noises for m in methods for s in seeds}
    epochs = next(iter(configs.values())).resolved().epochs

    # one run per folder: the clean reference's cell serves every noise column
    cells: dict[str, list] = {}
    for k in sorted(configs, key=lambda k: -COST[k[1]]):  # long runs first
        cells.setdefault(configs[k].out, []).append(k)
    record_path = None if args.record == "none" else Path(args.record)
    records = read_record(record_path) if record_path is not None else []
    done = {}  # folder -> (summary, whether the record already holds it)
    for folder, keys in cells.items():
        summary = recorded_summary(records, configs[keys[0]])
        if summary is not None:
            done[folder] = (summary, True)
        else:
            summary = finished_summary(configs[keys[0]])
            if summary is not None:
                done[folder] = (summary, False)
    todo = {folder: keys for folder, keys in cells.items() if folder not in done}
    if done:
        print(f"{len(done)} of {len(cells)} runs already finished (reused)")
    if args.no_train:
        todo = {}
    units = sum(COST[keys[0][1]] for keys in todo.values())
    per_epoch = _calibrate(args) if todo or args.estimate else 0.0
    estimate = per_epoch * epochs * units / max(args.jobs, 1)
    print(
        f"{len(todo)} runs to go x {epochs} epochs; ~{per_epoch:.1f} s per CE epoch here "
        f"-> estimated {estimate / 60:.0f} min with {args.jobs} job(s) x {args.threads} thread(s) "
        f"(contention on a shared machine makes it longer)"
    )
    if args.estimate:
        return 0

    out = Path(args.out) / scale_tag(args)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    results = {}

    def record(folder, summary, recorded: bool):
        for k in cells[folder]:
            results[k] = summary
        if record_path is not None and not recorded:
            record_path.parent.mkdir(parents=True, exist_ok=True)
            with record_path.open("a") as f:
                f.write(json.dumps(make_record(cells[folder][0], configs[cells[folder][0]], summary)) + "\n")

    def report(i, folder, summary):
        record(folder, summary, False)
        k = cells[folder][0]
        print(
            f"[{i}/{len(todo)}] {k[0]:14s} {k[1]:13s} seed {k[2]}: final "
            f"{summary['final_test_acc']:.4f} best-val {summary['test_at_best_val']:.4f}",
            flush=True,
        )

    for folder, (summary, recorded) in done.items():
        record(folder, summary, recorded)
    if args.jobs > 1 and todo:
        with cf.ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futs = {pool.submit(_run_cell, configs[keys[0]]): folder for folder, keys in todo.items()}
            for i, fut in enumerate(cf.as_completed(futs), 1):
                report(i, futs[fut], fut.result())
    else:
        for i, (folder, keys) in enumerate(todo.items(), 1):
            report(i, folder, _run_cell(configs[keys[0]]))
    elapsed = time.perf_counter() - t0
    meta = {
        "subset": args.subset,
        "epochs": epochs,
        "width": args.width,
        "seeds": seeds,
        "elapsed_s": elapsed,
        "jobs": args.jobs,
        "threads": args.threads,
    }
    md = markdown(results, noises, methods, seeds, meta)
    print()
    print(md)
    print(f"elapsed {elapsed / 60:.1f} min")
    (out / "table.md").write_text(md + f"\nElapsed {elapsed / 60:.1f} min ({args.jobs} jobs).\n")
    (out / "results.json").write_text(
        json.dumps(
            {
                "meta": meta,
                "runs": [{"noise": n, "method": m, "seed": s, **results[(n, m, s)]} for (n, m, s) in sorted(results)],
            },
            indent=1,
        )
    )
    if args.rst:
        command = "python benchmarks/fashion_mnist_table.py " + " ".join(argv if argv is not None else sys.argv[1:])
        Path(args.rst).write_text(rst(results, noises, methods, seeds, meta, command))
        print(f"table: {args.rst}")
    paths = [out / "figure.png"] + ([Path(args.figure)] if args.figure else [])
    try:
        for path in paths:
            figure(results, noises, methods, seeds, meta, path)
            print(f"figure: {path}")
    except ImportError:
        print("figure skipped: matplotlib is not installed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
