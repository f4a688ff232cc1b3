"""Op budgets of the torch training step: deterministic counts of the aten operators dispatched.

Each operator is a kernel launch on a GPU (about 5 us eager), so the count is a
machine-independent proxy for the step's overhead; plain ``F.cross_entropy``
forward + backward is 5.  Counted as in ``shared/tools/opcount.py``: forward +
backward of a 128 x 10 batch of logits, the second call (the first may
differ), ``detach`` / ``_to_copy`` / ``lift_fresh`` left out.  Timing targets
live in ``benchmarks/``; these counts cannot drift silently.

The adapter's own share is budgeted separately, with the core's solvers
replaced by stubs, so that a regression is attributed to the right layer.
"""

from __future__ import annotations

from unittest import mock

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F
from divweights_torch import ReweightedLoss, weighted_mixup
from torch_helpers import count_ops, op_counts

import divweights as dw

N, K = 128, 10


def _step_ops(loss_fn) -> int:
    """Ops of forward + backward of ``loss_fn(logits, labels)`` (second of two calls)."""
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, K, (N,), generator=g)
    for _ in range(2):
        z = torch.randn(N, K, generator=g, requires_grad=True)
        n = count_ops(lambda z=z: loss_fn(z, labels).backward())
    return n


def _cicw_m_ops() -> int:
    """Ops of a CICW-M step on logits (the model's own ops are not counted): the weights of the
    clean batch, weighted mixup (``sample_weight``), the reweighted loss of the mixed batch and its
    backward."""
    loss_fn = ReweightedLoss(delta=0.5, classes=dw.ReverseKL(), gamma=0.01)
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, K, (N,), generator=g)

    def step(z):
        w = loss_fn.weights(z, labels)
        # the logits stand in for the inputs as well: mixing inputs needs no gradient, and the
        # mixed batch's logits (a fresh leaf here, model(mixed_inputs) in training) carry it
        mixed, targets, _ = weighted_mixup(z, labels, w, mode="sample_weight", num_classes=K, generator=g)
        loss_fn(mixed.requires_grad_(True), targets).backward()

    for _ in range(2):
        z = torch.randn(N, K, generator=g)
        n = count_ops(lambda z=z: step(z))
    return n


def test_plain_cross_entropy_is_five_ops():  # the yardstick (and a check of the counter)
    assert _step_ops(lambda z, y: F.cross_entropy(z, y, reduction="sum")) == 5


def _core_bound(measured: str):
    """The budget of issue #10 item 2 is not met yet because of the core's solvers (the adapter's
    share is guarded below).  Strict: once the core gets there the test XPASSes and fails, and the
    mark must go."""
    return pytest.mark.xfail(strict=True, reason=f"core solvers over budget: {measured}")


BUDGETS = [
    pytest.param(
        lambda: ReweightedLoss(),
        60,
        id="default: adaptive exact-radius KL",
        marks=_core_bound(
            "84 ops forward + backward (opcount tool): the fixed-radius loss (59, guarded below) plus the "
            "noise-rate estimate and its radius (16) and the radius as a tensor (bracket and grid on the device: 9)"
        ),
    ),
    # the default when the budget was set (issue #10: "KL, exact radius, the default", 530 ops then)
    pytest.param(lambda: ReweightedLoss(delta=0.5), 60, id="exact-radius KL, fixed radius"),
    pytest.param(lambda: ReweightedLoss(lam=0.5), 15, id="KL lam"),
    pytest.param(lambda: ReweightedLoss(delta=0.5, classes=dw.ReverseKL(), gamma=0.01), 90, id="one-hot RKL, fixed"),
    pytest.param(lambda: ReweightedLoss(delta=0.5, classes=dw.TotalVariation(), gamma=0.2), 90, id="one-hot TV, fixed"),
    pytest.param(
        lambda: ReweightedLoss(classes=dw.ReverseKL(), gamma=0.01),
        90,
        id="one-hot ReverseKL classes",
        marks=_core_bound("113 ops: the fixed-radius one-hot ReverseKL loss (88, guarded above) + the adaptive radius"),
    ),
    pytest.param(
        lambda: ReweightedLoss(classes=dw.TotalVariation(), gamma=0.2),
        90,
        id="one-hot TV classes",
        marks=_core_bound("112 ops: the fixed-radius one-hot TV loss (87, guarded above) + the adaptive radius"),
    ),
]


@pytest.mark.parametrize(("make", "budget"), BUDGETS)
def test_loss_op_budget(make, budget):
    assert _step_ops(make()) <= budget


@_core_bound(
    "358 ops: weights of the clean batch (KL radius 48, one-hot ReverseKL 14), the weighted mixup (with its "
    "Beta draws), and the loss of the mixed batch (soft-target ReverseKL class solver 124, KL radius 48)"
)
def test_cicw_m_step_op_budget():
    assert _cicw_m_ops() <= 200


# -- the adapter's own share ----------------------------------------------------------------------


_STUB_OPS = []


def _uniform_stub(self, losses, form, strength, work):
    _STUB_OPS.append(1)
    return torch.full_like(losses, 1.0 / losses.shape[-1])  # one op


def _labels_stub(self, L, y, onehot, gamma, work):
    return y  # no op


ADAPTER = [
    ("KL delta", lambda: ReweightedLoss(delta=0.5), 11),
    # (+1: a batch whose estimate is NaN, no valid row or a NaN logit, keeps the tracked rate)
    ("KL auto (the default): tracking the noise rate", lambda: ReweightedLoss(), 27),
    ("KL temperature with a schedule", lambda: ReweightedLoss(temperature=1.0, schedule=_schedule()), 25),
    # the class-weighted sum takes 3 ops more than a product and a sum (masking classes of zero weight,
    # forward and backward): a class of infinite loss (logits masked with -inf) made the loss NaN; with
    # integer labels 2 more zero the ignored rows (NaN logits of padding made the loss NaN)
    ("one-hot classes", lambda: ReweightedLoss(delta=0.5, classes=dw.TotalVariation(), gamma=0.2), 26),
    ("label smoothing", lambda: ReweightedLoss(delta=0.5, label_smoothing=0.1), 25),
    ("probability targets", lambda: _soft(ReweightedLoss(delta=0.5, classes=dw.ReverseKL(), gamma=0.01)), 20),
]


def _schedule():
    from divweights_torch import AnnealSchedule

    return AnnealSchedule(burnin_steps=1, anneal_steps=100)


def _soft(loss_fn):
    return lambda z, y: loss_fn(z, torch.softmax(z.detach(), -1))


@pytest.mark.parametrize(("make", "budget"), [(m, b) for _, m, b in ADAPTER], ids=[i for i, _, _ in ADAPTER])
def test_adapter_overhead_without_the_core_solvers(make, budget):
    """Everything but the core's solvers: cross-entropy, masking, schedule, reduction, backward."""
    with (
        mock.patch.object(dw.KL, "instance", _uniform_stub),
        mock.patch.object(dw.TotalVariation, "class_problem", _labels_stub),
        mock.patch.object(dw.ReverseKL, "class_problem", _labels_stub),
    ):
        _STUB_OPS.clear()
        n = _step_ops(make())  # two calls, the second counted
        assert n - len(_STUB_OPS) // 2 <= budget  # less the stub's own op in the counted call


def test_kl_lam_step_is_cross_entropy_plus_a_softmin():
    """The lam path adds to CE only the masking of ignored rows, the softmin and the weighted sum."""
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, K, (N,), generator=g)
    z = torch.randn(N, K, generator=g, requires_grad=True)
    loss_fn = ReweightedLoss(lam=0.5)
    ops = op_counts(lambda: loss_fn(z, labels).backward())
    assert ops["_softmax.default"] == 1 and ops["nll_loss_forward.default"] == 1
    assert ops["_log_softmax.default"] == 1  # log-softmax computed once


def test_cicw_m_step_overhead_without_the_core_solvers():
    """The CICW-M step less the core's instance and class solvers (the mixup formulas stay)."""
    with (
        mock.patch.object(dw.KL, "instance", _uniform_stub),
        mock.patch.object(dw.ReverseKL, "class_problem", _labels_stub),
    ):
        _STUB_OPS.clear()
        n = _cicw_m_ops()  # two steps, the second counted
        # 63 with the deterministic ratio w_i / (w_i + w_j); the default weighted Beta ratio
        # (divweights.mixup.weighted_beta_parameters) draws its ratios with the Gamma sampler of plain
        # mixup's Beta(alpha, alpha): +57 ops (weighted_mixup alone: 90 against 33); the class-weighted
        # sums of both batches mask the classes of zero weight (+5: 0 * inf is NaN otherwise) and the clean
        # batch's ignored rows (+1)
        assert n - len(_STUB_OPS) // 2 <= 124
