"""Cost of reweighting in a jitted JAX training step (small CNN, CPU).

Times one SGD step of a two-layer convolutional network on 28x28x1 inputs
(batch 128 by default) with four losses:

* ``CE``      plain mean cross-entropy (hand-written, no divweights);
* ``CIW``     instance reweighting, ``Alpha(0.1)`` with temperature ``T``;
* ``CICW``    plus class reweighting, ``ReverseKL`` with ``gamma = 0.01``;
* ``CICW-M``  plus weighted mixup (``sample_weight``): a forward pass for the
  weights, mixup, then the reweighted loss recomputed on the mixed batch.

Pure JAX (``jax.lax.conv_general_dilated``, hand-written parameters and SGD
with momentum).  Hyperparameters enter the jitted step as traced arrays.
Variants are timed in interleaved rounds so that load drifts hit all of them
alike; the table reports medians (and minima, less sensitive to other load
on the machine) over rounds and their ratios to CE from the same run.

Usage::

    python benchmarks/bench_jax_step.py [--batch 128] [--rounds 7] [--steps 10]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from divweights import Alpha, ReverseKL
from divweights_jax import reweighted_loss, weighted_mixup

NUM_CLASSES = 10


def init_params(key):
    k1, k2, k3 = jax.random.split(key, 3)

    def he(k, shape, fan_in):
        return jax.random.normal(k, shape, jnp.float32) * np.sqrt(2.0 / fan_in)

    return {
        "conv1": he(k1, (3, 3, 1, 16), 9), "b1": jnp.zeros(16),
        "conv2": he(k2, (3, 3, 16, 32), 9 * 16), "b2": jnp.zeros(32),
        "dense": he(k3, (7 * 7 * 32, NUM_CLASSES), 7 * 7 * 32), "b3": jnp.zeros(NUM_CLASSES),
    }


def conv(x, w, b):
    y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return jax.nn.relu(y + b)


def pool(x):
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def forward(params, x):
    x = pool(conv(x, params["conv1"], params["b1"]))
    x = pool(conv(x, params["conv2"], params["b2"]))
    return x.reshape(x.shape[0], -1) @ params["dense"] + params["b3"]


def sgd(params, momentum, grads, lr=0.05, beta=0.9):
    momentum = jax.tree.map(lambda m, g: beta * m + g, momentum, grads)
    params = jax.tree.map(lambda p, m: p - lr * m, params, momentum)
    return params, momentum


def ce_loss(params, x, y, hyper, key):
    logits = forward(params, x)
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))


def ciw_loss(params, x, y, hyper, key):
    return reweighted_loss(forward(params, x), y, instance=Alpha(0.1), temperature=hyper["T"])[0]


def cicw_loss(params, x, y, hyper, key):
    return reweighted_loss(
        forward(params, x), y, instance=Alpha(0.1), temperature=hyper["T"], classes=ReverseKL(), gamma=hyper["gamma"]
    )[0]


def cicw_m_loss(params, x, y, hyper, key):
    kw = dict(instance=Alpha(0.1), temperature=hyper["T"], classes=ReverseKL(), gamma=hyper["gamma"])
    logits = jax.lax.stop_gradient(forward(params, x))
    _, aux = reweighted_loss(logits, y, **kw)
    xm, ym, _ = weighted_mixup(key, x, y, aux["weights"], mode="sample_weight", num_classes=NUM_CLASSES)
    return reweighted_loss(forward(params, xm), ym, **kw)[0]


VARIANTS = {"CE": ce_loss, "CIW": ciw_loss, "CICW": cicw_loss, "CICW-M": cicw_m_loss}


def make_step(loss_fn):
    @jax.jit
    def step(params, momentum, x, y, hyper, key):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y, hyper, key)
        params, momentum = sgd(params, momentum, grads)
        return params, momentum, loss

    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds")
    parser.add_argument("--steps", type=int, default=10, help="steps per variant per round")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    x = jnp.asarray(rng.random((args.batch, 28, 28, 1), dtype=np.float32))
    y = jnp.asarray(rng.integers(0, NUM_CLASSES, size=args.batch).astype(np.int32))
    hyper = {"T": jnp.float32(0.1), "gamma": jnp.float32(0.01)}
    params0 = init_params(jax.random.key(args.seed))
    zeros = jax.tree.map(jnp.zeros_like, params0)

    steps = {name: make_step(fn) for name, fn in VARIANTS.items()}
    state = {}
    compile_s = {}
    for name, step in steps.items():  # compile + warm up
        t0 = time.perf_counter()
        p, m, loss = step(params0, zeros, x, y, hyper, jax.random.key(0))
        jax.block_until_ready(loss)
        compile_s[name] = time.perf_counter() - t0
        for _ in range(3):
            p, m, loss = step(p, m, x, y, hyper, jax.random.key(1))
        jax.block_until_ready(loss)
        if not np.isfinite(float(loss)):
            raise RuntimeError(f"{name}: non-finite loss {float(loss)}")
        state[name] = (p, m)

    times = {name: [] for name in steps}
    keys = jax.random.split(jax.random.key(args.seed + 1), args.steps)
    for _ in range(args.rounds):
        for name, step in steps.items():
            p, m = state[name]
            t0 = time.perf_counter()
            for i in range(args.steps):
                p, m, loss = step(p, m, x, y, hyper, keys[i])
            jax.block_until_ready((p, loss))
            times[name].append((time.perf_counter() - t0) / args.steps)
            state[name] = (p, m)

    base = statistics.median(times["CE"])
    base_min = min(times["CE"])
    print(
        f"JAX {jax.__version__} on {jax.devices()[0].platform.upper()} ({platform.processor() or platform.machine()}), "
        f"batch {args.batch}, 28x28x1, {args.rounds} interleaved rounds x {args.steps} steps\n"
    )
    print("| loss | median step (ms) | min (ms) | max (ms) | median / CE | min / CE | first call incl. compile (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(
            f"| {name} | {1e3 * med:.2f} | {1e3 * min(ts):.2f} | {1e3 * max(ts):.2f} | {med / base:.2f} | "
            f"{min(ts) / base_min:.2f} | "
            f"{compile_s[name]:.2f} |"
        )


if __name__ == "__main__":
    main()
