"""The solvers trace into one graph: ``torch.compile(fullgraph=True)`` (no data-dependent
control flow, no host reads) and ``jax.jit``, with the results of eager mode."""

from __future__ import annotations

import pytest

import divweights as dw
from divweights._array import prepare
from divweights.solvers.kl import kl_constrained
from divweights.solvers.reverse_kl import reverse_kl_class
from divweights.solvers.total_variation import tv_constrained

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.slow  # inductor compiles take seconds each


def _inputs():
    g = torch.Generator().manual_seed(0)
    losses = torch.rand(64, generator=g) * 3
    L = -torch.log_softmax(torch.randn(32, 6, generator=g), dim=-1)
    y = torch.softmax(torch.randn(32, 6, generator=g), dim=-1)
    return losses, L, y


CASES = {
    "instance_weights KL delta": lambda x, L, y, s, w: dw.instance_weights(x, dw.KL(), delta=s),
    "instance_weights ChiSquared delta (safeguarded)": lambda x, L, y, s, w: dw.instance_weights(
        x, dw.ChiSquared(), delta=s
    ),
    "instance_weights TotalVariation delta (sort)": lambda x, L, y, s, w: dw.instance_weights(
        x, dw.TotalVariation(), delta=s
    ),
    "KL soft class weights": lambda x, L, y, s, w: kl_constrained(L, s, w, logq=torch.log(y)),
    "ReverseKL soft class weights": lambda x, L, y, s, w: reverse_kl_class(L, y, s, w),
    "TotalVariation soft class weights": lambda x, L, y, s, w: tv_constrained(L, s, w, prior=y),
}


# The public functions detect the array namespace with array-api-compat, whose helpers are
# ``functools.lru_cache``-wrapped; Dynamo traces through the wrapper (the helpers are pure functions of the
# array's type, the cache only saves time) and warns once per helper.  The adapters' compiled steps do not
# call them (tests/test_torch_compile.py turns the warning into an error there).
@pytest.mark.filterwarnings("ignore:Dynamo detected a call to a `functools.lru_cache`-wrapped function")
@pytest.mark.parametrize("name", list(CASES))
def test_torch_compile_fullgraph_matches_eager(name):
    x, L, y = _inputs()
    work = prepare(L, "class_losses")[1]
    strength = torch.tensor(0.3)
    fn = CASES[name]
    eager = fn(x, L, y, strength, work)
    compiled = torch.compile(fn, fullgraph=True)(x, L, y, strength, work)
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-6)
    # another radius, same graph (the strength is a tensor, not a constant baked in)
    torch.testing.assert_close(
        torch.compile(fn, fullgraph=True)(x, L, y, torch.tensor(0.05), work), fn(x, L, y, torch.tensor(0.05), work),
        rtol=1e-5, atol=1e-6,
    )  # fmt: skip
