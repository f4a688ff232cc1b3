"""Core host-speed benchmark (NumPy): targets of issue #10 item 4, with PASS/FAIL.

Every figure is a median over interleaved rounds (each round calls every
candidate once) of the CPU time of this process (``time.process_time``: other
processes on a shared machine do not inflate it), and every target is a
*ratio measured in the same run*.  Targets (float32 and float64):

* exact-radius KL at n = 1e6 <= 4x a plain NumPy softmin
  (``e = np.exp(-(l - l.min()) / lam); e / e.sum()``);
* fixed-lam KL <= 1.5x the same softmin;
* peak extra memory of both <= 3x the input (``tracemalloc``);
* total-variation instance weights faster than one full stable sort of the
  losses (a partition suffices);
* one-hot class weights at 128 x 10 (ReverseKL and TotalVariation) within 2x a
  hand-written NumPy formula, and >= 1000x faster than the published per-step
  cvxpy formulation (a fresh cvxpy problem per step, default solver).

Run: ``python benchmarks/bench_core.py [--quick | --tiny] [--check]``.  It
prints Markdown tables; ``--check`` exits with status 1 when a target fails.
``--tiny`` only checks that everything runs (small sizes, no timing verdicts).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

import _timing
from _timing import fmt_time

import divweights as dw

CASES = [
    (dw.KL(), "lam"), (dw.KL(), "delta"), (dw.KL(), "temperature"),
    (dw.ReverseKL(), "lam"), (dw.ReverseKL(), "delta"),
    (dw.Alpha(0.1), "temperature"), (dw.Alpha(0.5), "lam"), (dw.Alpha(0.5), "delta"),
    (dw.ChiSquared(), "lam"), (dw.ChiSquared(), "delta"),
    (dw.TotalVariation(), "lam"), (dw.TotalVariation(), "delta"),
    (dw.SquaredL2(), "delta"),
]  # fmt: skip
STRENGTH = {"lam": 0.5, "delta": 0.3, "temperature": 0.5}


def interleaved(candidates: dict, *, rounds: int = 11, inner: int = 1, warmup: int = 2) -> dict:
    """``{name: median CPU seconds per call}`` (``_timing.interleaved`` on the process's CPU time)."""
    return _timing.interleaved(candidates, rounds=rounds, inner=inner, warmup=warmup, clock=time.process_time)


class Targets:
    """Collects ``(name, measured, bound, passed)`` rows."""

    def __init__(self, verdicts: bool):
        self.rows = []
        self.verdicts = verdicts

    def at_most(self, name, value, bound, fmt="{:.2f}x"):
        self.rows.append((name, fmt.format(value), f"<= {fmt.format(bound)}", value <= bound))

    def at_least(self, name, value, bound, fmt="{:,.0f}x"):
        self.rows.append((name, fmt.format(value), f">= {fmt.format(bound)}", value >= bound))

    def report(self) -> bool:
        print("\n### Targets (issue #10, item 4)\n")
        print("| target | measured | goal | verdict |")
        print("|---|---:|---:|---|")
        for name, value, goal, ok in self.rows:
            verdict = ("PASS" if ok else "FAIL") if self.verdicts else "(tiny run: not judged)"
            print(f"| {name} | {value} | {goal} | {verdict} |")
        return all(ok for *_, ok in self.rows) or not self.verdicts


def softmin(l, lam):
    """The plain NumPy softmin the targets are measured against."""
    e = np.exp(-(l - l.min()) / lam)
    return e / e.sum()


def peak_extra_bytes(fn) -> int:
    """Peak memory allocated by ``fn()`` beyond what it returns (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        out = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del out
    return peak - base


def _solvers(l, lam, delta):
    """The KL solvers alone, as the public function calls them (no argument handling)."""
    from divweights._array import prepare, scalar
    from divweights.solvers.kl import kl_constrained, kl_penalty

    x, work = prepare(l, "losses")
    lam_s, delta_s = scalar(work, lam), scalar(work, delta)
    return (lambda: kl_penalty(x, lam_s, work)), (lambda: kl_constrained(x, delta_s, work))


def instance_kl(targets: Targets, n: int, rounds: int):
    rng = np.random.default_rng(1)
    print(f"\n### Instance weights at n = {n:,}: ratios to a plain NumPy softmin (same run)\n")
    print("| dtype | softmin | KL lam | KL exact (delta=0.3) | TV delta | np.sort (stable) | "
          "lam / softmin | exact / softmin | TV / sort | KL(w,u) - delta |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    lam, delta = 1.0, 0.3
    solver_rows = []
    for dtype in (np.float32, np.float64):
        l = rng.exponential(size=n).astype(dtype)
        lam_solver, exact_solver = _solvers(l, lam, delta)
        cands = {
            "softmin": lambda l=l: softmin(l, lam),
            "lam": lambda l=l: dw.instance_weights(l, dw.KL(), lam=lam),
            "exact": lambda l=l: dw.instance_weights(l, dw.KL(), delta=delta),
            "tv": lambda l=l: dw.instance_weights(l, dw.TotalVariation(), delta=delta),
            "sort": lambda l=l: np.sort(l, kind="stable"),
            "lam solver": lam_solver,
            "exact solver": exact_solver,
        }
        med = interleaved(cands, rounds=rounds)
        w = dw.instance_weights(l, dw.KL(), delta=delta).astype(np.float64)
        resid = float(np.sum(w * np.log(np.where(w > 0, w * n, 1.0)))) - delta
        name = np.dtype(dtype).name
        r_lam, r_exact, r_tv = med["lam"] / med["softmin"], med["exact"] / med["softmin"], med["tv"] / med["sort"]
        print(f"| {name} | {fmt_time(med['softmin'])} | {fmt_time(med['lam'])} | {fmt_time(med['exact'])} | "
              f"{fmt_time(med['tv'])} | {fmt_time(med['sort'])} | {r_lam:.2f}x | {r_exact:.2f}x | {r_tv:.2f}x | "
              f"{resid:.1e} |")  # fmt: skip
        targets.at_most(f"exact-radius KL / softmin, n = {n:,}, {name}", r_exact, 4.0)
        targets.at_most(f"fixed-lam KL / softmin, n = {n:,}, {name}", r_lam, 1.5)
        targets.at_most(f"TV delta / full stable sort, n = {n:,}, {name}", r_tv, 1.0)
        for label, fn in (("exact-radius KL", cands["exact"]), ("fixed-lam KL", cands["lam"])):
            targets.at_most(f"peak extra memory of {label} / input, {name}", peak_extra_bytes(fn) / l.nbytes, 3.0)
        solver_rows.append(
            (name, med["lam solver"] / med["softmin"], med["exact solver"] / med["softmin"],
             peak_extra_bytes(lam_solver) / l.nbytes, peak_extra_bytes(exact_solver) / l.nbytes)
        )  # fmt: skip
    print("\nThe solvers alone (``divweights.solvers.kl``, without the public functions' argument handling):\n")
    print("| dtype | lam / softmin | exact / softmin | lam memory / input | exact memory / input |")
    print("|---|---:|---:|---:|---:|")
    for name, r_lam, r_exact, m_lam, m_exact in solver_rows:
        print(f"| {name} | {r_lam:.2f}x | {r_exact:.2f}x | {m_lam:.2f}x | {m_exact:.2f}x |")


def small_batches(rounds: int, sizes=(128, 4096)):
    """Small batches, where Python overhead dominates: ratios to the plain softmin (reported, not judged)."""
    rng = np.random.default_rng(3)
    print("\n### Small batches (float64): per-call overhead, ratios to a plain NumPy softmin (same run)\n")
    print("| n | softmin | KL lam | KL exact (delta=0.3) | lam / softmin | exact / softmin |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        l = rng.exponential(size=n)
        cands = {
            "softmin": lambda l=l: softmin(l, 1.0),
            "lam": lambda l=l: dw.instance_weights(l, dw.KL(), lam=1.0),
            "exact": lambda l=l: dw.instance_weights(l, dw.KL(), delta=0.3),
        }
        med = interleaved(cands, rounds=rounds * 2, inner=max(1, 20000 // n))
        print(f"| {n:,} | {fmt_time(med['softmin'])} | {fmt_time(med['lam'])} | {fmt_time(med['exact'])} | "
              f"{med['lam'] / med['softmin']:.1f}x | {med['exact'] / med['softmin']:.1f}x |")  # fmt: skip


def _hand_onehot(L, y, keep):
    """Hand-written one-hot class weights: ``keep`` on the label, the rest on the argmin."""
    rows = np.arange(L.shape[0])
    m = L.min(axis=1, keepdims=True)
    best = (L == m).astype(L.dtype)
    best /= best.sum(axis=1, keepdims=True)
    keep = np.where(L[rows, y] == m[:, 0], 1.0, keep)[:, None]
    v = (1.0 - keep) * best
    v[rows, y] += keep[:, 0]
    return v


def _published_cvxpy_kl(L, y, gamma):
    """The published per-step formulation: a fresh cvxpy problem, default solver, 1e-6 inside both logs."""
    import cvxpy as cp

    n, k = L.shape
    Y = np.eye(k)[y]
    V = cp.Variable((n, k), nonneg=True)
    kl = cp.sum(cp.multiply(Y, np.log(Y + 1e-6)) - cp.multiply(Y, cp.log(V + 1e-6)), axis=1)
    problem = cp.Problem(cp.Minimize(cp.sum(cp.multiply(V, L))), [cp.sum(V, axis=1) == 1, kl <= gamma])
    problem.solve()
    return V.value


def class_onehot(targets: Targets, rounds: int, with_cvxpy: bool):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(128, 10)) * 2
    L = -(logits - np.log(np.exp(logits).sum(-1, keepdims=True)))
    y = rng.integers(0, 10, size=128)
    gamma_rkl, gamma_tv = 0.1, 0.2
    cands = {
        "ReverseKL": lambda: dw.class_weights(L, y, dw.ReverseKL(), gamma=gamma_rkl),
        "hand ReverseKL": lambda: _hand_onehot(L, y, np.exp(-gamma_rkl)),
        "TotalVariation": lambda: dw.class_weights(L, y, dw.TotalVariation(), gamma=gamma_tv),
        "hand TotalVariation": lambda: _hand_onehot(L, y, 1.0 - gamma_tv),
    }
    np.testing.assert_allclose(cands["ReverseKL"](), cands["hand ReverseKL"](), atol=1e-12)
    np.testing.assert_allclose(cands["TotalVariation"](), cands["hand TotalVariation"](), atol=1e-12)
    med = interleaved(cands, rounds=rounds * 4, inner=20)
    print("\n### One-hot class weights, 128 x 10 (float64)\n")
    print("| divergence | divweights | hand-written NumPy | ratio | published cvxpy (per step) | speed-up |")
    print("|---|---:|---:|---:|---:|---:|")
    slow = None
    if with_cvxpy:
        slow = interleaved(
            {"cvxpy": lambda: _published_cvxpy_kl(L, y, gamma_rkl)}, rounds=max(3, rounds // 3), warmup=1
        )
        v_ref = _published_cvxpy_kl(L, y, gamma_rkl)
        gap = float(np.max(np.abs((cands["ReverseKL"]() * L).sum(-1) - (v_ref * L).sum(-1))))
    for name in ("ReverseKL", "TotalVariation"):
        ratio = med[name] / med[f"hand {name}"]
        targets.at_most(f"one-hot {name} class weights / hand formula, 128 x 10", ratio, 2.0)
        extra = "| | |"
        if slow is not None and name == "ReverseKL":
            speedup = slow["cvxpy"] / med[name]
            targets.at_least("published per-step cvxpy / one-hot ReverseKL class weights", speedup, 1000.0)
            extra = f"| {fmt_time(slow['cvxpy'])} (objective gap {gap:.1e}) | {speedup:,.0f}x |"
        print(f"| {name} | {fmt_time(med[name])} | {fmt_time(med[f'hand {name}'])} | {ratio:.2f}x {extra}")


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="fewer rounds (same sizes and targets)")
    size.add_argument("--tiny", action="store_true", help="smoke run: tiny sizes, no cvxpy, targets not judged")
    parser.add_argument("--check", action="store_true", help="exit with status 1 if a target fails")
    parser.add_argument("--all", action="store_true", help="also time every divergence and form")
    args = parser.parse_args(argv)
    rounds = 2 if args.tiny else 5 if args.quick else 11
    big = 2000 if args.tiny else 10**6
    targets = Targets(verdicts=not args.tiny)
    instance_kl(targets, big, rounds)
    small_batches(rounds, (128,) if args.tiny else (128, 4096))
    class_onehot(targets, rounds, with_cvxpy=not args.tiny)
    if args.all:
        all_divergences(rounds, (128, big))
    ok = targets.report()
    return 1 if (args.check and not ok) else 0


if __name__ == "__main__":
    sys.exit(main())
