"""Deterministic cost of the core hot path on torch tensors.

Every aten operation dispatched is a kernel launch on a GPU (about 5 µs each
in eager mode), so the number of operations a call dispatches is the cost
that does not depend on the machine.  It is counted here with a
``TorchDispatchMode``, the way ``opcount.py`` counts the adapter's training
step: ``detach``, ``_to_copy`` and ``lift_fresh`` are not counted.  Each call
runs once before it is counted.

Two layers are guarded: the solvers themselves (``divweights.solvers``,
called as the divergences call them), and the public functions, whose
argument handling adds a few operations on top.  Timing budgets live in
``benchmarks/bench_core.py``, never here.
"""

from __future__ import annotations

import pytest

import divweights as dw
from divweights._array import prepare, scalar
from divweights.solvers.kl import kl_constrained, kl_penalty
from divweights.solvers.reverse_kl import reverse_kl_class, reverse_kl_class_onehot
from divweights.solvers.total_variation import tv_class_onehot, tv_constrained

torch = pytest.importorskip("torch")
from torch.utils._python_dispatch import TorchDispatchMode

NOT_COUNTED = {"detach.default", "_to_copy.default", "lift_fresh.default"}
HOST_READS = {"_local_scalar_dense.default", "item.default"}


class OpCounter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.__name__ not in NOT_COUNTED:
            self.ops.append(func.__name__)
        return func(*args, **(kwargs or {}))


def dispatched(fn) -> list[str]:
    fn()  # a first call may cache or validate
    with OpCounter() as counter:
        fn()
    return counter.ops


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    losses = torch.rand(128, generator=g) * 3
    class_losses = -torch.log_softmax(torch.randn(128, 10, generator=g), dim=-1)
    labels = torch.randint(0, 10, (128,), generator=g)
    return losses, class_losses, labels


def _work(x):
    return prepare(x, "losses")[1]


def _onehot(class_losses, labels):
    return torch.nn.functional.one_hot(labels, class_losses.shape[-1]).to(class_losses.dtype)


# -- the solvers ---------------------------------------------------------------------------------

#: float32 solver budgets, 128 examples or 128 x 10 class losses: what the solvers dispatch today.
#: The exact radius is 12 operations of bracket and argument preparation (short rows take the
#: constant upper end far / eps instead of reading their own gap, 7 operations), 6 to lay out the
#: grid, 11 to evaluate it, 11 of linear interpolation and Newton bracket, 20 for one Newton step,
#: 2 for a zero radius and 3 for the weights (torch's fused softmax).  It was 490 before the finder
#: was redesigned, 78 before excluded examples got a finite scaled loss and the Newton step a
#: bracket that may pass the ends by one grid step, 74 before the constant upper end and the fused
#: softmax; the goal of about 40 set in issue #10 is not reached: the grid and one Newton step are
#: the floor of this design.
SOLVER_BUDGET = {
    # 74 before torch's fused softmax / logsumexp, 65 before the fused residual (softmax and xlogy)
    "KL, exact radius": 57,
    # a radius that is a Python number (a training run's constant): bracket and grid are constants
    "KL, exact radius given as a Python number": 48,
    "KL, fixed lam": 5,
    "ReverseKL class, one-hot": 14,
    "TotalVariation class, one-hot (general prior path)": 25,
    "TotalVariation class, one-hot (closed form)": 13,
    "TotalVariation().class_problem, one-hot (dispatches to the closed form)": 13,
    # soft (mixup) targets, the CICW-M loss: 202 before logsumexp clipped its maximum instead of testing
    # finiteness (6 ops on torch) and the log of the targets stopped guarding zeros (-inf is the answer),
    # 154 before torch's fused logsumexp (1 op where the array-API formula is 6), 130 before the log of
    # the losses on the support was computed once for the finder and the weights
    "ReverseKL class, soft targets": 124,
}


def _solver_calls(batch):
    losses, L, labels = batch
    work = _work(losses)
    y = _onehot(L, labels)
    soft = torch.softmax(torch.randn(L.shape, generator=torch.Generator().manual_seed(1)), dim=-1)
    delta, lam = scalar(work, 0.5), scalar(work, 0.5)
    gamma_rkl, gamma_tv = scalar(work, 0.01), scalar(work, 0.2)
    return {
        "KL, exact radius": lambda: kl_constrained(losses, delta, work),
        "KL, exact radius given as a Python number": lambda: kl_constrained(losses, 0.5, work),
        "KL, fixed lam": lambda: kl_penalty(losses, lam, work),
        "ReverseKL class, one-hot": lambda: reverse_kl_class_onehot(L, y, gamma_rkl, work),
        "TotalVariation class, one-hot (general prior path)": lambda: tv_constrained(L, gamma_tv, work, prior=y),
        "TotalVariation class, one-hot (closed form)": lambda: tv_class_onehot(L, y, gamma_tv, work),
        "ReverseKL class, soft targets": lambda: reverse_kl_class(L, soft, gamma_rkl, work),
        "TotalVariation().class_problem, one-hot (dispatches to the closed form)": lambda: (
            dw.TotalVariation().class_problem(L, y, True, gamma_tv, work)
        ),
    }


@pytest.mark.parametrize("name", list(SOLVER_BUDGET))
def test_solver_op_budget(batch, name):
    ops = dispatched(_solver_calls(batch)[name])
    assert len(ops) <= SOLVER_BUDGET[name], f"{name}: {len(ops)} ops > budget {SOLVER_BUDGET[name]}: {ops}"


@pytest.mark.parametrize("name", list(SOLVER_BUDGET))
def test_solvers_never_read_device_values_on_the_host(batch, name):
    ops = dispatched(_solver_calls(batch)[name])
    assert not HOST_READS & set(ops)


def test_the_exact_radius_costs_the_same_whatever_the_data(batch):
    """Fixed cost: no data-dependent number of operations (also no branch on values)."""
    losses = batch[0]
    work = _work(losses)
    counts = {
        len(dispatched(lambda x=x, d=d: kl_constrained(x, scalar(work, d), work)))
        for x in (losses, losses * 1e6, torch.zeros(128), torch.where(losses > 1, torch.inf, losses))
        for d in (0.0, 0.5, 100.0)
    }
    assert len(counts) == 1


# -- the public functions --------------------------------------------------------------------------

#: the public calls: the solvers plus argument handling (the strength as an array: 1; all-infinite
#: and NaN rows from one row minimum: 5; label checks and one-hot targets for class weights: 8
#: with the NaN rows, 2 of them host reads of the label range on the CPU); one-hot class weights
#: meet the goal of at most 50 set in issue #10
PUBLIC_BUDGET = {
    # 72 before a Python-number radius reached the solver as a number (constant bracket and grid)
    "instance_weights(KL(), delta=0.5)": 54,
    "instance_weights(KL(), lam=0.5)": 12,
    "class_weights(ReverseKL(), gamma=0.01), labels": 25,
    "class_weights(TotalVariation(), gamma=0.2), labels": 24,
}


@pytest.mark.parametrize("name", list(PUBLIC_BUDGET))
def test_public_op_budget(batch, name):
    losses, L, labels = batch
    calls = {
        "instance_weights(KL(), delta=0.5)": lambda: dw.instance_weights(losses, dw.KL(), delta=0.5),
        "instance_weights(KL(), lam=0.5)": lambda: dw.instance_weights(losses, dw.KL(), lam=0.5),
        "class_weights(ReverseKL(), gamma=0.01), labels": lambda: dw.class_weights(
            L, labels, dw.ReverseKL(), gamma=0.01
        ),
        "class_weights(TotalVariation(), gamma=0.2), labels": lambda: dw.class_weights(
            L, labels, dw.TotalVariation(), gamma=0.2
        ),
    }
    ops = dispatched(calls[name])
    assert len(ops) <= PUBLIC_BUDGET[name], f"{name}: {len(ops)} ops > budget {PUBLIC_BUDGET[name]}: {ops}"


def test_exact_radius_instance_weights_never_read_device_values_on_the_host(batch):
    ops = dispatched(lambda: dw.instance_weights(batch[0], dw.KL(), delta=0.5))
    assert not HOST_READS & set(ops)
