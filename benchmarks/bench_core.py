"""Core benchmark: medians and ratios measured in one run.

1. Closed-form class weights (128 x 10, ReverseKL) vs the same problem in cvxpy
   (goal: >= 1000x faster, same optimum to 1e-6).
2. Exact-radius KL vs fixed-lam softmin at n = 1e6 (goal: <= 4x).
3. Instance weights at n = 128 and n = 1e6 for every divergence and form.

Run: ``python benchmarks/bench_core.py [--quick]``; prints Markdown tables.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

import divweights as dw  # noqa: E402
from _timing import fmt_time, interleaved  # noqa: E402

CASES = [
    (dw.KL(), "lam"), (dw.KL(), "delta"), (dw.KL(), "temperature"),
    (dw.ReverseKL(), "lam"), (dw.ReverseKL(), "delta"),
    (dw.Alpha(0.1), "temperature"), (dw.Alpha(0.5), "lam"), (dw.Alpha(0.5), "delta"),
    (dw.ChiSquared(), "lam"), (dw.ChiSquared(), "delta"),
    (dw.TotalVariation(), "lam"), (dw.TotalVariation(), "delta"),
    (dw.SquaredL2(), "delta"),
]
STRENGTH = {"lam": 0.5, "delta": 0.3, "temperature": 0.5}


def class_vs_cvxpy(rounds: int):
    from divweights import testing as reference

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(128, 10)) * 2
    L = -(logits - np.log(np.exp(logits).sum(-1, keepdims=True)))
    y = rng.integers(0, 10, size=128)
    y_soft = 0.7 * np.eye(10)[y] + 0.3 * np.eye(10)[rng.integers(0, 10, size=128)]
    rows = []
    for name, targets in (("one-hot labels", y), ("soft (mixup) targets", y_soft)):
        fast = lambda t=targets: dw.class_weights(L, t, dw.ReverseKL(), gamma=0.1)  # noqa: E731
        slow = lambda t=targets: reference.class_weights(L, t, dw.ReverseKL(), gamma=0.1)  # noqa: E731
        med = interleaved({"closed": fast}, rounds=rounds * 3, inner=5)
        med.update(interleaved({"cvxpy": slow}, rounds=max(3, rounds // 5), warmup=1))
        v_fast, v_ref = fast(), slow()
        gap = float(np.max(np.abs((v_fast * L).sum(-1) - (v_ref * L).sum(-1))))
        rows.append((name, med["closed"], med["cvxpy"], gap))
    print("\n### Class weights, 128 x 10, ReverseKL (gamma = 0.1): closed form vs cvxpy\n")
    print("| targets | divweights | cvxpy (Clarabel) | speed-up | max objective gap |")
    print("|---|---:|---:|---:|---:|")
    for name, a, b, gap in rows:
        print(f"| {name} | {fmt_time(a)} | {fmt_time(b)} | {b / a:,.0f}x | {gap:.1e} |")


def exact_kl_vs_softmin(rounds: int, n: int):
    rng = np.random.default_rng(1)
    l = rng.exponential(size=n)
    cands = {"softmin (lam=1)": lambda: dw.instance_weights(l, dw.KL(), lam=1.0)}
    for delta in (0.01, 0.3, 2.0):
        cands[f"exact KL (delta={delta})"] = lambda d=delta: dw.instance_weights(l, dw.KL(), delta=d)
    med = interleaved(cands, rounds=rounds)
    base = med["softmin (lam=1)"]
    print(f"\n### Exact-radius KL vs fixed-lam softmin, n = {n:,} (float64)\n")
    print("| method | median | ratio to softmin | KL(w, u) - delta |")
    print("|---|---:|---:|---:|")
    u = np.full(n, 1.0 / n)
    for name, t in med.items():
        if "delta" in name:
            delta = float(name.split("=")[1].rstrip(")"))
            resid = f"{float(dw.KL()(dw.instance_weights(l, dw.KL(), delta=delta), u)) - delta:.1e}"
        else:
            resid = ""
        print(f"| {name} | {fmt_time(t)} | {t / base:.2f}x | {resid} |")


def all_divergences(rounds: int, sizes):
    rng = np.random.default_rng(2)
    print("\n### Instance weights, every divergence and form (float64, NumPy)\n")
    header = " | ".join(f"n = {n:,}" for n in sizes)
    print(f"| divergence | form | {header} |")
    print("|---|---|" + "---:|" * len(sizes))
    results = {}
    for n in sizes:
        l = rng.exponential(size=n)
        cands = {
            (repr(d), form): (lambda d=d, f=form, l=l: dw.instance_weights(l, d, **{f: STRENGTH[f]}))
            for d, form in CASES
        }
        med = interleaved(cands, rounds=rounds if n < 10**5 else max(3, rounds // 3), inner=20 if n < 10**4 else 1)
        for key, t in med.items():
            results.setdefault(key, {})[n] = t
    for (d, form), by_n in results.items():
        cells = " | ".join(fmt_time(by_n[n]) for n in sizes)
        print(f"| `{d}` | {form} | {cells} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds, n = 1e5 instead of 1e6")
    args = parser.parse_args(argv)
    rounds = 5 if args.quick else 15
    big = 10**5 if args.quick else 10**6
    class_vs_cvxpy(rounds)
    exact_kl_vs_softmin(rounds, big)
    all_divergences(rounds, (128, big))


if __name__ == "__main__":
    main()
