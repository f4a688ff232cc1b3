"""No noise rate needed: ``ReweightedLoss()`` in a plain loop against hand-tuned radii.

The benchmark of issue 13.  Every run is the loop a user writes first -- an
MLP, Adam, batches of 128, no schedule -- with the loss swapped:

* ``ce``          plain cross-entropy;
* ``filter``      cross-entropy on the unflipped examples only (the perfect filter);
* ``fixed:D``     ``ReweightedLoss(delta=D)`` for a grid of radii (``fixed:0.5`` is the previous default);
* ``informed``    ``ReweightedLoss(delta=clip(-log(1 - r), 0.1, 1.6))``, the previous CLI rule, told the rate ``r``;
* ``auto``        ``ReweightedLoss()``, the adaptive default (``delta="auto"``);
* ``momentum:M``  the adaptive radius with the noise rate averaged with momentum ``M``,
                  ``ReweightedLoss(noise_momentum=M)``; ``momentum:0`` is each batch's own estimate, the
                  default of the pure ``divweights_jax.reweighted_loss`` when no state is carried;
* ``sharp:A``     the adaptive radius with the noise score sharpened, ``ReweightedLoss(noise_sharpness=A)``;
* ``bare``        BARE: keep the examples whose label probability is at least the batch mean plus ``k`` std of
                  their class (Patel & Sastry, 2021), ``k = 0``;
* ``term``        tilted ERM with tilt ``t = -2``: a fixed-temperature softmin, ``ReweightedLoss(lam=0.5)``.

Datasets: Fashion-MNIST (a stratified 10k training subset, the 10k test set), scikit-learn digits (1,200 / 597) and
two-moons (2,000 / 2,000).  Noise: symmetric 0, 0.2, 0.4, 0.6, 0.8 (for the two classes of two-moons the symmetric
rate is the ``symmetric-uniform`` draw, half of whose picks keep their label, so the labels stay learnable) and
asymmetric 0.4 (the Fashion-MNIST mapping, a pair flip for digits, class 0 to 1 for two-moons).  Reported: final test
accuracy, mean over seeds.

Usage::

    python benchmarks/adaptive_radius.py                     # the full table (3 seeds; about an hour on 2 cores)
    python benchmarks/adaptive_radius.py --quick             # one seed, digits and two-moons (a few minutes)
    python benchmarks/adaptive_radius.py --table results.jsonl   # print the table of finished runs
    python benchmarks/adaptive_radius.py --cli --datasets digits two-moons   # the same through divweights-train

Runs are appended to ``--out`` (JSON lines) and skipped when already there, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

RADII = (0.1, 0.25, 0.5, 1.0, 1.6)
METHODS = ("ce", "filter", *(f"fixed:{d}" for d in RADII), "informed", "auto", "momentum:0", "sharp:2", "bare", "term")
NOISES = (
    ("symmetric", 0.0),
    ("symmetric", 0.2),
    ("symmetric", 0.4),
    ("symmetric", 0.6),
    ("symmetric", 0.8),
    ("asymmetric", 0.4),
)
DATASETS = ("fashion-mnist", "digits", "two-moons")
#: Epochs per dataset: 20 on Fashion-MNIST (1,580 steps; cross-entropy has memorised most noisy labels by then),
#: 40 on the small sets (400 and 640 steps).
EPOCHS = {"fashion-mnist": 20, "digits": 40, "two-moons": 40}


# -- data --------------------------------------------------------------------------------------------------------
def load(dataset: str):
    """``(x_train, y_train, x_test, y_test, k)`` as float32 / int64 arrays, standardised."""
    from divweights_train import datasets as D

    rng = np.random.default_rng(1234)
    if dataset == "fashion-mnist":
        tr, te = D.load_fashion_mnist(split="train"), D.load_fashion_mnist(split="test")
        idx = D.stratified_subset(tr.y, 10_000, rng=rng, num_classes=10)
        x = np.asarray(tr.x, np.float32).reshape(len(tr.y), -1)[idx] / 255.0
        xt = np.asarray(te.x, np.float32).reshape(len(te.y), -1) / 255.0
        m, s = x.mean(), x.std()
        return (x - m) / s, np.asarray(tr.y)[idx], (xt - m) / s, np.asarray(te.y), 10
    if dataset == "digits":
        ds = D.load_digits_dataset(flatten=True)
        x, y = np.asarray(ds.x, np.float32).reshape(len(ds.y), -1), np.asarray(ds.y)
        p = rng.permutation(len(y))
        x, y = x[p], y[p]
        x = (x - x[:1200].mean(0)) / (x[:1200].std(0) + 1e-6)
        return x[:1200], y[:1200], x[1200:], y[1200:], 10
    if dataset == "two-moons":
        from sklearn.datasets import make_moons

        x, y = make_moons(4000, noise=0.15, random_state=1234)
        x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
        return x[:2000], y[:2000], x[2000:], y[2000:], 2
    raise ValueError(f"unknown dataset {dataset!r}")


def noisy_labels(dataset: str, y, k: int, kind: str, rate: float, seed: int):
    from divweights_train import noise as N

    if rate == 0:
        return y.copy()
    if kind == "symmetric":
        return N.symmetric_noise(y, rate, k, rng=seed, variant="uniform" if k == 2 else "flip")[0]
    if dataset == "fashion-mnist":
        return N.apply_noise(f"asymmetric:{rate}", y, k, rng=seed, dataset="fashion-mnist")[0]
    if k == 2:
        return N.asymmetric_noise(y, rate, mapping={0: 1}, rng=seed, num_classes=2)[0]
    return N.pair_flip_noise(y, rate, k, rng=seed)[0]


# -- losses ------------------------------------------------------------------------------------------------------
def make_loss(method: str, rate: float):
    """``loss(logits, labels, clean_mask) -> scalar``."""
    import torch
    import torch.nn.functional as F
    from divweights_torch import ReweightedLoss

    if method == "ce":
        return lambda z, y, clean: F.cross_entropy(z, y)
    if method == "filter":
        return lambda z, y, clean: F.cross_entropy(z[clean], y[clean]) if bool(clean.any()) else z.sum() * 0
    if method == "bare":

        def bare(z, y, clean, k=0.0):
            losses = F.cross_entropy(z, y, reduction="none")
            p = torch.exp(-losses.detach())
            onehot = F.one_hot(y, z.shape[1]).to(p.dtype)
            count = onehot.sum(0)
            mean = (onehot * p[:, None]).sum(0) / count.clamp_min(1)
            var = (onehot * (p[:, None] - mean) ** 2).sum(0) / (count - 1).clamp_min(1)
            keep = (p >= (mean + k * var.sqrt())[y]).to(losses.dtype)
            return (keep * losses).sum() / keep.sum().clamp_min(1)

        return bare
    if method == "term":
        fn = ReweightedLoss(lam=0.5)
    elif method == "auto":
        fn = ReweightedLoss()
    elif method.startswith("sharp:"):
        fn = ReweightedLoss(noise_sharpness=float(method.split(":")[1]))
    elif method.startswith("momentum:"):
        fn = ReweightedLoss(noise_momentum=float(method.split(":")[1]))
    elif method == "informed":
        fn = ReweightedLoss(delta=min(max(-math.log(1 - rate), 0.1), 1.6))
    elif method.startswith("fixed:"):
        fn = ReweightedLoss(delta=float(method.split(":")[1]))
    else:
        raise ValueError(f"unknown method {method!r}")
    return lambda z, y, clean: fn(z, y)


def run(dataset: str, kind: str, rate: float, seed: int, method: str, epochs: int | None = None, data=None) -> float:
    import torch
    from torch import nn

    x, y, xt, yt, k = data if data is not None else load(dataset)
    epochs = EPOCHS[dataset] if epochs is None else epochs
    yn = np.asarray(noisy_labels(dataset, y, k, kind, rate, seed))
    torch.manual_seed(seed)
    X, Y, clean = torch.from_numpy(x), torch.from_numpy(yn).long(), torch.from_numpy(yn == y)
    model = nn.Sequential(nn.Linear(X.shape[1], 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, k))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = make_loss(method, rate)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(Y), generator=gen)
        for i in range(0, len(Y), 128):
            b = perm[i : i + 128]
            loss = loss_fn(model(X[b]), Y[b], clean[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return float((model(torch.from_numpy(xt)).argmax(1) == torch.from_numpy(yt)).float().mean())


# -- the same comparison in the training CLI ----------------------------------------------------------------------
#: CLI noise spec of a (dataset, kind, rate) cell: the plain loop's draws where the CLI has them.  For two-moons the
#: asymmetric column is ``pairflip:0.4``, which on two classes flips 40% of each class (the issue's CLI case); the
#: plain loop's one-directional flip has no CLI spelling.
def cli_noise(dataset: str, kind: str, rate: float) -> str:
    if rate == 0:
        return "none"
    if kind == "symmetric":
        return f"symmetric-uniform:{rate}" if dataset == "two-moons" else f"symmetric:{rate}"
    return f"asymmetric:{rate}" if dataset == "fashion-mnist" else f"pairflip:{rate}"


def run_cli(dataset: str, kind: str, rate: float, seed: int, method: str, epochs: int | None = None) -> float:
    """Final clean test accuracy of one ``divweights-train`` run with the method's CLI defaults: ``ce``, ``filter``
    (the oracle), ``auto`` (``--method ciw``, its default ``--delta auto``), ``informed`` (``--delta noise``) and
    ``fixed:D`` (``--delta D``)."""
    import tempfile

    from divweights_train.config import TrainConfig
    from divweights_train.trainer_torch import train

    kw = {
        "dataset": dataset,
        "noise": cli_noise(dataset, kind, rate),
        "seed": seed,
        "threads": 1,
        "quiet": True,
        "plots": False,
        "save_weights": False,
    }
    if epochs is not None:
        kw["epochs"] = epochs
    if method in ("ce", "filter"):
        kw["method"] = "ce" if method == "ce" else "oracle"
    elif method in ("auto", "informed") or method.startswith("fixed:"):
        kw["method"] = "ciw"
        kw["delta"] = {"auto": "auto", "informed": "noise"}.get(method) or float(method.split(":")[1])
    else:
        raise ValueError(f"method {method!r} has no CLI spelling")
    with tempfile.TemporaryDirectory() as out:
        return float(train(TrainConfig(out=out, **kw), progress=False, log=lambda s: None).summary["final_test_acc"])


CLI_METHODS = ("ce", "filter", *(f"fixed:{d}" for d in RADII), "informed", "auto")


# -- driver ------------------------------------------------------------------------------------------------------
def _key(r):
    return (r["dataset"], r["noise"], r["rate"], r["seed"], r["method"])


def _work(job):
    import torch

    torch.set_num_threads(1)
    dataset, kind, rate, seed, method, epochs, cli = job
    t = time.perf_counter()
    if cli:
        acc = run_cli(dataset, kind, rate, seed, method, epochs)
        extra = {"cli": True, "spec": cli_noise(dataset, kind, rate)}
    else:
        acc = run(dataset, kind, rate, seed, method, epochs, data=_DATA.get(dataset) or load(dataset))
        extra = {"epochs": EPOCHS[dataset] if epochs is None else epochs}
    return {
        "dataset": dataset,
        "noise": kind,
        "rate": rate,
        "seed": seed,
        "method": method,
        **extra,
        "accuracy": acc,
        "seconds": round(time.perf_counter() - t, 1),
    }


_DATA: dict = {}


def table(rows, methods=METHODS) -> str:
    """Markdown table (mean accuracy in %) and the acceptance checks per dataset and noise level."""
    acc = defaultdict(list)
    for r in rows:
        acc[(r["dataset"], r["noise"], r["rate"], r["method"])].append(100 * r["accuracy"])
    out = []
    for dataset in DATASETS:
        levels = [(kd, rt) for kd, rt in NOISES if any(k[:3] == (dataset, kd, rt) for k in acc)]
        if not levels:
            continue
        head = ["method"] + [f"{'sym' if kd == 'symmetric' else 'asym'} {rt:g}" for kd, rt in levels]
        out += [
            f"\n**{dataset}** (final test accuracy %, mean over seeds)\n",
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
        ]
        mean = {}
        for m in methods:
            cells = []
            for kd, rt in levels:
                v = acc.get((dataset, kd, rt, m))
                mean[(m, kd, rt)] = statistics.fmean(v) if v else None
                cells.append(
                    f"{statistics.fmean(v):.1f}" + (f" ±{statistics.stdev(v):.1f}" if len(v) > 1 else "") if v else "-"
                )
            out.append(f"| {m} | " + " | ".join(cells) + " |")
        checks = []
        for kd, rt in levels:
            fixed = [mean[(f"fixed:{d}", kd, rt)] for d in RADII if mean.get((f"fixed:{d}", kd, rt)) is not None]
            a, ce, flt = mean.get(("auto", kd, rt)), mean.get(("ce", kd, rt)), mean.get(("filter", kd, rt))
            if a is None or not fixed:
                checks.append("-")
                continue
            parts = [f"auto - best fixed {a - max(fixed):+.1f}"]
            if rt == 0 and ce is not None:
                parts.append(f"auto - CE {a - ce:+.1f}")
            if ce is not None and flt is not None and flt - ce >= 1.0:  # a gap of rounding says nothing
                parts.append(f"gap closed {100 * (a - ce) / (flt - ce):.0f}%")
            checks.append(", ".join(parts))
        out.append("| **checks** | " + " | ".join(checks) + " |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/adaptive_radius.jsonl", help="JSON-lines results file (appended)")
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=None, help="override the per-dataset epochs (20 / 40 / 40)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel processes (1 thread each)")
    ap.add_argument("--quick", action="store_true", help="one seed, digits and two-moons only")
    ap.add_argument("--tiny", action="store_true", help="smoke test: two-moons at 40%% noise, 3 epochs, 3 methods")
    ap.add_argument("--table", metavar="JSONL", help="only print the table of a results file")
    ap.add_argument(
        "--cli",
        action="store_true",
        help="the same grid through the training CLI (its models, optimiser and schedule per dataset; "
        "methods ce, filter, fixed:D, informed, auto; default --out runs/adaptive_radius_cli.jsonl)",
    )
    args = ap.parse_args(argv)
    if args.cli:
        if args.out == ap.get_default("out"):
            args.out = "runs/adaptive_radius_cli.jsonl"
        if args.methods == list(METHODS):
            args.methods = list(CLI_METHODS)
    if args.table:
        rows = [json.loads(line) for line in Path(args.table).read_text().splitlines() if line.strip()]
        print(table(rows, methods=[m for m in METHODS if any(r["method"] == m for r in rows)]))
        return 0
    noises = NOISES
    if args.quick:
        args.seeds, args.datasets = 1, [d for d in args.datasets if d != "fashion-mnist"]
    if args.tiny:
        args.seeds, args.datasets, args.epochs, args.jobs = 1, ["two-moons"], 3, 1
        args.methods, noises = ["ce", "fixed:0.5", "auto"], (("symmetric", 0.4),)
        if args.out == ap.get_default("out"):
            import tempfile

            args.out = str(Path(tempfile.mkdtemp()) / "tiny.jsonl")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {_key(json.loads(line)) for line in out.read_text().splitlines() if line.strip()} if out.exists() else set()
    jobs = [
        (d, kd, rt, s, m, args.epochs, args.cli)
        for d in args.datasets
        for kd, rt in noises
        for s in range(args.seeds)
        for m in args.methods
        if (d, kd, rt, s, m) not in done
    ]
    print(f"{len(jobs)} runs to do ({len(done)} already in {out}), {args.jobs} at a time", flush=True)
    for d in args.datasets if not args.cli else ():  # load once in the parent; forked workers share it
        _DATA[d] = load(d)
    import multiprocessing as mp

    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with the train extra

        def tqdm(it, **_):
            return it

    with mp.get_context("fork").Pool(args.jobs) as pool, out.open("a") as f:
        for r in tqdm(pool.imap_unordered(_work, jobs), total=len(jobs), desc="runs", file=sys.stdout):
            f.write(json.dumps(r) + "\n")
            f.flush()
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    print(table(rows, methods=CLI_METHODS if args.cli else METHODS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
