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
