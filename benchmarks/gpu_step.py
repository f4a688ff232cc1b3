"""GPU training-step benchmark: PreAct ResNet-18, CIFAR-shaped batches, CE vs CIW vs CICW vs CICW-M.

One SGD step (forward, loss, backward, update) of ``PreActResNet18`` from
``divweights_train.models_torch`` on random CIFAR-shaped batches (128 x 3 x 32
x 32, 10 classes), for each method with the library's defaults (see
``benchmarks/_torch_steps.py``), in fp32 and under bf16 autocast, eager and
compiled. Within each (precision, mode) group the methods run interleaved, in
a shuffled order in every round; the table reports the median milliseconds per
step (CUDA events around ``--steps`` steps) and the median over rounds of the
ratio to the CE step of the same round, against the goals of issue #10 (CIW and
CICW <= 1.03x, CICW-M <= 1.3x; for compiled steps the issue's aim is an
overhead <= 3% of the CE step). "CE again" is an A/A control (the noise floor).

Compiled steps: by default (``--compile-scope loss``) the model is compiled
once per precision and shared by the methods, and what follows the logits
(weights, mixup, loss) is compiled with ``fullgraph=True`` per method, so that
the whole run stays within its time budget; ``--compile-scope step`` compiles
each method's whole forward + loss as one graph (slower to compile). A method
that does not compile is reported as "not compilable" and the others still run.
Work that would, at the slowest pace seen so far, end after ``--budget-s``
seconds is skipped and reported (default 165 s, so that the script finishes in
under 3 minutes on an H200).

Usage::

    python benchmarks/gpu_step.py                          # on a CUDA GPU
    python benchmarks/gpu_step.py --device cpu --tiny      # seconds on a CPU: checks that the script runs

Without a GPU and without ``--device cpu`` it prints a one-line message and
exits with status 0 (so ``make bench`` goes on). Nothing else here needs a GPU.
"""

from __future__ import annotations

import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _timing as timing
from _torch_steps import (
    GOALS,
    METHODS,
    build_runner,
    calls,
    describe_failure,
    own_code,
    quiet_compiler,
)
from divweights_train.models_torch import PreActResNet18

CLASSES = 10
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


def cuda_timer(fn, repeat: int) -> float:
    """Seconds per call of ``fn`` from CUDA events around ``repeat`` calls (GPU time, host gaps included)."""
    start, end = (
        torch.cuda.Event(enable_timing=True),
        torch.cuda.Event(enable_timing=True),
    )
    start.record()
    for _ in range(repeat):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3 / repeat


def run(args, log=print) -> list[dict]:
    """Time every (mode, precision) group; one row per (mode, precision, method).

    Nothing starts that would, at the slowest pace seen so far (the longest
    warm-up/compile of one method, the longest timing phase of one group),
    end after ``args.budget_s``; it is reported as skipped instead.
    """
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    size = args.image_size
    x = torch.randn(args.batch, 3, size, size, device=device)
    y = torch.randint(0, CLASSES, (args.batch,), device=device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        timer = cuda_timer
    else:
        timer = timing.clock_timer(time.perf_counter)
    quiet_compiler()
    t_start = time.perf_counter()
    slowest_build, slowest_timing = 0.0, 0.0
    skipped = f"skipped: would end past the {args.budget_s:.0f} s budget"

    def elapsed() -> float:
        return time.perf_counter() - t_start

    rows = []
    for mode in args.modes:
        for precision in args.precisions:
            group = [{"mode": mode, "precision": precision, "method": m, "reason": None} for m in METHODS]
            rows += group
            t_group = time.perf_counter()
            model = PreActResNet18(CLASSES).to(device)
            scope, step_model = None, None
            if mode == "compiled":
                scope = args.compile_scope
                if scope == "loss":  # one compiled model per group, shared by the methods
                    step_model = torch.compile(own_code(calls(model), f"model_{precision}"))
            runners = {}
            for r in group:
                m = r["method"]
                if elapsed() + slowest_build + slowest_timing > args.budget_s:
                    r["reason"] = skipped
                    continue
                t_build = time.perf_counter()
                runner, reason = build_runner(
                    model,
                    m,
                    x,
                    y,
                    num_classes=CLASSES,
                    compile_scope=scope,
                    autocast_dtype=PRECISIONS[precision],
                    copy_model=False,
                    step_model=step_model,
                    warmup=args.warmup,
                    tag=f"{mode}_{precision}_{m.name.replace(' ', '_')}",
                )
                if device.type == "cuda":
                    torch.cuda.synchronize()
                slowest_build = max(slowest_build, time.perf_counter() - t_build)
                r["reason"], r["graphs"] = reason, (runner.graphs if runner else None)
                if runner is not None:
                    runners[m.name] = runner.step
            warm_s = time.perf_counter() - t_group

            def dropped(name, exc, group=group, compiled=mode == "compiled"):
                next(r for r in group if r["method"].name == name)["reason"] = describe_failure(exc, compiled)

            t_timing = time.perf_counter()
            times = timing.time_rounds(runners, args, timer=timer, on_error=dropped)
            slowest_timing = max(slowest_timing, time.perf_counter() - t_timing)
            for r in group:
                if r["reason"] is None:
                    r.update(timing.summarise(times, r["method"].name))
            log(
                f"[{elapsed():5.0f} s] {mode} {precision}: warm-up/compile {warm_s:.0f} s, "
                f"timing {time.perf_counter() - t_timing:.0f} s",
                file=sys.stderr,
            )
    return rows


def table(rows, args) -> str:
    dev = args.device
    name = torch.cuda.get_device_name(0) if dev.startswith("cuda") else "CPU"
    title = (
        f"torch {torch.__version__} on {name}, PreActResNet18, batch {args.batch} x 3 x {args.image_size} x "
        f"{args.image_size}, {args.rounds} interleaved rounds x {args.steps} steps after {args.warmup} warm-up steps, "
        f"compile scope: {args.compile_scope}"
    )
    lines = timing.table_head(title, ["precision", "mode", "step", *timing.STEP_COLUMNS])
    for r in rows:
        m = r["method"]
        goal = timing.goal_cell(m.goal)
        head = f"| {r['precision']} | {r['mode']} | {m.name} |"
        if r["reason"]:
            lines.append(f"{head} – | – | {goal} | {r['reason']} |")
            continue
        lines.append(
            f"{head} {r['median_s'] * 1e3:.2f} | {r['ratio']:.3f} | {goal} | {timing.verdict(r['ratio'], m.goal)} |"
        )
    lines += timing.method_notes((m.name, m.description) for m in METHODS)
    return "\n".join(lines)


def parse_args(argv=None):
    tiny = (
        "batch 4, 16x16 images, eager only, 2 rounds x 1 step: a smoke test that runs on a CPU",
        {"batch": 4, "image_size": 16, "rounds": 2, "steps": 1, "warmup": 1},
    )
    p = timing.step_parser(__doc__, steps=10, tiny=tiny, rounds=7, warmup=5)
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument(
        "--precisions",
        default="fp32,bf16",
        help="comma-separated: fp32, bf16 (autocast)",
    )
    p.add_argument(
        "--modes",
        default=None,
        help="comma-separated: eager, compiled (default both; eager with --tiny)",
    )
    p.add_argument(
        "--compile-scope",
        choices=("loss", "step"),
        default="loss",
        help="loss: shared compiled model + per-method fullgraph loss (default); step: one graph per method",
    )
    p.add_argument(
        "--budget-s",
        type=float,
        default=150.0,
        help="start no new group after this many seconds",
    )
    args = p.parse_args(argv)
    if args.modes is None:
        args.modes = "eager" if args.tiny else "eager,compiled"
    args.precisions = [s.strip() for s in args.precisions.split(",") if s.strip()]
    args.modes = [s.strip() for s in args.modes.split(",") if s.strip()]
    bad = [s for s in args.precisions if s not in PRECISIONS] + [
        s for s in args.modes if s not in ("eager", "compiled")
    ]
    if bad:
        p.error(f"unknown precision or mode {bad}; precisions: fp32, bf16; modes: eager, compiled")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            "gpu_step: no CUDA GPU here (torch.cuda.is_available() is False); nothing to time. "
            "Use --device cpu --tiny to check the script on a CPU."
        )
        return 0
    t0 = time.perf_counter()
    rows = run(args)
    print(table(rows, args))
    print(
        timing.goals_line(GOALS, " of the same precision and mode"),
        f"Total {time.perf_counter() - t0:.0f} s.",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
