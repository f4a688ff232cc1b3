"""``torch.compile`` of training steps that use the torch adapter (CPU, inductor).

A whole run -- burn-in, annealing, after -- must compile into at most two
graphs with ``fullgraph=True`` and give the eager results.  The default run
keeps two representatives (a CICW-M step with a schedule and the default radius, and a fixed
radius without a schedule); the matrix over
divergences, strength forms, class divergences and mixup modes is marked
``slow``.
"""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
torch_dynamo = pytest.importorskip("torch._dynamo")
from divweights_torch import AnnealSchedule, ReweightedLoss, weighted_mixup
from torch._dynamo.utils import counters

import divweights as dw

STEPS = 7  # burn-in 2, anneal 3, then 2 at the target strength
N, D, K = 16, 6, 4


def _schedule():
    return AnnealSchedule(burnin_steps=2, anneal_steps=3, start_factor=4.0)


def _batches(seed=0, *, ignored=False):
    """``STEPS`` batches; with ``ignored`` the first row of each is labelled ``ignore_index``."""
    g = torch.Generator().manual_seed(seed)
    batches = [(torch.randn(N, D, generator=g), torch.randint(0, K, (N,), generator=g)) for _ in range(STEPS)]
    if ignored:
        for _, y in batches:
            y[0] = -100
    return batches


def _run(make_step, batches, *, compiled):
    """Train a linear model for ``len(batches)`` SGD steps; return losses, weights and parameters."""
    torch.manual_seed(0)
    model = torch.nn.Linear(D, K)
    step, loss_fn = make_step(model)
    if compiled:
        step = torch.compile(step, fullgraph=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    losses, weights = [], []
    torch.manual_seed(1)
    for x, y in batches:
        opt.zero_grad()
        loss = step(x, y)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
        weights.append(loss_fn.last_weights)
    return torch.stack(losses), torch.stack(weights), [p.detach().clone() for p in model.parameters()], loss_fn


def _check_compiled_equals_eager(make_step, *, max_graphs=2, ignored=False):
    batches = _batches(ignored=ignored)
    eager = _run(make_step, batches, compiled=False)
    torch_dynamo.reset()
    counters.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dynamo's notes on tracing through array-api-compat's caches
        with torch._inductor.config.patch(fallback_random=True):  # the eager random stream
            compiled = _run(make_step, batches, compiled=True)
    graphs = counters["stats"]["unique_graphs"]
    assert 1 <= graphs <= max_graphs, f"{graphs} graphs compiled over {STEPS} steps"
    torch.testing.assert_close(compiled[0], eager[0])
    torch.testing.assert_close(compiled[1], eager[1])
    for a, b in zip(compiled[2], eager[2], strict=True):
        torch.testing.assert_close(a, b)
    assert compiled[3].step == eager[3].step == STEPS
    return graphs


def _loss_step(**kwargs):
    def make(model):
        loss_fn = ReweightedLoss(**kwargs)
        return (lambda x, y: loss_fn(model(x), y).sum()), loss_fn  # sum: reduction="none" too

    return make


def _cicw_m_step(mode="sample_weight", **kwargs):
    def make(model):
        loss_fn = ReweightedLoss(**kwargs)

        def step(x, y):
            with torch.no_grad():
                w = loss_fn.weights(model(x), y)
            mx, my, _ = weighted_mixup(x, y, w, mode=mode, num_classes=K, predictions=model(x).detach(), alpha=0.5)
            return loss_fn(model(mx), my)

        return step, loss_fn

    return make


#: The adapter's compiled step calls none of array-api-compat's lru_cache-wrapped namespace helpers (Dynamo
#: would warn that it traces through the cache): the core's public functions do, see test_compile_core.py.
NO_CACHED_HELPERS = pytest.mark.filterwarnings("error:Dynamo detected a call to a `functools.lru_cache`-wrapped")


@NO_CACHED_HELPERS
def test_cicw_m_step_with_a_schedule_compiles_to_one_graph_equal_to_eager():
    # the default instance radius (delta="auto": the exact-radius KL solver with a radius in a tensor)
    graphs = _check_compiled_equals_eager(
        _cicw_m_step(classes=dw.TotalVariation(), gamma=0.2, balance_classes=True, schedule=_schedule())
    )
    assert graphs == 1


@NO_CACHED_HELPERS
def test_a_fixed_radius_without_schedule_compiles_to_one_graph_equal_to_eager():
    """A radius given as a number reaches the core's KL solver as a Python constant (bracket and grid
    built as constants): one graph for the run, no recompilation."""
    assert _check_compiled_equals_eager(_loss_step(delta=0.5), ignored=True) == 1


INSTANCE = [
    ({}, "kl-delta-default"),
    ({"lam": 0.5}, "kl-lam"),
    ({"temperature": 0.5}, "kl-temperature"),
    ({"instance": dw.Alpha(0.1), "temperature": 0.1}, "alpha-temperature"),
    ({"instance": dw.Alpha(0.5), "lam": 0.5}, "alpha-lam"),
    ({"instance": dw.Alpha(0.5), "delta": 0.2}, "alpha-delta"),
    ({"instance": dw.ReverseKL(), "lam": 0.5}, "reverse-kl-lam"),
    ({"instance": dw.ChiSquared(), "delta": 0.3}, "chi2-delta"),
    ({"instance": dw.TotalVariation(), "delta": 0.2}, "tv-delta"),
    ({"instance": dw.TotalVariation(), "lam": 0.5}, "tv-lam"),
    ({"instance": dw.SquaredL2(), "lam": 0.5}, "l2-lam"),
    ({"instance": None}, "uniform"),
]
CLASSES = [
    ({"classes": dw.TotalVariation(), "gamma": 0.2}, "tv"),
    ({"classes": dw.ReverseKL(), "gamma": 0.01}, "reverse-kl"),
    ({"classes": dw.ReverseKL(), "gamma": 0.3, "balance_classes": True}, "reverse-kl-balanced"),
    ({"classes": dw.SquaredL2(), "gamma": 0.05}, "l2"),
    ({"classes": dw.KL(), "gamma": 0.05, "label_smoothing": 0.1}, "kl-smoothed"),
    ({"lam": 0.5, "weight": torch.linspace(0.5, 2.0, K), "reduction": "mean", "label_smoothing": 0.1}, "weighted-mean"),
    ({"temperature": 0.5, "classes": dw.TotalVariation(), "gamma": 0.2, "reduction": "none"}, "tv-none"),
]


@pytest.mark.slow
@pytest.mark.parametrize("kwargs", [c for c, _ in INSTANCE], ids=[i for _, i in INSTANCE])
def test_every_instance_divergence_compiles_through_burn_in_and_annealing(kwargs):
    _check_compiled_equals_eager(_loss_step(**kwargs, schedule=_schedule()), ignored=True)


@pytest.mark.slow
@pytest.mark.parametrize("kwargs", [c for c, _ in CLASSES], ids=[i for _, i in CLASSES])
def test_every_class_divergence_compiles_through_burn_in_and_annealing(kwargs):
    _check_compiled_equals_eager(_loss_step(**kwargs, schedule=_schedule()), ignored=True)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["plain", "sample", "weight", "sample_weight", "label_smoothing"])
def test_every_mixup_mode_compiles_in_a_cicw_m_step(mode):
    _check_compiled_equals_eager(_cicw_m_step(mode, classes=dw.ReverseKL(), gamma=0.01, schedule=_schedule()))
