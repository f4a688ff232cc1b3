"""divweights.mixup: the shared mixup formulas, their validation, and agreement with both adapters."""

import re

import numpy as np
import pytest
from helpers import ROOT

from divweights import mixup
from divweights.mixup import MIXUP_MODES, mixup_ratio, partner_probabilities, smooth_targets, smoothing_factors


def hand_smoothing(y, w, pred):
    """The CIW-M rule written out: s = w / max w (1 if all zero), y <- s y + (1 - s) onehot(argmax pred)."""
    top = w.max()
    s = w / top if top > 0 else np.ones_like(w)
    onehot = np.eye(y.shape[1])[pred.argmax(-1)]
    return s[:, None] * y + (1 - s[:, None]) * onehot


# ------------------------------------------------------------------ modes and formulas


def test_modes():
    assert MIXUP_MODES == ("plain", "sample", "weight", "sample_weight", "label_smoothing")


@pytest.mark.parametrize("adapter", ["divweights_torch", "divweights_jax"])
def test_adapters_offer_the_same_modes(adapter):
    module = pytest.importorskip(adapter)
    assert tuple(module.MIXUP_MODES) == MIXUP_MODES


def test_smooth_targets_matches_the_hand_formula(rng):
    y = rng.dirichlet(np.ones(4), size=6)
    w = rng.dirichlet(np.ones(6))
    w[2] = 0.0
    pred = rng.normal(size=(6, 4))
    np.testing.assert_allclose(smooth_targets(y, w, pred), hand_smoothing(y, w, pred), rtol=1e-15)


def test_zero_weights_keep_the_labels(rng):
    y = np.eye(3)[[0, 2, 1]]
    np.testing.assert_array_equal(smooth_targets(y, np.zeros(3), rng.normal(size=(3, 3))), y)
    np.testing.assert_array_equal(smoothing_factors(np.zeros(3)), np.ones(3))


def test_zero_weight_takes_the_prediction_and_the_heaviest_keeps_its_label():
    y = np.eye(3)[[0, 0]]
    pred = np.array([[0.0, 5.0, 1.0], [0.0, 0.0, 9.0]])
    np.testing.assert_array_equal(smooth_targets(y, np.array([0.7, 0.0]), pred), [[1, 0, 0], [0, 0, 1]])


def test_smoothing_ties_take_the_first_class():
    y = np.eye(3)[[2, 2]]
    out = smooth_targets(y, np.array([1.0, 0.0]), np.array([[0.0, 0.0, 0.0], [3.0, 3.0, 0.0]]))
    np.testing.assert_array_equal(out[1], [1.0, 0.0, 0.0])


def test_smoothing_works_on_leading_batch_axes(rng):
    y = rng.dirichlet(np.ones(3), size=(2, 5))
    w = rng.random((2, 5))
    pred = rng.normal(size=(2, 5, 3))
    out = smooth_targets(y, w, pred)
    for b in range(2):
        np.testing.assert_allclose(out[b], hand_smoothing(y[b], w[b], pred[b]), rtol=1e-15)


def test_smooth_targets_keeps_the_targets_dtype(rng):
    y = np.eye(3, dtype=np.float32)[[0, 1]]
    out = smooth_targets(y, np.array([1.0, 0.5]), rng.normal(size=(2, 3)))
    assert out.dtype == np.float32


def test_smooth_targets_refuses_integer_labels_and_bad_shapes():
    with pytest.raises(TypeError, match="floating label distributions"):
        smooth_targets(np.eye(3, dtype=int), np.ones(3), np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"weights must have shape targets.shape\[:-1\] = \(3,\)"):
        smooth_targets(np.eye(3), np.ones(4), np.ones((3, 3)))
    with pytest.raises(ValueError, match="predictions must have the shape of targets"):
        smooth_targets(np.eye(3), np.ones(3), np.ones((3, 2)))


def test_torch_adapter_uses_the_same_smoothing(rng):
    torch = pytest.importorskip("torch")
    from divweights_torch import weighted_mixup

    n, k = 7, 4
    x = torch.asarray(rng.normal(size=(n, 2)))
    labels = torch.asarray(rng.integers(0, k, size=n))
    w = torch.asarray(rng.dirichlet(np.ones(n)))
    pred = torch.asarray(rng.normal(size=(n, k)))
    _, _, info = weighted_mixup(
        x,
        labels,
        w,
        mode="label_smoothing",
        num_classes=k,
        predictions=pred,
        generator=torch.Generator().manual_seed(0),
    )
    y = torch.nn.functional.one_hot(labels, k).to(torch.float64)
    assert torch.equal(info["smoothed_targets"], smooth_targets(y, w, pred))


def test_jax_adapter_uses_the_same_smoothing_factors(rng):
    jax = pytest.importorskip("jax")
    from divweights_jax import weighted_mixup

    n, k = 6, 3
    jnp = jax.numpy
    w = jnp.asarray(rng.dirichlet(np.ones(n)))
    _, _, info = weighted_mixup(
        jax.random.key(0),
        jnp.asarray(rng.normal(size=(n, 2))),
        jnp.asarray(rng.integers(0, k, size=n)),
        w,
        mode="label_smoothing",
        num_classes=k,
        predictions=jnp.asarray(rng.normal(size=(n, k))),
    )
    np.testing.assert_array_equal(np.asarray(info["smoothing"]), np.asarray(smoothing_factors(w)))


# ------------------------------------------------------------------ validation (issue 14, item 13)


@pytest.mark.parametrize(
    "bad, message",
    [(np.inf, "weights must be finite"), (np.nan, "weights must not contain NaN"), (-0.1, "weights must be >= 0")],
)
def test_partner_probabilities_refuse_invalid_weights(bad, message):
    with pytest.raises(ValueError, match=message):
        partner_probabilities(np.array([0.2, bad, 0.5]))


@pytest.mark.parametrize("power, message", [(np.inf, "power must be finite"), (np.nan, "power must not be NaN")])
def test_partner_probabilities_refuse_invalid_powers(power, message):
    with pytest.raises(ValueError, match=message):
        partner_probabilities(np.array([0.2, 0.3]), power=power)


def test_mixup_ratio_refuses_negative_weights():
    with pytest.raises(ValueError, match="w_j must be >= 0"):
        mixup_ratio(np.array(1.0), np.array(-0.5))
    with pytest.raises(ValueError, match="w_i must be finite"):
        mixup_ratio(np.array([np.inf]), np.array([1.0]))


def test_nan_weights_under_jit_give_nan_not_uniform():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    p = jax.jit(partner_probabilities)(jnp.asarray([[0.2, jnp.nan, 0.5], [0.2, 0.3, 0.5]]))
    assert np.all(np.isnan(np.asarray(p[0])))
    np.testing.assert_allclose(np.asarray(p[1]), [0.2, 0.3, 0.5], rtol=1e-12)


def test_power_one_is_proportional_and_all_zero_is_uniform():
    np.testing.assert_allclose(partner_probabilities(np.array([1.0, 3.0])), [0.25, 0.75], rtol=1e-15)
    np.testing.assert_array_equal(partner_probabilities(np.zeros(4)), np.full(4, 0.25))


def test_mixing_array_libraries_is_named():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="w_i is a numpy array but w_j is a torch array"):
        mixup_ratio(np.array([1.0]), torch.tensor([1.0]))
    with pytest.raises(TypeError, match="targets is a torch array but predictions is a numpy array"):
        smooth_targets(torch.eye(2), torch.ones(2), np.ones((2, 2)))


def test_outputs_carry_no_gradient():
    torch = pytest.importorskip("torch")
    w = torch.tensor([0.2, 0.8], requires_grad=True)
    y = torch.eye(2, requires_grad=True)
    pred = torch.zeros(2, 2, requires_grad=True)
    outs = [
        mixup_ratio(w, w.flip(0)),
        partner_probabilities(w),
        smoothing_factors(w),
        smooth_targets(y, w, pred),
    ]
    assert not any(o.requires_grad for o in outs)


def test_module_lists_the_names_its_docstring_documents():
    # the docstring's unqualified :func:/:data: references are the public names: each is listed and defined
    documented = set(re.findall(r":(?:func|data):`(\w+)`", mixup.__doc__))
    api_page = (ROOT / "docs" / "api" / "mixup.rst").read_text()
    summarised = set(re.findall(r"^   (\w+)$", api_page.split(".. autosummary::")[1], flags=re.MULTILINE))
    assert {"mixup_ratio", "weighted_beta_parameters", "partner_probabilities"} <= summarised <= documented
    assert set(mixup.__all__) == documented
    for name in documented:
        assert getattr(mixup, name, None) is not None, name


def test_torch_weights_are_not_read_and_nan_gives_nan():
    torch = pytest.importorskip("torch")
    p = partner_probabilities(torch.tensor([[0.2, float("nan"), 0.5], [0.0, 0.0, 0.0]]))
    assert torch.isnan(p[0]).all()
    assert torch.equal(p[1], torch.full((3,), 1 / 3))


# ------------------------------------------------------------------ the weighted Beta ratio's parameters


def test_weighted_beta_parameters_have_mean_rho_and_total_two_alpha(rng):
    wi, wj = rng.random(20), rng.random(20)
    wi[:3] = 0.0
    wj[2:5] = 0.0
    a, b = mixup.weighted_beta_parameters(wi, wj, 0.7)
    np.testing.assert_allclose(a + b, 1.4, rtol=1e-15)
    np.testing.assert_allclose(a / (a + b), mixup_ratio(wi, wj), rtol=1e-15)
    assert a[2] == b[2] == 0.7  # both zero: Beta(alpha, alpha)
    assert np.all(a[:2] == 0) and np.all(b[3:5] == 0)  # point masses at 0 and 1


def test_weighted_beta_parameters_at_equal_weights_are_plain_mixups():
    a, b = mixup.weighted_beta_parameters(np.full(4, 0.25), np.full(4, 0.25), 0.2)
    np.testing.assert_allclose(a, 0.2)
    np.testing.assert_allclose(b, 0.2)


def test_weighted_beta_parameters_keep_dtype_and_refuse_bad_alpha():
    w = np.array([0.5, 0.25], np.float32)
    a, b = mixup.weighted_beta_parameters(w, w[::-1], np.array(1.0))
    assert a.dtype == b.dtype == np.float32
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError):
            mixup.weighted_beta_parameters(w, w, bad)


@pytest.mark.parametrize("adapter", ["divweights_torch", "divweights_jax"])
def test_adapters_offer_the_same_weight_ratios(adapter):
    module = pytest.importorskip(f"{adapter}.mixup")
    assert tuple(module.WEIGHT_RATIOS) == mixup.WEIGHT_RATIOS == ("beta", "deterministic")


def test_nan_weights_give_nan_ratios_and_smoothing_under_jit():
    """The eager checks refuse NaN weights; traced they are not checked, and a NaN weight (a batch with a
    NaN loss) must stay NaN rather than mix as if the weights were equal (0.5) or smooth fully (1)."""
    jax = pytest.importorskip("jax")
    w = jax.numpy.asarray([0.3, np.nan, 0.0, 0.7])
    partner = jax.numpy.asarray([0.1, 0.2, 0.0, np.nan])
    got = np.asarray(jax.jit(mixup_ratio)(w, partner))
    np.testing.assert_allclose(got[[0, 2]], [0.75, 0.5])
    assert np.isnan(got[[1, 3]]).all()
    assert np.isnan(np.asarray(jax.jit(smoothing_factors)(w))).all()  # the largest weight is NaN
    # negative weights (also unchecked under jit) keep their previous values: 1/2 and full smoothing
    np.testing.assert_array_equal(np.asarray(jax.jit(mixup_ratio)(-w[:1], -w[:1])), [0.5])
    np.testing.assert_array_equal(np.asarray(jax.jit(smoothing_factors)(-jax.numpy.abs(w[:1]))), [1.0])
