"""The same call on numpy, array-api-strict, torch and jax (jitted) gives the
same weights, in the input's namespace and dtype."""

import numpy as np
import pytest
from helpers import CLASS_DIVERGENCES, INSTANCE_CASES, case_id

import divweights as dw


@pytest.mark.parametrize("case", INSTANCE_CASES, ids=case_id)
def test_instance_weights_agree_across_backends(backend, case, rng):
    divergence, form = case
    losses = rng.exponential(size=(3, 17))
    expected = dw.instance_weights(losses, divergence, **{form: 0.3})
    x = backend.asarray(losses)
    out = backend.call(dw.instance_weights, x, divergence, **{form: 0.3})
    assert backend.is_namespace_of(out)
    assert out.dtype == x.dtype
    np.testing.assert_allclose(backend.to_numpy(out), expected, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("divergence", CLASS_DIVERGENCES, ids=repr)
@pytest.mark.parametrize("soft", [False, True], ids=["labels", "probabilities"])
def test_class_weights_agree_across_backends(backend, divergence, soft, rng):
    L = rng.exponential(size=(6, 5))
    y = rng.dirichlet(np.ones(5), size=6) if soft else rng.integers(0, 5, size=6)
    expected = dw.class_weights(L, y, divergence, gamma=0.2)
    out = backend.call(dw.class_weights, backend.asarray(L), backend.asarray(y), divergence, gamma=0.2)
    assert backend.is_namespace_of(out)
    np.testing.assert_allclose(backend.to_numpy(out), expected, rtol=1e-8, atol=1e-10)


def test_kl_soft_class_weights_agree_across_backends(backend, rng):
    L = rng.exponential(size=(4, 6))
    y = rng.dirichlet(np.ones(6), size=4)
    expected = dw.class_weights(L, y, dw.KL(), gamma=0.1)
    out = backend.call(dw.class_weights, backend.asarray(L), backend.asarray(y), dw.KL(), gamma=0.1)
    np.testing.assert_allclose(backend.to_numpy(out), expected, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("case", INSTANCE_CASES[::3], ids=case_id)
def test_low_precision_dtype_is_kept_and_weights_are_on_the_simplex(backend, dtype, case, rng):
    if dtype != "float32" and backend.value == "array_api_strict":
        pytest.skip("array-api-strict has no half precision")
    if dtype == "bfloat16" and backend.value == "numpy":
        pytest.skip("numpy has no bfloat16")
    divergence, form = case
    x = backend.asarray(rng.exponential(size=(2, 33)) * 3, dtype=dtype)
    out = backend.call(dw.instance_weights, x, divergence, **{form: 0.5})
    assert out.dtype == backend.dtype(dtype)
    w = backend.to_numpy(out).astype(np.float64)
    assert np.all(w >= 0)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=2e-2 if "16" in dtype else 1e-5)
    # the reference: float64 weights of the same (rounded) losses.  Half precision is
    # computed in float32 and only rounded on the way out (within eps of each weight);
    # float32 within a few dozen eps of each weight, and a few eps of the largest one
    # (entries of the sparse forms close to their threshold cancel)
    ref = dw.instance_weights(backend.to_numpy(x).astype(np.float64), divergence, **{form: 0.5})
    eps, rel, ab = {"float16": (2.0**-10, 1, 1e-3), "bfloat16": (2.0**-7, 1, 1e-3), "float32": (2.0**-23, 64, 8)}[dtype]
    np.testing.assert_allclose(w, ref, rtol=rel * eps, atol=ab * eps * ref.max())


def test_integer_losses_are_promoted_to_the_default_float(backend):
    x = backend.asarray(np.array([3, 1, 2, 7]), dtype="int64")
    out = backend.call(dw.instance_weights, x, dw.KL(), lam=1.0)
    np.testing.assert_allclose(
        backend.to_numpy(out), dw.instance_weights(np.array([3.0, 1, 2, 7]), dw.KL(), lam=1.0), rtol=1e-6
    )


def test_torch_device_and_grad_free_output():
    torch = pytest.importorskip("torch")
    x = torch.rand(2, 9, requires_grad=True)
    w = dw.instance_weights(x, dw.KL(), delta=0.2)  # no detach by the caller: the core detaches
    assert w.device == x.device and not w.requires_grad and w.grad_fn is None
    torch.testing.assert_close(w, dw.instance_weights(x.detach(), dw.KL(), delta=0.2), rtol=0, atol=0)


def test_traced_hyperparameters_under_jit_match_eager():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    losses = jnp.asarray(np.random.default_rng(0).exponential(size=(2, 12)))
    f = jax.jit(lambda l, t: dw.instance_weights(l, dw.Alpha(0.1), temperature=t))
    g = jax.jit(lambda l, d: dw.instance_weights(l, dw.TotalVariation(), delta=d))
    for t in (0.1, 1.0):
        np.testing.assert_allclose(
            f(losses, jnp.asarray(t)), dw.instance_weights(np.asarray(losses), dw.Alpha(0.1), temperature=t), rtol=1e-10
        )
    for d in (0.05, 0.4):
        np.testing.assert_allclose(
            g(losses, jnp.asarray(d)),
            dw.instance_weights(np.asarray(losses), dw.TotalVariation(), delta=d),
            rtol=1e-10,
            atol=1e-15,
        )


def test_jax_weights_are_constants_and_the_weighted_loss_has_danskins_gradient():
    jax = pytest.importorskip("jax")
    l = jax.numpy.asarray([0.3, 1.2, 0.1, 4.0])
    grad = jax.grad(lambda x: dw.instance_weights(x, dw.KL(), delta=0.2)[0])(l)
    np.testing.assert_array_equal(np.asarray(grad), 0.0)
    # the weighted loss sum_i w_i l_i differentiates to w (the weights held constant)
    w = dw.instance_weights(l, dw.KL(), delta=0.2)
    g = jax.grad(lambda x: jax.numpy.sum(dw.instance_weights(x, dw.KL(), delta=0.2) * x))(l)
    np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-12)
