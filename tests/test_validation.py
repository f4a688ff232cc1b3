"""Arguments are validated with specific messages."""

import numpy as np
import pytest

import divweights as dw

L = np.array([0.1, 0.5, 2.0])


def test_exactly_one_strength_is_required():
    with pytest.raises(ValueError, match="exactly one of lam, delta, temperature.*got none"):
        dw.instance_weights(L, dw.KL())
    with pytest.raises(ValueError, match="got lam and delta"):
        dw.instance_weights(L, dw.KL(), lam=1.0, delta=0.1)


@pytest.mark.parametrize("kw", [{"lam": 0.0}, {"lam": -1.0}, {"temperature": 0.0}, {"delta": -0.1}])
def test_nonpositive_strengths_are_rejected(kw):
    (name,) = kw
    with pytest.raises(ValueError, match=f"{name} must be"):
        dw.instance_weights(L, dw.KL(), **kw)


def test_nan_strength_is_rejected():
    with pytest.raises(ValueError, match="must not be NaN"):
        dw.instance_weights(L, dw.KL(), lam=float("nan"))


def test_array_strength_must_be_scalar():
    with pytest.raises(ValueError, match="must be a scalar"):
        dw.instance_weights(L, dw.KL(), lam=np.array([1.0, 2.0]))


@pytest.mark.parametrize("d", [dw.TotalVariation(), dw.SquaredL2()], ids=repr)
def test_temperature_is_only_for_the_alpha_family(d):
    with pytest.raises(ValueError, match="does not support temperature=.*lam=, delta="):
        dw.instance_weights(L, d, temperature=1.0)


def test_empty_batch_is_rejected():
    with pytest.raises(ValueError, match="empty batch"):
        dw.instance_weights(np.zeros(0), dw.KL(), lam=1.0)


def test_scalar_losses_are_rejected():
    with pytest.raises(ValueError, match="at least 1 dimension"):
        dw.instance_weights(np.float64(1.0), dw.KL(), lam=1.0)


def test_divergence_must_be_an_instance():
    with pytest.raises(TypeError, match=r"pass a divergence instance such as KL\(\)"):
        dw.instance_weights(L, dw.KL, lam=1.0)
    with pytest.raises(TypeError, match="divergence must be a divweights divergence"):
        dw.instance_weights(L, "kl", lam=1.0)


def test_non_array_losses_are_rejected():
    with pytest.raises(TypeError, match="losses must be an array"):
        dw.instance_weights([0.1, 0.2], dw.KL(), lam=1.0)


def test_complex_losses_are_rejected():
    with pytest.raises(TypeError, match="real-valued"):
        dw.instance_weights(np.array([1 + 1j]), dw.KL(), lam=1.0)


def test_alpha_must_be_a_finite_real():
    with pytest.raises(ValueError, match="finite"):
        dw.Alpha(float("inf"))
    with pytest.raises(TypeError, match="real number"):
        dw.Alpha("2")


def test_label_shape_must_match():
    with pytest.raises(ValueError, match=r"integer targets must have shape class_losses.shape\[:-1\]"):
        dw.class_weights(np.ones((4, 3)), np.zeros(5, dtype=int), dw.TotalVariation(), gamma=0.1)


def test_labels_out_of_range_are_rejected():
    with pytest.raises(ValueError, match=r"must lie in \[0, 3\)"):
        dw.class_weights(np.ones((2, 3)), np.array([0, 3]), dw.TotalVariation(), gamma=0.1)
    with pytest.raises(ValueError, match=r"must lie in \[0, 3\)"):
        dw.class_weights(np.ones((2, 3)), np.array([-1, 0]), dw.TotalVariation(), gamma=0.1)


def test_probability_targets_must_match_and_be_distributions():
    with pytest.raises(ValueError, match="probability targets must have the shape"):
        dw.class_weights(np.ones((2, 3)), np.ones((2, 4)) / 4, dw.TotalVariation(), gamma=0.1)
    with pytest.raises(ValueError, match="sum to 1"):
        dw.class_weights(np.ones((1, 3)), np.array([[0.5, 0.2, 0.2]]), dw.TotalVariation(), gamma=0.1)
    with pytest.raises(ValueError, match="nonnegative"):
        dw.class_weights(np.ones((1, 3)), np.array([[1.5, -0.5, 0.0]]), dw.TotalVariation(), gamma=0.1)


def test_bool_targets_are_rejected():
    with pytest.raises(TypeError, match="not bool"):
        dw.class_weights(np.ones((2, 3)), np.ones((2, 3), dtype=bool), dw.TotalVariation(), gamma=0.1)


def test_negative_gamma_is_rejected():
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        dw.class_weights(np.ones((2, 3)), np.array([0, 1]), dw.TotalVariation(), gamma=-0.1)


def test_kl_with_integer_labels_explains_why():
    with pytest.raises(ValueError, match="infinite for every v other than a one-hot target.*ReverseKL"):
        dw.class_weights(np.ones((2, 3)), np.array([0, 1]), dw.KL(), gamma=0.1)


@pytest.mark.parametrize("d", [dw.Alpha(0.5), dw.ChiSquared()], ids=repr)
def test_unsupported_class_divergences_name_the_alternatives(d):
    with pytest.raises(NotImplementedError, match="supported: TotalVariation"):
        dw.class_weights(np.ones((2, 3)), np.array([0, 1]), d, gamma=0.1)


def test_mixup_power_must_be_positive():
    from divweights.mixup import partner_probabilities

    with pytest.raises(ValueError, match="power must be > 0"):
        partner_probabilities(np.ones(3), power=0.0)


def test_eager_jax_labels_are_validated_and_traced_ones_are_not():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    with pytest.raises(ValueError, match=r"must lie in \[0, 3\)"):
        dw.class_weights(jnp.ones((2, 3)), jnp.array([0, 5]), dw.TotalVariation(), gamma=0.1)
    # under jit the values are unknown: no error, no host round-trip
    jax.jit(lambda L, y: dw.class_weights(L, y, dw.TotalVariation(), gamma=0.1))(jnp.ones((2, 3)), jnp.array([0, 1]))


def test_torch_labels_are_validated():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match=r"must lie in \[0, 3\)"):
        dw.class_weights(torch.ones(2, 3), torch.tensor([0, 3]), dw.ReverseKL(), gamma=0.1)


def test_constant_labels_closed_over_inside_jit_are_not_read_eagerly():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    labels = jnp.array([0, 2])
    soft = jnp.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    f = jax.jit(lambda L: dw.class_weights(L, labels, dw.ReverseKL(), gamma=0.1))
    g = jax.jit(lambda L: dw.class_weights(L, soft, dw.ReverseKL(), gamma=0.1))
    assert f(jnp.ones((2, 3))).shape == g(jnp.ones((2, 3))).shape == (2, 3)


# -- issue 14 item 4: narrow integer labels ------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16])
def test_narrow_integer_labels_do_not_wrap(dtype):
    k = 300
    L = np.random.default_rng(0).exponential(size=(2, k))
    labels = np.array([0, min(np.iinfo(dtype).max, k - 1)], dtype=dtype)
    v = dw.class_weights(L, labels, dw.TotalVariation(), gamma=0.0)
    np.testing.assert_array_equal(v, np.eye(k)[labels.astype(np.int64)])
    np.testing.assert_array_equal(
        dw.class_weights(L, labels, dw.ReverseKL(), gamma=0.2),
        dw.class_weights(L, labels.astype(np.int64), dw.ReverseKL(), gamma=0.2),
    )


def test_narrow_torch_labels_do_not_wrap():
    torch = pytest.importorskip("torch")
    L = torch.rand(2, 300, dtype=torch.float64)
    labels = torch.tensor([0, 255], dtype=torch.uint8)
    v = dw.class_weights(L, labels, dw.TotalVariation(), gamma=0.0)
    assert torch.equal(v.sum(-1), torch.ones(2, dtype=torch.float64))
    assert torch.equal(v, torch.nn.functional.one_hot(labels.long(), 300).to(torch.float64))


def test_narrow_labels_are_widened_under_jit():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    L = jnp.ones((2, 300))
    f = jax.jit(lambda L, y: dw.class_weights(L, y, dw.TotalVariation(), gamma=0.0))
    v = f(L, jnp.asarray([0, 255], dtype=jnp.uint8))
    np.testing.assert_array_equal(np.asarray(v).sum(-1), [1.0, 1.0])


# -- issue 14 item 12: soft targets in low precision ------------------------------------------


def test_bfloat16_soft_targets_within_their_precision_are_accepted():
    torch = pytest.importorskip("torch")
    y = torch.full((2, 3), 1 / 3).to(torch.bfloat16)  # each entry 0.33398..., rows sum to 1.00195
    assert abs(y.double().sum(-1)[0].item() - 1) > 1e-3
    L = torch.tensor([[2.0, 0.1, 1.0], [0.5, 0.4, 0.3]])
    v = dw.class_weights(L, y, dw.ReverseKL(), gamma=0.1)
    expected = dw.class_weights(L, y.float() / y.float().sum(-1, keepdim=True), dw.ReverseKL(), gamma=0.1)
    torch.testing.assert_close(v, expected)


def test_low_precision_targets_far_from_the_simplex_are_still_refused():
    torch = pytest.importorskip("torch")
    y = torch.tensor([[0.5, 0.3, 0.1]]).to(torch.bfloat16)
    with pytest.raises(ValueError, match="sum to 1"):
        dw.class_weights(torch.ones(1, 3), y, dw.TotalVariation(), gamma=0.1)


def test_float16_soft_targets_within_their_precision_are_accepted():
    y = np.full((1, 7), 1 / 7, dtype=np.float16)
    assert abs(float(y.astype(np.float64).sum()) - 1) > 1e-4
    v = dw.class_weights(np.ones((1, 7)), y, dw.TotalVariation(), gamma=0.0)
    np.testing.assert_allclose(v.sum(-1), 1.0, rtol=1e-12)


# -- issue 14 item 16: one array library per call ---------------------------------------------


def test_numpy_losses_with_torch_labels_are_named():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="class_losses is a numpy array but targets is a torch array"):
        dw.class_weights(np.ones((2, 3)), torch.tensor([0, 1]), dw.TotalVariation(), gamma=0.1)


def test_torch_losses_with_numpy_labels_are_named():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="class_losses is a torch array but targets is a numpy array"):
        dw.class_weights(torch.ones(2, 3), np.array([0, 1]), dw.TotalVariation(), gamma=0.1)
    with pytest.raises(TypeError, match="convert targets to torch"):
        dw.reweighted_class_losses(torch.ones(2, 3), np.eye(3)[:2], dw.ReverseKL(), gamma=0.1)


def test_jax_losses_with_torch_labels_are_named():
    torch = pytest.importorskip("torch")
    jax = pytest.importorskip("jax")
    with pytest.raises(TypeError, match="class_losses is a jax array but targets is a torch array"):
        dw.class_weights(jax.numpy.ones((2, 3)), torch.tensor([0, 1]), dw.TotalVariation(), gamma=0.1)


def test_numpy_labels_with_jax_losses_are_accepted_as_jax_does():
    jax = pytest.importorskip("jax")
    L = np.random.default_rng(1).exponential(size=(2, 3))
    labels = np.array([0, 2])
    got = jax.jit(lambda L: dw.class_weights(L, labels, dw.ReverseKL(), gamma=0.1))(jax.numpy.asarray(L))
    np.testing.assert_allclose(np.asarray(got), dw.class_weights(L, labels, dw.ReverseKL(), gamma=0.1), rtol=1e-10)


# -- issue 15 item 6: a total variation radius above 1 ----------------------------------------


@pytest.mark.parametrize("gamma", [1.5, 1e5, float("inf")])
def test_total_variation_radius_above_one_acts_as_one(gamma, rng):
    L = rng.exponential(size=(50, 5))
    L[:, 1] = L[:, 3]  # ties among the best classes
    for targets in (rng.integers(0, 5, size=50), rng.dirichlet(np.ones(5), size=50)):
        np.testing.assert_array_equal(
            dw.class_weights(L, targets, dw.TotalVariation(), gamma=gamma),
            dw.class_weights(L, targets, dw.TotalVariation(), gamma=1.0),
        )


def test_total_variation_radius_bound_is_documented():
    assert dw.TotalVariation.max_class_radius == 1.0 and dw.ReverseKL.max_class_radius == np.inf
    assert "``gamma >= 1`` lets all mass move" in dw.TotalVariation.__doc__
    assert "gamma = 1" in dw.class_weights.__doc__ and "r / 2" in dw.class_weights.__doc__


# -- issue 15 item 8: weights carry no gradient --------------------------------------------------


def test_torch_weights_have_no_grad_fn():
    torch = pytest.importorskip("torch")
    losses = torch.rand(2, 9, dtype=torch.float64, requires_grad=True)
    lam = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    L = torch.rand(4, 3, requires_grad=True)
    soft = torch.softmax(torch.rand(4, 3, requires_grad=True), -1)
    outs = [
        dw.instance_weights(losses, dw.KL(), delta=0.2),
        dw.instance_weights(losses, dw.KL(), lam=lam),
        dw.class_weights(L, torch.tensor([0, 1, 2, 0]), dw.TotalVariation(), gamma=0.2),
        dw.class_weights(L, soft, dw.ReverseKL(), gamma=0.2),
    ]
    for out in outs:
        assert out.grad_fn is None and not out.requires_grad


def test_jax_weights_have_zero_gradient():
    jax = pytest.importorskip("jax")
    l = jax.numpy.asarray([0.3, 1.2, 0.1, 4.0])
    grad = jax.grad(lambda x: dw.instance_weights(x, dw.KL(), delta=0.2)[0])(l)
    np.testing.assert_array_equal(np.asarray(grad), 0.0)


def test_reweighted_class_losses_have_danskin_gradient():
    torch = pytest.importorskip("torch")
    L = torch.tensor([[2.0, 0.1, 1.0], [0.3, 0.9, 0.2]], dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1])
    out = dw.reweighted_class_losses(L, labels, dw.TotalVariation(), gamma=0.3)
    out.sum().backward()
    v = dw.class_weights(L, labels, dw.TotalVariation(), gamma=0.3)
    torch.testing.assert_close(L.grad, v)
