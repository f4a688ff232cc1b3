"""The robust-loss baselines of the JAX adapter against direct computations.

Bi-tempered: a NumPy float64 transcription of Algorithm 1 of Amid et al.
(2019) (fixed-point normaliser for t2 > 1, bisection for t2 < 1), plus the
properties that pin it independently of any transcription: the tempered
softmax sums to one once the normaliser has converged, t1 = t2 = 1 is the
cross-entropy, the loss is bounded for t1 < 1, and the closed-form gradient
equals finite differences of the converged loss.  NCE+RCE, GCE and SCE:
their formulas written out in NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp
from divweights_jax.baselines import (
    bi_tempered_logistic_loss,
    generalized_cross_entropy,
    nce_rce_loss,
    symmetric_cross_entropy,
)


@pytest.fixture
def x64():
    """float64 for the comparisons with NumPy (conftest usually enables it already); restores the setting."""
    before = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", before)


def _data(rng, n=6, k=4, scale=2.0):
    z = rng.normal(scale=scale, size=(n, k))
    y = rng.integers(0, k, size=n)
    return z, y


def _onehot(y, k):
    return np.eye(k)[y]


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# -------------------------------------------------- bi-tempered, reference


def _np_log_t(u, t):
    return np.log(u) if t == 1 else (u ** (1 - t) - 1) / (1 - t)


def _np_exp_t(u, t):
    return np.exp(u) if t == 1 else np.maximum(1 + (1 - t) * u, 0) ** (1 / (1 - t))


def _np_normaliser(a, t, num_iters):
    """Algorithm 1 of Amid et al. (2019), row by row."""
    out = np.empty(a.shape[0])
    for i, row in enumerate(a):
        mu = row.max()
        a0 = row - mu
        if t == 1:
            out[i] = mu + np.log(np.exp(a0).sum())
        elif t > 1:
            x = a0.copy()
            for _ in range(num_iters):
                x = a0 * np.sum(_np_exp_t(x, t)) ** (1 - t)
            out[i] = mu - _np_log_t(1 / np.sum(_np_exp_t(x, t)), t)
        else:
            d = np.sum(a0 > -1 / (1 - t))
            lo, hi = 0.0, -_np_log_t(1 / d, t)
            for _ in range(num_iters):
                mid = (lo + hi) / 2
                if np.sum(_np_exp_t(a0 - mid, t)) < 1:
                    hi = mid
                else:
                    lo = mid
            out[i] = mu + (lo + hi) / 2
    return out


def _np_bi_tempered(a, y, t1, t2, num_iters=5, label_smoothing=0.0):
    k = a.shape[1]
    if label_smoothing > 0:
        y = (1 - k / (k - 1) * label_smoothing) * y + label_smoothing / (k - 1)
    p = _np_exp_t(a - _np_normaliser(a, t2, num_iters)[:, None], t2)
    if t1 == 1 and t2 == 1:
        return np.sum(np.where(y == 0, 0, y * (np.log(y + 1e-10) - np.log(p))), -1)
    loss = y * (_np_log_t(y + 1e-10, t1) - _np_log_t(p, t1)) - (y ** (2 - t1) - p ** (2 - t1)) / (2 - t1)
    return loss.sum(-1)


@pytest.mark.parametrize("t1, t2", [(0.8, 1.2), (0.2, 4.0), (0.5, 1.0), (1.0, 1.5), (0.7, 0.5), (1.0, 1.0)])
@pytest.mark.parametrize("num_iters", [5, 1])
def test_bi_tempered_matches_the_reference_algorithm(rng, x64, t1, t2, num_iters):
    z, y = _data(rng)
    got = bi_tempered_logistic_loss(jnp.asarray(z), jnp.asarray(y), t1, t2, num_iters=num_iters)
    want = _np_bi_tempered(z, _onehot(y, 4), t1, t2, num_iters)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-10, atol=1e-12)


def test_bi_tempered_label_smoothing_and_soft_targets(rng, x64):
    z, y = _data(rng)
    soft = _softmax(rng.normal(size=(6, 4)))
    got = bi_tempered_logistic_loss(jnp.asarray(z), jnp.asarray(soft), 0.6, 1.8, label_smoothing=0.1)
    np.testing.assert_allclose(np.asarray(got), _np_bi_tempered(z, soft, 0.6, 1.8, 5, 0.1), rtol=1e-10)
    by_label = bi_tempered_logistic_loss(jnp.asarray(z), jnp.asarray(y), 0.6, 1.8, label_smoothing=0.1)
    np.testing.assert_allclose(np.asarray(by_label), _np_bi_tempered(z, _onehot(y, 4), 0.6, 1.8, 5, 0.1), rtol=1e-10)


@pytest.mark.parametrize("t2", [1.5, 4.0, 0.5])
def test_tempered_softmax_sums_to_one_when_converged(rng, x64, t2):
    from divweights_jax.baselines import _tempered_softmax

    z, _ = _data(rng, n=8, k=5, scale=3.0)
    p = np.asarray(_tempered_softmax(jnp.asarray(z), t2, 60))
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-9)
    by_logit = np.take_along_axis(p, np.argsort(-z, axis=-1), axis=-1)
    assert np.all(np.diff(by_logit, axis=-1) <= 0)  # monotone in the logits


def test_t1_t2_one_is_cross_entropy(rng):
    z, y = _data(rng)
    got = bi_tempered_logistic_loss(jnp.asarray(z, jnp.float32), jnp.asarray(y), 1.0, 1.0)
    ce = -np.log(_softmax(z))[np.arange(6), y]
    np.testing.assert_allclose(np.asarray(got), ce, rtol=1e-5)


def test_bi_tempered_is_bounded_for_t1_below_one():
    t1 = 0.5
    z = jnp.array([[-1e4, 0.0, 0.0], [-30.0, 0.0, 0.0]])
    loss = np.asarray(bi_tempered_logistic_loss(z, jnp.array([0, 0]), t1, 2.0))
    # -log_t1(p_y) <= 1 / (1 - t1), and the power term is <= 0 (sum_j p_j^(2 - t1) <= 1)
    bound = 1 / (1 - t1)
    assert np.all(np.isfinite(loss)) and np.all(loss <= bound + 1e-6)
    assert loss[0] > loss[1] > 0


@pytest.mark.parametrize("t1, t2", [(0.8, 1.2), (0.3, 3.0), (1.0, 1.0), (0.5, 1.0)])
def test_bi_tempered_gradient_is_the_derivative_of_the_converged_loss(rng, x64, t1, t2):
    z, y = _data(rng, n=3, k=4)
    soft = 0.9 * _onehot(y, 4) + 0.025

    def total(a):
        return jnp.sum(bi_tempered_logistic_loss(a, jnp.asarray(soft), t1, t2, num_iters=80))

    g = np.asarray(jax.grad(total)(jnp.asarray(z)))
    eps, fd = 1e-6, np.zeros_like(z)
    for idx in np.ndindex(*z.shape):
        e = np.zeros_like(z)
        e[idx] = eps
        fd[idx] = (float(total(jnp.asarray(z + e))) - float(total(jnp.asarray(z - e)))) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_bi_tempered_half_precision_is_safe(dtype):
    z = jnp.array([[6e4, -6e4, 0.0], [1.0, 2.0, 3.0], [-6e4, -6e4, -6e4]]).astype(dtype)
    y = jnp.array([1, 0, 2])
    for t1, t2 in [(0.8, 1.2), (0.2, 4.0), (0.5, 0.7)]:
        f = jax.jit(lambda a: bi_tempered_logistic_loss(a, y, t1, t2))
        loss = f(z)
        g = jax.jit(jax.grad(lambda a: jnp.sum(bi_tempered_logistic_loss(a, y, t1, t2))))(z)
        assert loss.dtype == jnp.float32 and g.dtype == dtype
        assert np.all(np.isfinite(np.asarray(loss))) and np.all(np.isfinite(np.asarray(g, np.float32)))
        np.testing.assert_allclose(
            np.asarray(loss), np.asarray(bi_tempered_logistic_loss(z.astype(jnp.float32), y, t1, t2)), rtol=1e-6
        )


def test_bi_tempered_under_jit_vmap_and_traced_smoothing(rng):
    z, y = _data(rng)
    z, y = jnp.asarray(z, jnp.float32), jnp.asarray(y)
    f = jax.jit(lambda a, s: bi_tempered_logistic_loss(a, y, 0.7, 1.3, label_smoothing=s))
    np.testing.assert_allclose(
        np.asarray(f(z, jnp.float32(0.1))),
        np.asarray(bi_tempered_logistic_loss(z, y, 0.7, 1.3, label_smoothing=0.1)),
        rtol=1e-6,
    )
    batched = jax.vmap(lambda a, b: bi_tempered_logistic_loss(a, b, 0.7, 1.3))(z[None], y[None])
    np.testing.assert_allclose(np.asarray(batched[0]), np.asarray(bi_tempered_logistic_loss(z, y, 0.7, 1.3)))


def test_bi_tempered_argument_errors():
    z, y = jnp.zeros((2, 3)), jnp.array([0, 1])
    with pytest.raises(ValueError, match="t1"):
        bi_tempered_logistic_loss(z, y, 2.0, 1.0)
    with pytest.raises(ValueError, match="t2"):
        bi_tempered_logistic_loss(z, y, 0.5, 0.0)
    with pytest.raises(ValueError, match="num_iters"):
        bi_tempered_logistic_loss(z, y, 0.5, 1.5, num_iters=-1)
    with pytest.raises(ValueError, match="label_smoothing"):
        bi_tempered_logistic_loss(z, y, 0.5, 1.5, label_smoothing=1.0)


# ------------------------------------------------------------ NCE+RCE, GCE, SCE


def _np_rce(p, y):
    return -np.sum(np.clip(p, 1e-7, 1) * np.log(np.clip(y, 1e-4, 1)), -1)


def test_nce_rce_matches_its_formula(rng, x64):
    z, y = _data(rng)
    p, Y = _softmax(z), _onehot(y, 4)
    nce = np.log(p)[np.arange(6), y] / np.log(p).sum(-1)
    want = 2.0 * nce + 0.5 * _np_rce(p, Y)
    got = nce_rce_loss(jnp.asarray(z), jnp.asarray(y), alpha=2.0, beta=0.5)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)
    soft = nce_rce_loss(jnp.asarray(z), jnp.asarray(Y), alpha=2.0, beta=0.5)
    np.testing.assert_allclose(np.asarray(soft), want, rtol=1e-12)
    # a one-hot label's RCE is -log(1e-4) times the (clipped) mass off the label
    rce = np.asarray(nce_rce_loss(jnp.asarray(z), jnp.asarray(y), alpha=0.0, beta=1.0))
    off = np.clip(p, 1e-7, 1).sum(-1) - np.clip(p, 1e-7, 1)[np.arange(6), y]
    np.testing.assert_allclose(rce, -np.log(1e-4) * off, rtol=1e-12)


def test_generalized_cross_entropy_matches_its_formula_and_limits(rng, x64):
    z, y = _data(rng)
    p = _softmax(z)
    py = p[np.arange(6), y]
    got = generalized_cross_entropy(jnp.asarray(z), jnp.asarray(y), q=0.7)
    np.testing.assert_allclose(np.asarray(got), (1 - py**0.7) / 0.7, rtol=1e-12)
    mae = generalized_cross_entropy(jnp.asarray(z), jnp.asarray(y), q=1.0)
    np.testing.assert_allclose(np.asarray(mae), 1 - py, rtol=1e-12)
    near_ce = generalized_cross_entropy(jnp.asarray(z), jnp.asarray(y), q=1e-6)
    np.testing.assert_allclose(np.asarray(near_ce), -np.log(py), rtol=1e-4)
    soft = 0.8 * _onehot(y, 4) + 0.05
    got_soft = generalized_cross_entropy(jnp.asarray(z), jnp.asarray(soft), q=0.5)
    np.testing.assert_allclose(np.asarray(got_soft), np.sum(soft * (1 - p**0.5), -1) / 0.5, rtol=1e-12)


def test_generalized_cross_entropy_gradient(rng, x64):
    z, y = _data(rng)
    q = 0.7
    g = jax.grad(lambda a: jnp.sum(generalized_cross_entropy(a, jnp.asarray(y), q=q)))(jnp.asarray(z))
    p = _softmax(z)
    py = p[np.arange(6), y][:, None]
    np.testing.assert_allclose(np.asarray(g), -(py**q) * (_onehot(y, 4) - p), rtol=1e-10, atol=1e-14)


def test_generalized_cross_entropy_does_not_underflow():
    z = jnp.array([[0.0, 200.0, 0.0]])  # p_0 = exp(-200) underflows in float32
    g = jax.grad(lambda a: jnp.sum(generalized_cross_entropy(a, jnp.array([0]), q=0.001)))(z)
    assert np.all(np.isfinite(np.asarray(g)))
    np.testing.assert_allclose(float(generalized_cross_entropy(z, jnp.array([0]), q=0.001)[0]), 181.3, rtol=1e-3)


def test_symmetric_cross_entropy_matches_its_formula(rng, x64):
    z, y = _data(rng)
    p, Y = _softmax(z), _onehot(y, 4)
    want = 0.1 * -np.log(p[np.arange(6), y]) + 1.0 * _np_rce(p, Y)
    np.testing.assert_allclose(np.asarray(symmetric_cross_entropy(jnp.asarray(z), jnp.asarray(y))), want, rtol=1e-12)
    soft = 0.7 * Y + 0.075
    want_soft = 0.3 * -np.sum(soft * np.log(p), -1) + 2.0 * _np_rce(p, soft)
    got_soft = symmetric_cross_entropy(jnp.asarray(z), jnp.asarray(soft), alpha=0.3, beta=2.0)
    np.testing.assert_allclose(np.asarray(got_soft), want_soft, rtol=1e-12)


# ------------------------------------------------------------------ all four

LOSSES = {
    "bi_tempered": lambda z, y: bi_tempered_logistic_loss(z, y, 0.8, 1.2),
    "nce_rce": lambda z, y: nce_rce_loss(z, y),
    "gce": lambda z, y: generalized_cross_entropy(z, y),
    "sce": lambda z, y: symmetric_cross_entropy(z, y),
}


@pytest.mark.parametrize("name", LOSSES)
def test_out_of_range_label_under_jit_gives_nan(name):
    z = jnp.zeros((3, 4))
    loss = jax.jit(LOSSES[name])(z, jnp.array([0, 4, -1]))
    assert np.isfinite(float(loss[0])) and np.isnan(float(loss[1])) and np.isnan(float(loss[2]))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        LOSSES[name](z, jnp.array([0, 4, 1]))


@pytest.mark.parametrize("name", LOSSES)
def test_shapes_dtypes_and_leading_axes(rng, name):
    z = jnp.asarray(rng.normal(size=(2, 5, 3)), jnp.bfloat16)
    y = jnp.asarray(rng.integers(0, 3, size=(2, 5)))
    loss = jax.jit(LOSSES[name])(z, y)
    assert loss.shape == (2, 5) and loss.dtype == jnp.float32
    flat = LOSSES[name](z.reshape(10, 3), y.reshape(10))
    np.testing.assert_allclose(np.asarray(loss).ravel(), np.asarray(flat), rtol=1e-6)


@pytest.mark.parametrize("name", LOSSES)
def test_bad_target_shapes_are_errors(name):
    with pytest.raises(ValueError, match="targets"):
        LOSSES[name](jnp.zeros((3, 4)), jnp.array([0, 1]))
    with pytest.raises(ValueError, match="targets"):
        LOSSES[name](jnp.zeros((3, 4)), jnp.zeros((3, 3)))


def test_coefficient_errors():
    z, y = jnp.zeros((2, 3)), jnp.array([0, 1])
    with pytest.raises(ValueError, match="alpha"):
        nce_rce_loss(z, y, alpha=-1.0)
    with pytest.raises(ValueError, match="beta"):
        symmetric_cross_entropy(z, y, beta=float("nan"))
    with pytest.raises(ValueError, match="q"):
        generalized_cross_entropy(z, y, q=0.0)
    with pytest.raises(ValueError, match="two classes"):
        nce_rce_loss(jnp.zeros((2, 1)), jnp.array([0, 0]))


def test_generalized_cross_entropy_tends_to_cross_entropy_in_float32():
    """1 - exp(q log p) cancels for small q in float32; -expm1 does not."""
    z = jnp.asarray([[2.0, 0.0, -1.0]], jnp.float32)
    ce = -jax.nn.log_softmax(z)[0, 1]
    np.testing.assert_allclose(float(generalized_cross_entropy(z, jnp.asarray([1]), q=1e-8)[0]), float(ce), rtol=1e-5)


@pytest.mark.parametrize(("t1", "t2"), [(1.0, 1.5), (1.0, 0.5)])
def test_bi_tempered_at_t1_one_is_finite_where_a_probability_vanishes(t1, t2):
    """0 * log_t1(0) = 0 * -inf was NaN for a class the label does not hold (a -inf logit, or t2 < 1)."""
    z = jnp.asarray([[0.0, -jnp.inf, 1.0], [0.0, -200.0, 1.0]])
    value = bi_tempered_logistic_loss(z, jnp.asarray([0, 0]), t1=t1, t2=t2, num_iters=30)
    assert np.isfinite(np.asarray(value)).all()
