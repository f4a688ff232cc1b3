"""divweights.mixup.balance_class_shift: the CICW-M guard against a batch's class weights moving into one class."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from divweights import KL, ReverseKL, TotalVariation, class_weights
from divweights.mixup import balance_class_shift


def hand_balance(v, y):
    """The rule written out for one batch (n, k): s = 1 - |sum_i d_i|_1 / sum_i |d_i|_1, v' = y + s d."""
    d = v - y
    gross = np.abs(d).sum()
    s = 1.0 if gross == 0 else 1.0 - np.abs(d.sum(axis=0)).sum() / gross
    return y + s * d


def batch(rng, n=12, k=4):
    y = np.eye(k)[rng.integers(0, k, size=n)]
    v = 0.6 * y + 0.4 * rng.dirichlet(np.ones(k), size=n)
    return v, y


def test_matches_the_hand_formula(rng):
    v, y = batch(rng)
    np.testing.assert_allclose(balance_class_shift(v, y), hand_balance(v, y), rtol=1e-14, atol=1e-15)


def test_balanced_exchange_is_kept():
    y = np.eye(3)[[0, 1, 2]]
    v = np.array([[0.7, 0.3, 0.0], [0.0, 0.8, 0.2], [0.1, 0.0, 0.9]])  # a cycle 0 -> 1 -> 2 -> 0 of equal mass
    v[1] = [0.0, 0.7, 0.3]
    v[2] = [0.3, 0.0, 0.7]
    np.testing.assert_allclose(balance_class_shift(v, y), v, atol=1e-15)


def test_every_shift_into_one_class_is_undone():
    y = np.eye(3)[[0, 1, 0]]
    v = np.array([[0.6, 0.0, 0.4], [0.0, 0.9, 0.1], [0.8, 0.0, 0.2]])
    np.testing.assert_allclose(balance_class_shift(v, y), y, atol=1e-15)


def test_no_shift_returns_the_labels():
    y = np.eye(4)[[3, 1]]
    np.testing.assert_array_equal(balance_class_shift(y.copy(), y), y)


def test_rows_equal_to_their_labels_do_not_count(rng):
    """Ignored rows (v_i = y_i) change neither s nor themselves: adding them changes nothing."""
    v, y = batch(rng, n=6)
    extra = np.eye(4)[[0, 0, 2]]
    out = balance_class_shift(np.concatenate([v, extra]), np.concatenate([y, extra]))
    np.testing.assert_allclose(out[:6], balance_class_shift(v, y), rtol=1e-14)
    np.testing.assert_array_equal(out[6:], extra)


def test_leading_axes_are_independent_batches(rng):
    (v1, y1), (v2, y2) = batch(rng), batch(rng)
    out = balance_class_shift(np.stack([v1, v2]), np.stack([y1, y2]))
    np.testing.assert_allclose(out[0], hand_balance(v1, y1), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(out[1], hand_balance(v2, y2), rtol=1e-14, atol=1e-15)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 20), k=st.integers(2, 6), gamma=st.floats(0.01, 0.9))
def test_stays_on_the_simplex_and_inside_the_radius(seed, n, k, gamma):
    rng = np.random.default_rng(seed)
    losses = rng.exponential(size=(n, k)) * rng.choice([0.1, 1.0, 10.0], size=(n, 1))
    labels = rng.integers(0, k, size=n)
    y = np.eye(k)[labels]
    for div in (TotalVariation(), ReverseKL()):
        g = min(gamma, 1.0) if isinstance(div, TotalVariation) else gamma
        v = class_weights(losses, labels, div, gamma=g)
        out = balance_class_shift(v, y)
        assert np.all(out >= -1e-12)
        np.testing.assert_allclose(out.sum(axis=-1), 1.0, rtol=1e-12)
        for i in range(n):
            assert div(out[i], y[i]) <= div(v[i], y[i]) + 1e-9
        # the objective of each row is between the labels' and the unguarded weights'
        obj = (out * losses).sum(-1)
        assert np.all(obj <= (y * losses).sum(-1) + 1e-9)
        assert np.all(obj >= (v * losses).sum(-1) - 1e-9)


def test_soft_targets_with_kl(rng):
    y = rng.dirichlet(np.ones(3), size=8)
    v = class_weights(rng.exponential(size=(8, 3)), y, KL(), gamma=0.2)
    np.testing.assert_allclose(balance_class_shift(v, y), hand_balance(v, y), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_namespace_dtype_and_values_on_every_backend(backend, dtype, rng):
    if dtype == "float16" and backend.value == "array_api_strict":
        pytest.skip("array-api-strict has no float16")
    v, y = batch(rng)
    out = backend.call(balance_class_shift, backend.asarray(v, dtype), backend.asarray(y, dtype))
    assert backend.is_namespace_of(out)
    assert out.dtype == backend.dtype(dtype)
    tol = 2e-3 if dtype == "float16" else 1e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(backend.to_numpy(out), hand_balance(v.astype(dtype), y), atol=tol)


def test_weights_carry_no_gradient():
    torch = pytest.importorskip("torch")
    v = torch.tensor([[0.4, 0.6], [0.2, 0.8]], requires_grad=True)
    out = balance_class_shift(v, torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    assert out.grad_fn is None and not out.requires_grad


def test_nan_makes_the_batch_nan(rng):
    v, y = batch(rng, n=4)
    v[1, 0] = np.nan
    assert np.isnan(balance_class_shift(v, y)).all()


@pytest.mark.parametrize(
    ("v", "y", "error", "match"),
    [
        (
            np.ones((2, 3)) / 3,
            np.ones((2, 2)) / 2,
            ValueError,
            r"targets must have the shape of class_weights \(2, 3\)",
        ),
        (np.ones(3) / 3, np.ones(3) / 3, ValueError, "class_weights must have at least 2 dimension"),
        (np.ones((2, 2)) / 2, np.eye(2, dtype=np.int64), TypeError, "targets must be floating class distributions"),
        ([[0.5, 0.5]], np.eye(1, 2), TypeError, "class_weights must be an array"),
    ],
)
def test_invalid_inputs_are_named(v, y, error, match):
    with pytest.raises(error, match=match):
        balance_class_shift(v, y)


def test_arrays_of_different_libraries_are_refused():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="targets"):
        balance_class_shift(np.ones((2, 2)) / 2, torch.ones((2, 2)) / 2)


# ------------------------------------------------------------------ the adapters' option


def _torch_batch(rng, n=16, k=4):
    torch = pytest.importorskip("torch")
    logits = torch.as_tensor(rng.normal(size=(n, k)) * 2.0)
    labels = torch.as_tensor(rng.integers(0, k, size=n))
    return torch, logits, labels


def test_torch_loss_uses_the_core_balanced_class_weights(rng):
    torch, logits, labels = _torch_batch(rng)
    from divweights_torch import ReweightedLoss

    loss_fn = ReweightedLoss(lam=1.0, classes=ReverseKL(), gamma=0.3, balance_classes=True)
    loss = loss_fn(logits, labels)
    L = -torch.log_softmax(logits, -1).numpy()
    y = np.eye(4)[labels.numpy()]
    expected_v = balance_class_shift(class_weights(L, labels.numpy(), ReverseKL(), gamma=0.3), y)
    np.testing.assert_allclose(loss_fn.last_class_weights.numpy(), expected_v, rtol=1e-10, atol=1e-12)
    w = loss_fn.last_weights.numpy()
    np.testing.assert_allclose(loss.item(), w @ (expected_v * L).sum(-1), rtol=1e-10)
    assert "balance_classes=True" in repr(loss_fn)


def test_torch_fused_guard_equals_the_core(rng):
    torch = pytest.importorskip("torch")
    from divweights_torch._loss_ops import _balance_class_shift

    v, y = batch(rng)
    got = _balance_class_shift(torch.as_tensor(v), torch.as_tensor(y), None).numpy()
    np.testing.assert_allclose(got, balance_class_shift(v, y), rtol=1e-14, atol=1e-15)
    same = _balance_class_shift(torch.as_tensor(y), torch.as_tensor(y), None).numpy()
    np.testing.assert_array_equal(same, y)


def test_torch_ignored_rows_move_nothing(rng):
    torch, logits, labels = _torch_batch(rng, n=10)
    from divweights_torch import ReweightedLoss

    make = lambda: ReweightedLoss(lam=1.0, classes=TotalVariation(), gamma=0.4, balance_classes=True)
    full = make()
    padded = torch.cat([labels, torch.full((3,), -100)])
    full(torch.cat([logits, torch.randn(3, 4) * 5]), padded)
    alone = make()
    alone(logits, labels)
    np.testing.assert_allclose(full.last_class_weights[:10].numpy(), alone.last_class_weights.numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"balance_classes": True}, ValueError, "balance_classes=True needs class reweighting"),
        ({"classes": TotalVariation(), "gamma": 0.0, "balance_classes": True}, ValueError, "needs class reweighting"),
        (
            {"classes": TotalVariation(), "gamma": 0.2, "balance_classes": 1},
            TypeError,
            "balance_classes must be a bool",
        ),
    ],
)
def test_torch_option_is_validated(kwargs, error, match):
    pytest.importorskip("torch")
    from divweights_torch import ReweightedLoss

    with pytest.raises(error, match=match):
        ReweightedLoss(**kwargs)


def test_jax_loss_uses_the_core_balanced_class_weights(rng):
    jax = pytest.importorskip("jax")
    from divweights_jax import reweighted_loss

    logits = rng.normal(size=(16, 4)) * 2.0
    labels = rng.integers(0, 4, size=16)
    f = jax.jit(lambda z, t: reweighted_loss(z, t, lam=1.0, classes=ReverseKL(), gamma=0.3, balance_classes=True))
    loss, aux = f(logits, labels)
    L = -np.asarray(jax.nn.log_softmax(logits))
    expected_v = balance_class_shift(class_weights(L, labels, ReverseKL(), gamma=0.3), np.eye(4)[labels])
    np.testing.assert_allclose(np.asarray(aux["class_weights"]), expected_v, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(float(loss), np.asarray(aux["weights"]) @ (expected_v * L).sum(-1), rtol=1e-9)


def test_jax_masked_rows_move_nothing(rng):
    pytest.importorskip("jax")
    from divweights_jax import reweighted_loss

    logits = rng.normal(size=(13, 4)) * 2.0
    labels = rng.integers(0, 4, size=13)
    mask = np.arange(13) < 10
    kw = {"lam": 1.0, "classes": TotalVariation(), "gamma": 0.4, "balance_classes": True}
    _, full = reweighted_loss(logits, labels, mask=mask, **kw)
    _, alone = reweighted_loss(logits[:10], labels[:10], **kw)
    np.testing.assert_allclose(np.asarray(full["class_weights"])[:10], np.asarray(alone["class_weights"]), rtol=1e-12)


def test_jax_option_is_validated(rng):
    pytest.importorskip("jax")
    from divweights_jax import reweighted_loss

    z, t = rng.normal(size=(4, 3)), np.array([0, 1, 2, 0])
    with pytest.raises(ValueError, match="balance_classes=True needs class reweighting"):
        reweighted_loss(z, t, lam=1.0, balance_classes=True)
    with pytest.raises(TypeError, match="balance_classes must be a bool"):
        reweighted_loss(z, t, lam=1.0, classes=TotalVariation(), gamma=0.2, balance_classes="yes")
