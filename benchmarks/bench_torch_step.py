"""Training-step time of a small CNN on the CPU: CE vs CIW vs CICW vs CICW-M.

One SGD step (forward, loss, backward, update) on a batch of 128 single-channel
28x28 inputs with 10 classes.  The variants run interleaved, in a shuffled
order in every round, so that they all see the same load on the machine; the
table reports the median time per step over the rounds and the median over
rounds of the ratio to the cross-entropy time of the same round (a paired
comparison, robust to slow drifts in the machine's load).

Usage::

    python benchmarks/bench_torch_step.py [--rounds 15] [--steps 5] [--threads 1] [--clock cpu] [--profile]

The default clock is the process's CPU time, which is less sensitive than the
elapsed time to other programs sharing the machine.

``--profile`` also times the weight computations alone on fixed logits and
counts the aten operators each loss call dispatches (torch eager pays a fixed
cost per operator, which dominates for small batches).
"""

from __future__ import annotations

import argparse
import copy
import random
import statistics
import time
from collections import Counter

import torch
import torch.nn.functional as F
from torch import nn

import divweights
from divweights import KL, Alpha, ReverseKL, TotalVariation
from divweights_torch import DEFAULT_DELTA, ReweightedLoss, weighted_mixup

try:
    from divweights_train.models_torch import SmallCNN
except ImportError:  # pragma: no cover - the training package is optional

    class SmallCNN(nn.Module):
        def __init__(self, in_channels=1, num_classes=10, width=32):
            super().__init__()
            self.net = nn.Sequential(
                nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Flatten(), nn.Linear(2 * width * 7 * 7, num_classes),
            )

        def forward(self, x):
            return self.net(x)


BATCH, CLASSES = 128, 10


def make_variants():
    """name -> (loss factory or None for CE, uses mixup, goal ratio)."""
    return {
        "CE": (None, False, None),
        "CE again (A/A control: the noise floor)": (None, False, None),
        f"CIW (KL, delta={DEFAULT_DELTA}, default)": (lambda: ReweightedLoss(), False, 1.03),
        "CIW (Alpha(0.1), temperature=0.1)": (lambda: ReweightedLoss(Alpha(0.1), temperature=0.1), False, 1.03),
        "CICW (KL delta + TV gamma=0.2)": (
            lambda: ReweightedLoss(classes=TotalVariation(), gamma=0.2), False, 1.03),
        "CICW (KL delta + ReverseKL gamma=0.01)": (
            lambda: ReweightedLoss(classes=ReverseKL(), gamma=0.01), False, 1.03),
        "CICW-M (sample_weight, KL delta + ReverseKL)": (
            lambda: ReweightedLoss(classes=ReverseKL(), gamma=0.01), True, 1.4),
    }


class Runner:
    def __init__(self, base_model, loss_factory, mixup, x, y, seed):
        self.model = copy.deepcopy(base_model)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.loss_fn = loss_factory() if loss_factory else None
        self.mixup = mixup
        self.x, self.y = x, y
        self.gen = torch.Generator().manual_seed(seed)

    def step(self):
        self.opt.zero_grad(set_to_none=True)
        x, y = self.x, self.y
        if self.loss_fn is None:
            loss = F.cross_entropy(self.model(x), y)
        elif self.mixup:
            with torch.no_grad():
                w = self.loss_fn.weights(self.model(x), y)
            mx, my, _ = weighted_mixup(x, y, w, mode="sample_weight", num_classes=CLASSES, generator=self.gen)
            loss = self.loss_fn(self.model(mx), my)
        else:
            loss = self.loss_fn(self.model(x), y)
        loss.backward()
        self.opt.step()


def bench(rounds: int, steps: int, clock, warmup: int = 3):
    torch.manual_seed(0)
    base = SmallCNN(1, CLASSES)
    x = torch.randn(BATCH, 1, 28, 28)
    y = torch.randint(0, CLASSES, (BATCH,))
    variants = make_variants()
    runners = {name: Runner(base, f, m, x, y, i) for i, (name, (f, m, _)) in enumerate(variants.items())}
    for r in runners.values():
        for _ in range(warmup):
            r.step()
    times = {name: [] for name in runners}
    order = list(runners)
    rng = random.Random(0)
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            r = runners[name]
            t0 = clock()
            for _ in range(steps):
                r.step()
            times[name].append((clock() - t0) / steps)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    # paired: ratio to the CE time of the same round, then the median over rounds
    ratio = {name: statistics.median(t / c for t, c in zip(ts, times["CE"])) for name, ts in times.items()}
    return med, ratio, {name: g for name, (_, _, g) in variants.items()}


def count_ops(fn):
    """Number of aten operators dispatched by ``fn()`` (forward only)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    counts = Counter()

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            counts[str(func.overloadpacket.__name__)] += 1
            return func(*args, **(kwargs or {}))

    with Count():
        fn()
    return counts


def time_call(fn, repeat=200, clock=time.process_time):
    for _ in range(min(10, repeat)):
        fn()
    t0 = clock()
    for _ in range(repeat):
        fn()
    return (clock() - t0) / repeat


def profile():
    torch.manual_seed(0)
    logits = torch.randn(BATCH, CLASSES)
    y = torch.randint(0, CLASSES, (BATCH,))
    L = -torch.log_softmax(logits, -1)
    l = L.gather(1, y[:, None])[:, 0]
    _, mixed, _ = weighted_mixup(torch.randn(BATCH, 3), y, torch.rand(BATCH), mode="sample_weight", num_classes=CLASSES)
    plain, tv = ReweightedLoss(), ReweightedLoss(classes=TotalVariation(), gamma=0.2)
    calls = {
        "F.cross_entropy": lambda: F.cross_entropy(logits, y),
        f"instance_weights KL delta={DEFAULT_DELTA}": (
            lambda: divweights.instance_weights(l, KL(), delta=DEFAULT_DELTA)),
        "instance_weights KL temperature": lambda: divweights.instance_weights(l, KL(), temperature=1.0),
        "instance_weights Alpha(0.1) temperature": lambda: divweights.instance_weights(l, Alpha(0.1), temperature=0.1),
        "class_weights TV (labels)": lambda: divweights.class_weights(L, y, TotalVariation(), gamma=0.2),
        "class_weights ReverseKL (labels)": lambda: divweights.class_weights(L, y, ReverseKL(), gamma=0.01),
        "class_weights ReverseKL (mixed-up labels)": lambda: divweights.class_weights(
            L, mixed, ReverseKL(), gamma=0.01),
        "ReweightedLoss() full call": lambda: plain(logits, y),
        "ReweightedLoss(classes=TV) full call": lambda: tv(logits, y),
    }
    print("\n| call (n=128, k=10) | time (us) | aten ops |\n|---|---:|---:|")
    for name, fn in calls.items():
        ops = count_ops(fn)
        print(f"| {name} | {time_call(fn) * 1e6:.0f} | {sum(ops.values())} |")
    model = SmallCNN(1, CLASSES)
    x = torch.randn(BATCH, 1, 28, 28)
    runner = Runner(model, None, False, x, y, 0)

    def forward():
        with torch.no_grad():
            model(x)

    t_fwd, t_step = time_call(forward, 20), time_call(runner.step, 20)
    print(f"| SmallCNN forward, no grad (CICW-M's extra pass) | {t_fwd * 1e6:.0f} | |")
    print(f"| SmallCNN CE training step | {t_step * 1e6:.0f} | |")
    print(f"\nextra forward / CE step = {t_fwd / t_step:.3f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                   help="cpu: process CPU time (robust on a shared machine); wall: elapsed time")
    p.add_argument("--profile", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    med, ratio, goals = bench(args.rounds, args.steps, clock)
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), batch {BATCH}, "
        f"{args.rounds} rounds x {args.steps} steps, {args.clock} clock"
    )
    print("\n| variant | median ms/step | ratio to CE (paired median) | goal |\n|---|---:|---:|---:|")
    for name, t in med.items():
        goal = "" if goals[name] is None else f"<= {goals[name]:.2f}"
        print(f"| {name} | {t * 1e3:.1f} | {ratio[name]:.3f} | {goal} |")
    if args.profile:
        profile()


if __name__ == "__main__":
    main()
