"""The core's ``where`` / ``clip`` helpers: the same values and dtypes as the namespace's own functions, and under
JAX one primitive each (no nested jit: issue 10's equation budget)."""

from __future__ import annotations

import numpy as np
import pytest

from divweights._array import clip, where

jax = pytest.importorskip("jax")
jnp = jax.numpy


def _count(f, *args) -> int:
    return len(jax.make_jaxpr(f)(*args).jaxpr.eqns)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_jax_where_equals_jnp_where_and_keeps_the_dtype(dtype):
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 5)), dtype=dtype)
    m = jnp.min(x, axis=-1, keepdims=True)
    for a, b in [(x, m), (m, x), (x, 0.0), (0.0, x), (x, x[0])]:
        got = where(jnp, x < 0.1, a, b)
        want = jnp.where(x < 0.1, a, b)
        assert got.dtype == want.dtype == dtype
        np.testing.assert_array_equal(np.asarray(got, np.float64), np.asarray(want, np.float64))


def test_jax_where_is_one_select_plus_broadcasts():
    x = jnp.ones((4, 5), jnp.float32)
    m = jnp.ones((4, 1), jnp.float32)
    assert _count(lambda x, m: where(jnp, x < 1, x, m), x, m) == 3  # lt, broadcast of m, select
    assert _count(lambda x, m: jnp.where(x < 1, x, m), x, m) == 2  # lt and a nested jit (with 2 inside)


@pytest.mark.parametrize("bounds", [(-0.5, 0.5), (None, 0.0), (0.0, None), (0.5, -0.5)])
def test_jax_clip_equals_jnp_clip_and_keeps_the_dtype(bounds):
    x = jnp.asarray(np.random.default_rng(1).normal(size=(3, 7)), jnp.float32)
    lo, hi = bounds
    got = clip(jnp, x, min=lo, max=hi)
    assert got.dtype == jnp.float32
    np.testing.assert_array_equal(got, jnp.clip(x, lo, hi))


def test_jax_clip_casts_array_bounds_to_the_dtype_of_x():
    x = jnp.asarray([1.0, -2.0, 3.0], jnp.float16)
    lo = jnp.asarray([0.0], jnp.float32)
    assert clip(jnp, x, min=lo).dtype == jnp.float16
    assert _count(lambda x: clip(jnp, x, min=-1.0, max=1.0), x) == 2  # max and min; jnp.clip is a nested jit


def test_jax_clip_propagates_nan():
    assert bool(jnp.isnan(clip(jnp, jnp.asarray([jnp.nan]), min=0.0, max=1.0))[0])


def test_other_namespaces_use_their_own_functions():
    x = np.array([[1.0, -1.0], [2.0, np.nan]])
    np.testing.assert_array_equal(clip(np, x, min=0.0, max=1.5), np.clip(x, 0.0, 1.5))
    np.testing.assert_array_equal(where(np, x > 0, x, 0.0), np.where(x > 0, x, 0.0))


# -- torch's fused logsumexp and softmax -----------------------------------------------------------

ROWS = [
    [0.0, -1.0, -3.0],
    [-np.inf, -np.inf, -np.inf],  # all -inf: -inf (and NaN weights, as exp / sum gives)
    [np.inf, 1.0, -np.inf],
    [-1e30, -2e30, -1e30],
    [1e38, 1e38, -1e38],
]


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_torch_logsumexp_equals_the_array_api_formula(row):
    torch = pytest.importorskip("torch")
    import array_api_compat.numpy as xp_np
    import array_api_compat.torch as xp_torch

    from divweights._array import logsumexp

    x = np.array([row, row[::-1]], dtype=np.float64)
    with np.errstate(divide="ignore"):  # log(0) = -inf on purpose (the solvers run under quiet())
        expected = logsumexp(xp_np, x)  # the generic formula (max, clip, exp, sum, log)
    for keepdims in (True, False):
        got = logsumexp(xp_torch, torch.asarray(x), keepdims=keepdims).numpy()
        np.testing.assert_allclose(got, expected if keepdims else expected[:, 0], rtol=1e-15)


@pytest.mark.parametrize("row", ROWS[:1] + ROWS[3:], ids=str)
def test_torch_normalised_exp_equals_exp_over_sum(row):
    torch = pytest.importorskip("torch")
    import array_api_compat.torch as xp_torch

    from divweights._array import normalised_exp

    t = np.array(row, dtype=np.float64) - np.max(row)  # the solvers pass t <= 0 with a 0
    e = np.exp(t)
    np.testing.assert_allclose(normalised_exp(xp_torch, torch.asarray(t)).numpy(), e / e.sum(), rtol=1e-15)


def test_torch_helpers_are_one_kernel_each():
    torch = pytest.importorskip("torch")
    import array_api_compat.torch as xp_torch
    from torch_helpers import op_counts

    from divweights._array import logsumexp, normalised_exp

    x = torch.randn(4, 6)
    assert op_counts(lambda: logsumexp(xp_torch, x)) == {"logsumexp.default": 1}
    assert op_counts(lambda: normalised_exp(xp_torch, x)) == {"_softmax.default": 1}
