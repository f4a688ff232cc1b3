"""CI smoke of ``--protocol paper`` (issue 12, item 5): two steps of every method, both frameworks.

Tiny CIFAR-10 pickle files (``_writers.write_cifar_like``), batch 4, the published
PreAct ResNet-18. Each run evaluates after each of its two steps (``--eval-every 1``) and
ends its burn-in after the first, so the second step takes the post-burn-in path of every
method (the published weighted mixup, Dynamic Mixup's bootstrapping from the beta mixture
fitted after the first period). The torch half is fast; the JAX half compiles a ResNet per
method, so all but one representative (CICW-M, the published burn-in and weighted mixup)
are marked slow.
"""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("torch")

from _writers import write_cifar_like
from divweights_train import cli
from divweights_train.config import METHODS, method_spec
from divweights_train.metrics import read_metrics


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-cifar")
    write_cifar_like(root, "cifar10", num_train=40, num_test=8, rng=0)
    return root


def _smoke(framework, method, data_dir, out):
    spec = method_spec(method)
    args = [
        "--protocol", "paper", "--dataset", "cifar10", "--data-dir", str(data_dir),
        "--noise", "symmetric:0.4", "--method", method, "--framework", framework,
        "--batch-size", "4", "--eval-every", "1", "--epochs", "2", "--eval-batch-size", "8",
        "--quiet", "--no-plots", "--no-save-weights", "--out", str(out),
    ]  # fmt: skip
    if spec.instance or spec.classes or spec.loss == "dynamic-mixup":
        args += ["--burnin-steps", "1"]
    if framework == "torch":
        args += ["--threads", "1"]
    assert cli.main(args) == 0
    recs = read_metrics(out / "metrics.jsonl")
    assert [r.step for r in recs] == [1, 2]
    assert all(math.isfinite(r.train_loss) and 0 <= r.test_acc <= 1 for r in recs)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["protocol"] == "paper" and cfg["model"] == "preact-resnet18-paper"
    assert cfg["lr_milestone_steps"] == [
        375_000,
        1_000_000,
        1_375_000,
    ]  # (30, 80, 110) x 50,000 // 4
    return recs


@pytest.mark.parametrize("method", METHODS)
def test_paper_protocol_two_steps_torch(method, cifar_dir, tmp_path):
    _smoke("torch", method, cifar_dir, tmp_path / method)


_JAX_FAST = "cicw-m"


@pytest.mark.parametrize(
    "method",
    [m if m == _JAX_FAST else pytest.param(m, marks=pytest.mark.slow) for m in METHODS],
)
def test_paper_protocol_two_steps_jax(method, cifar_dir, tmp_path):
    pytest.importorskip("jax")
    from divweights_train.jax_step import TRACE_COUNTS

    before = set(TRACE_COUNTS)
    _smoke("jax", method, cifar_dir, tmp_path / method)
    if method == _JAX_FAST:
        # the published burn-in (plain mixup) and the weighted step: two compiled steps
        new = [s for s in TRACE_COUNTS if s not in before]
        assert sorted(s.mixup for s in new) == ["plain", "sample_weight"]
