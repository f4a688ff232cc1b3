"""ReweightedLoss(distributed=True) across two gloo processes on the CPU.

Each process holds half of a fixed batch.  The weights computed on the
gathered losses must equal the single-process weights of the concatenated
batch, and the world-size-scaled local gradients, averaged as
DistributedDataParallel averages them, must equal the single-process gradient.
"""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist
import torch.multiprocessing as mp
from divweights_torch import ReweightedLoss

from divweights import KL, TotalVariation

WORLD = 2
N, D, C = 12, 5, 4

pytestmark = [
    pytest.mark.multiprocess,
    pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available"),
]

CONFIGS = {
    "kl_delta_tv_sum": dict(instance=KL(), delta=0.3, classes=TotalVariation(), gamma=0.1),
    "kl_temperature_mean_weighted": dict(
        instance=KL(),
        temperature=0.5,
        weight=torch.tensor([0.5, 1.0, 1.5, 2.0], dtype=torch.float64),
        reduction="mean",
    ),
    "uniform": dict(instance=None),
    # the adaptive radii: the noise rate of the global batch, one radius on every process
    "default_adaptive_radius": dict(),
    "adaptive_class_radius": dict(instance=KL(), delta=0.3, classes=TotalVariation(), gamma="auto"),
}


def _data():
    g = torch.Generator().manual_seed(123)
    x = torch.randn(N, D, generator=g, dtype=torch.float64)
    y = torch.randint(0, C, (N,), generator=g)
    y[[2, 9]] = -100  # ignored rows on both shards
    model = torch.nn.Linear(D, C).double()
    with torch.no_grad():
        model.weight.copy_(torch.randn(C, D, generator=g, dtype=torch.float64))
        model.bias.copy_(torch.randn(C, generator=g, dtype=torch.float64))
    return x, y, model


def _run(x, y, model, distributed, **config):
    model.zero_grad()
    loss_fn = ReweightedLoss(**config, distributed=distributed)
    loss = loss_fn(model(x), y)
    loss.backward()
    return {
        "loss": loss.detach(),
        "weights": loss_fn.last_weights,
        "grads": [p.grad.clone() for p in model.parameters()],
    }


def _worker(rank, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        x, y, model = _data()
        shard = slice(rank * N // WORLD, (rank + 1) * N // WORLD)
        results = {name: _run(x[shard], y[shard], model, True, **cfg) for name, cfg in CONFIGS.items()}
        # unequal shard sizes: every process must get a clear ValueError (not a hang or abort)
        n_bad = N // WORLD - rank
        try:
            _run(x[:n_bad], y[:n_bad], model, True, **CONFIGS["kl_delta_tv_sum"])
            results["unequal"] = None
        except ValueError as exc:
            results["unequal"] = str(exc)
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(str(tmp / "init"), str(tmp)), nprocs=WORLD, join=True)
    return [torch.load(tmp / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


@pytest.mark.parametrize("name", list(CONFIGS))
def test_gathered_weights_equal_single_process_weights(shards, name):
    x, y, model = _data()
    ref = _run(x, y, model, False, **CONFIGS[name])
    torch.testing.assert_close(torch.cat([s[name]["weights"] for s in shards]), ref["weights"])


@pytest.mark.parametrize("name", list(CONFIGS))
def test_averaged_scaled_gradients_equal_single_process_gradient(shards, name):
    x, y, model = _data()
    ref = _run(x, y, model, False, **CONFIGS[name])
    for i, g_ref in enumerate(ref["grads"]):
        averaged = sum(s[name]["grads"][i] for s in shards) / WORLD  # what DDP does
        torch.testing.assert_close(averaged, g_ref)
    averaged_loss = sum(s[name]["loss"] for s in shards) / WORLD
    torch.testing.assert_close(averaged_loss, ref["loss"])


def test_unequal_shard_sizes_raise_a_clear_error_on_every_process(shards):
    for s in shards:
        assert s["unequal"] is not None and "shard sizes [6, 5]" in s["unequal"]
