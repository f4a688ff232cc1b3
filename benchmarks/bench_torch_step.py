"""Training-step overhead of reweighting in PyTorch: CE vs CIW vs CICW vs CICW-M (small CNN, CPU).

One SGD step (forward, loss, backward, update) of the demo's small CNN
(``SmallCNN``, width 16) on a batch of 128 single-channel 28x28 inputs with
10 classes, for each method with the library's defaults (see
``benchmarks/_torch_steps.py``), eager and under ``torch.compile(fullgraph=True)``: the whole
step in one graph ("compiled"), and the model and what follows its logits compiled separately
("compiled parts", the way to compile CICW-M: its whole step, two forward passes in one graph,
ran slower than eager, 2.75x the CE step against 1.87x).
All steps run interleaved, in a shuffled order in every round, so that they
see the same load on the machine. The table reports the median time per step
and the median over rounds of the ratio to the CE step *of the same round and
mode* (paired), against the goals of issue #10 (CIW and CICW <= 1.03x, CICW-M
<= 1.3x), with PASS/FAIL. "CE again" is an A/A control: its distance from
1.000 is the noise floor of the run. A step that does not compile is reported
as "not compilable" with the reason, and the others still run.

Usage::

    python benchmarks/bench_torch_step.py            # eager + compiled, 15 rounds x 5 steps (several minutes)
    python benchmarks/bench_torch_step.py --quick    # eager only, 7 rounds x 3 steps (make bench)
    python benchmarks/bench_torch_step.py --tiny     # seconds: checks that the script runs (tests)

The default clock is the process's CPU time with one torch thread, which is
less sensitive than the elapsed time to other programs on the machine.
``--profile`` also times the loss calls alone on fixed logits and counts the
aten operators they dispatch.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from collections import Counter

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _timing as timing
from _torch_steps import (
    GOALS,
    METHODS,
    build_runner,
    describe_failure,
    make_loss,
    quiet_compiler,
)
from divweights_train.models_torch import SmallCNN

CLASSES = 10


def run(args) -> list[dict]:
    """Time every method and mode; one row per (mode, method)."""
    torch.manual_seed(args.seed)
    base = SmallCNN(1, CLASSES, width=args.width)
    x = torch.randn(args.batch, 1, 28, 28)
    y = torch.randint(0, CLASSES, (args.batch,))
    modes = ["eager"] + (["compiled", "compiled parts"] if args.compile else [])
    if args.compile:
        quiet_compiler()
    rows, runners = [], {}
    for mode in modes:
        for method in METHODS:
            t0 = time.perf_counter()
            model, parts = base, {}
            if mode == "compiled parts":  # the model and what follows the logits, each compiled on its own
                model = copy.deepcopy(base)
                parts = {"copy_model": False, "step_model": torch.compile(model)}
            runner, reason = build_runner(
                model,
                method,
                x,
                y,
                num_classes=CLASSES,
                compile_scope={"eager": None, "compiled": "step", "compiled parts": "loss"}[mode],
                warmup=args.warmup,
                tag=f"{mode}_{method.name.replace(' ', '_')}",
                **parts,
            )
            row = {
                "mode": mode,
                "method": method,
                "reason": reason,
                "warmup_s": time.perf_counter() - t0,
                "graphs": runner.graphs if runner else None,
            }
            rows.append(row)
            if runner is not None:
                runners[(mode, method.name)] = runner.step

    def dropped(key, exc):
        row = next(r for r in rows if (r["mode"], r["method"].name) == key)
        row["reason"] = describe_failure(exc, key[0] != "eager")

    times = timing.time_rounds(runners, args, on_error=dropped)
    by_mode = {mode: {name: ts for (m, name), ts in times.items() if m == mode} for mode in modes}
    for row in rows:
        if not row["reason"]:
            row.update(timing.summarise(by_mode[row["mode"]], row["method"].name))
    return rows


def table(rows, args) -> str:
    title = (
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), SmallCNN width {args.width}, "
        f"batch {args.batch} x 1 x 28 x 28, {args.rounds} interleaved rounds x {args.steps} steps, "
        f"{args.clock} clock"
    )
    lines = timing.table_head(title, ["mode", "step", *timing.STEP_COLUMNS])
    for r in rows:
        m = r["method"]
        goal = timing.goal_cell(m.goal)
        if r["reason"]:
            lines.append(f"| {r['mode']} | {m.name} | – | – | {goal} | {r['reason']} |")
            continue
        result = timing.verdict(r["ratio"], m.goal)
        if r["mode"] != "eager":
            result = f"{result} ({r['graphs']} graph{'s' if r['graphs'] != 1 else ''})".strip()
        lines.append(f"| {r['mode']} | {m.name} | {r['median_s'] * 1e3:.2f} | {r['ratio']:.3f} | {goal} | {result} |")
    lines += timing.method_notes((m.name, m.description) for m in METHODS)
    return "\n".join(lines)


# --------------------------------------------------------------------------- --profile
def count_ops(fn) -> int:
    """Number of aten operators dispatched by ``fn()``."""
    from torch.utils._python_dispatch import TorchDispatchMode

    counts = Counter()

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            counts[func.overloadpacket.__name__] += 1
            return func(*args, **(kwargs or {}))

    with Count():
        fn()
    return sum(counts.values())


def profile(batch: int) -> str:
    """Per-call time and aten ops of each method's loss on fixed logits (forward + backward)."""
    torch.manual_seed(0)
    logits0 = torch.randn(batch, CLASSES)
    y = torch.randint(0, CLASSES, (batch,))
    lines = [
        "",
        "| loss on fixed logits, forward + backward | µs / call | aten ops |",
        "|---|---:|---:|",
    ]
    for name, kind in (
        ("CE", "ce"),
        ("CIW", "ciw"),
        ("CICW", "cicw"),
        ("CICW-M's loss (no mixup)", "cicw-m"),
    ):
        loss_fn = make_loss(kind)

        def call(loss_fn=loss_fn):
            z = logits0.detach().requires_grad_()
            loss = F.cross_entropy(z, y) if loss_fn is None else loss_fn(z, y)
            loss.backward()

        timer = timing.clock_timer(time.process_time)
        call()
        t = timer(call, 200)
        lines.append(f"| {name} | {t * 1e6:.0f} | {count_ops(call)} |")
    return "\n".join(lines)


def parse_args(argv=None):
    quick = (
        "7 rounds x 3 steps, eager only (about a minute)",
        {"rounds": 7, "steps": 3},
    )
    p = timing.step_parser(__doc__, steps=5, quick=quick, width="SmallCNN")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also time torch.compile(fullgraph=True) steps (default: on, off with --quick/--tiny)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="also time and count the ops of the loss calls alone",
    )
    args = p.parse_args(argv)
    if args.compile is None:
        args.compile = not (args.quick or args.tiny)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = run(args)
    print(table(rows, args))
    if args.profile:
        print(profile(args.batch))
    print(timing.goals_line(GOALS, " of the same mode"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
