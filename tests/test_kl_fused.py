"""The exact-radius KL solver on torch: the fused residual (``softmax`` and ``xlogy``, or ``softmax``
and ``logsumexp`` with a prior) and a radius given as a Python number (constant bracket and grid).

Both only change how many kernels a call launches; these tests pin that the numbers do not change:
the fused residual equals the array-API formula, is as precise for small radii, and a Python-number
radius gives the weights of the same radius as an array.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import divweights as dw
from divweights._array import Work
from divweights.solvers.kl import _make_fun, kl_constrained

torch = pytest.importorskip("torch")
xpt = pytest.importorskip("array_api_compat.torch")
strict = pytest.importorskip("array_api_strict")


def _work(dtype):
    return Work(xp=xpt, device=torch.device("cpu"), dtype=dtype, out_dtype=dtype)


def _rows(seed: int, n: int = 64, excluded: bool = True):
    """Scaled losses ``nlp`` in [-1, 0] (0 at each row's minimiser), three rows, some excluded (-C)."""
    rng = np.random.default_rng(seed)
    x = rng.exponential(size=(3, n))
    x = (x - x.min(axis=1, keepdims=True)) / (x.max(axis=1, keepdims=True) - x.min(axis=1, keepdims=True))
    nlp = -x
    if excluded:
        nlp[:, rng.choice(n, size=n // 8, replace=False)] = -1e157  # far below -EXP_FLOOR / beta
    return nlp


@pytest.mark.parametrize("with_prior", [False, True])
def test_fused_residual_and_slope_equal_the_array_api_formulas(with_prior):
    nlp = _rows(0)
    support = nlp > -1e150
    count = support.sum(axis=1, keepdims=True).astype(float)
    logq = None
    if with_prior:
        q = np.where(support, np.random.default_rng(1).random(nlp.shape), 0.0)
        q /= q.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore"):
            logq = np.log(q)
        count = np.ones_like(count)
    v = np.log([[0.3], [3.0], [30.0]])
    out = {}
    for name, xp, conv in (("torch", xpt, torch.asarray), ("array API", strict, strict.asarray)):
        make = _make_fun(xp, conv(np.asarray(0.2)), with_prior)
        args = (conv(nlp),) if logq is None else (conv(nlp), conv(logq))
        fun = make(*args) if with_prior else make(*args, count=conv(count))
        f, df = fun(conv(v), True)
        out[name] = (np.asarray(f), np.asarray(df))
    np.testing.assert_allclose(out["torch"][0], out["array API"][0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(out["torch"][1], out["array API"][1], rtol=1e-10, atol=1e-15)


def _root64(nlp, delta):
    """beta with KL(softmax(beta * nlp) || uniform) = delta, by bisection in float64."""
    n = nlp.shape[-1]

    def kl(b):
        t = b * nlp
        lw = t - np.log(np.sum(np.exp(t)))
        return float(np.sum(np.exp(lw) * lw) + math.log(n))

    lo, hi = 1e-12, 1e6
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if kl(mid) < delta else (lo, mid)
    return lo


def test_fused_residual_is_as_precise_as_the_array_api_one_for_small_radii():
    """float32, radius 1e-4: the residual at the exact root is rounding, not the systematic error of
    a log-normaliser near log(n) (which ``log_softmax`` or ``logsumexp`` would carry: eps * log(n))."""
    delta = 1e-4
    errors = {"torch": [], "array API": []}
    for seed in range(24):
        nlp = _rows(seed, n=256, excluded=False)[:1]
        beta = _root64(nlp[0], delta)
        for name, xp, conv in (("torch", xpt, torch.asarray), ("array API", strict, strict.asarray)):
            rows = conv(nlp.astype(np.float32))
            count = conv(np.full((1, 1), 256.0, dtype=np.float32))
            fun = _make_fun(xp, conv(np.asarray(delta, dtype=np.float32)), False)(rows, count=count)
            f, _ = fun(conv(np.full((1, 1), math.log(beta), dtype=np.float32)), False)
            errors[name].append(abs(float(np.asarray(f)[0, 0])) / delta)
    fused, generic = np.median(errors["torch"]), np.median(errors["array API"])
    # measured: 2.6x here (both at rounding level: 4e-8 absolute); logsumexp's form is 8x, log_softmax's 19x
    assert fused <= 4.0 * generic, (fused, generic)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [128, 20_000])  # 20,000: a coarse grid with zoom stages
@pytest.mark.parametrize("delta", [0.0, 1e-3, 0.5, 10.0])
def test_a_python_number_radius_gives_the_weights_of_the_array_radius(dtype, n, delta):
    dt = getattr(torch, dtype)
    g = torch.Generator().manual_seed(n)
    losses = torch.rand(n, generator=g, dtype=torch.float64).to(dt) * 3
    losses[:: max(n // 10, 2)] = math.inf  # excluded examples
    work = _work(dt)
    w_number = kl_constrained(losses, delta, work)
    w_array = kl_constrained(losses, torch.tensor(delta, dtype=dt), work)
    rtol = 1e-9 if dtype == "float64" else 1e-4
    torch.testing.assert_close(w_number, w_array, rtol=rtol, atol=1e-12 if dtype == "float64" else 1e-8)
    if delta == 0.0:  # uniform on the finite losses
        fin = torch.isfinite(losses)
        torch.testing.assert_close(w_number[fin], torch.full_like(w_number[fin], 1.0 / int(fin.sum())))


def test_a_python_number_radius_meets_the_constraint_like_numpy():
    rng = np.random.default_rng(3)
    losses = rng.exponential(size=(4, 300))
    ref = np.asarray(dw.instance_weights(losses, dw.KL(), delta=0.3))
    w = kl_constrained(torch.asarray(losses), 0.3, _work(torch.float64)).numpy()
    np.testing.assert_allclose(w, ref, rtol=1e-8, atol=1e-14)
    kl = np.sum(w * np.log(w * losses.shape[-1]), axis=-1)
    np.testing.assert_allclose(kl, 0.3, rtol=1e-7)


def test_instance_weights_passes_a_number_radius_through_on_torch():
    """The public function hands a Python-number radius to the KL solver as a number: the weights
    are those of the same radius as an array, with fewer operations (``tests/test_op_counts_core.py``)."""
    g = torch.Generator().manual_seed(5)
    losses = torch.rand(3, 200, generator=g, dtype=torch.float64) * 4
    losses[0, :7] = math.inf
    for delta in (0.0, 0.02, 0.7):
        torch.testing.assert_close(
            dw.instance_weights(losses, dw.KL(), delta=delta),
            dw.instance_weights(losses, dw.KL(), delta=torch.tensor(delta, dtype=torch.float64)),
            rtol=1e-9,
            atol=1e-15,
        )


def test_a_number_radius_under_jax_jit_gives_the_numpy_weights():
    jax = pytest.importorskip("jax")
    rng = np.random.default_rng(6)
    losses = rng.exponential(size=(2, 300))
    for divergence in (dw.KL(), dw.Alpha(1.0)):  # Alpha(1) is KL: the same solver
        fn = jax.jit(lambda x, d=divergence: dw.instance_weights(x, d, delta=0.4))
        np.testing.assert_allclose(
            np.asarray(fn(jax.numpy.asarray(losses))),
            np.asarray(dw.instance_weights(losses, divergence, delta=0.4)),
            rtol=1e-8,
            atol=1e-14,
        )


@st.composite
def _structured_rows(draw):
    """Loss rows that stress the exact-radius finder: ties, a near-tie with the minimum, many scales,
    sorted rows, excluded (infinite) examples."""
    n = draw(st.sampled_from([2, 3, 10, 49, 128, 500]))  # (1 / 49) * 49 < 1 in float64
    kind = draw(st.sampled_from(["exponential", "ties", "near-tie", "sorted", "wide"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "ties":
        losses = rng.integers(0, 3, size=n).astype(float)
    elif kind == "near-tie":
        losses = np.full(n, 5.0)
        losses[rng.integers(n)] = 5.0 - 1e-9
    elif kind == "sorted":
        losses = np.sort(rng.exponential(size=n))
    elif kind == "wide":
        losses = rng.normal(size=n) * 1e3
    else:
        losses = rng.exponential(size=n)
    losses = losses * 10.0 ** draw(st.floats(-20, 20))
    if draw(st.booleans()) and n > 2:
        losses[rng.choice(n, size=max(1, n // 10), replace=False)] = math.inf
    return losses


@given(losses=_structured_rows(), delta=st.sampled_from([0.0, 1e-6, 1e-3, 0.05, 0.5, 2.0, 10.0]))
@settings(max_examples=60, deadline=None)
def test_torch_number_and_array_radii_equal_numpy_on_structured_rows(losses, delta):
    ref = np.asarray(dw.instance_weights(losses, dw.KL(), delta=delta))
    x = torch.asarray(losses)
    for radius in (delta, torch.tensor(delta, dtype=torch.float64)):
        w = dw.instance_weights(x, dw.KL(), delta=radius).numpy()
        assert np.all(np.isfinite(w))
        np.testing.assert_allclose(w, ref, rtol=1e-6, atol=1e-12)
        if delta == 0.0:  # exactly uniform on the finite losses, not to a tolerance
            kept = w[np.isfinite(losses)]
            assert kept.min() == kept.max()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [49, 103])  # (1 / n) * n < 1 in float64: a residual that rounds below 0
def test_a_zero_radius_gives_exactly_uniform_weights(dtype, n):
    """Where rounding makes the residual slightly negative at tiny beta, only the explicit zero-radius
    case keeps the weights exactly uniform (the finder alone would stop at a beta of about 1e-8)."""
    dt = getattr(torch, dtype)
    losses = torch.rand(n, generator=torch.Generator().manual_seed(n), dtype=dt) * 3
    for radius in (0.0, torch.tensor(0.0, dtype=dt)):
        w = dw.instance_weights(losses, dw.KL(), delta=radius)
        assert float(w.min()) == float(w.max())
