"""Class weights: closed forms and invariants."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import divweights as dw
from divweights.mixup import mixup_ratio, partner_probabilities

from helpers import CLASS_DIVERGENCES

SETTINGS = settings(max_examples=40, deadline=None)
rows_st = st.integers(2, 8).flatmap(
    lambda k: st.tuples(
        arrays(np.float64, (3, k), elements=st.integers(0, 8 * 256).map(lambda v: v / 256.0)),
        arrays(np.int64, (3,), elements=st.integers(0, k - 1)),
        st.lists(st.floats(0.05, 5.0), min_size=3 * k, max_size=3 * k).map(lambda xs: np.reshape(xs, (3, k))),
    )
)


def _soft(raw, seed_zero=True):
    y = np.asarray(raw, dtype=float)
    if seed_zero:
        y[:, 0] = 0.0  # a zero in every target: support handling
    return y / y.sum(-1, keepdims=True)


@SETTINGS
@given(data=rows_st, gamma=st.floats(0.0, 1.0))
def test_total_variation_with_labels_is_hard_bootstrapping(data, gamma):
    L, y, _ = data
    got = dw.reweighted_class_losses(L, y, dw.TotalVariation(), gamma=gamma)
    l_y = L[np.arange(3), y]
    np.testing.assert_allclose(got, (1 - gamma) * l_y + gamma * L.min(-1), atol=1e-12)


@SETTINGS
@given(data=rows_st, gamma=st.floats(0.0, 20.0))
def test_reverse_kl_with_labels_keeps_exp_minus_gamma_on_the_label(data, gamma):
    L, y, _ = data
    got = dw.reweighted_class_losses(L, y, dw.ReverseKL(), gamma=gamma)
    l_y = L[np.arange(3), y]
    keep = np.exp(-gamma)
    np.testing.assert_allclose(got, keep * l_y + (1 - keep) * L.min(-1), atol=1e-12)


@pytest.mark.parametrize("divergence", CLASS_DIVERGENCES, ids=repr)
@SETTINGS
@given(data=rows_st, gamma=st.floats(1e-4, 2.0))
def test_labels_and_one_hot_probabilities_agree(divergence, data, gamma):
    L, y, _ = data
    onehot = np.eye(L.shape[-1])[y]
    np.testing.assert_allclose(
        dw.class_weights(L, y, divergence, gamma=gamma),
        dw.class_weights(L, onehot, divergence, gamma=gamma),
        atol=1e-9,
    )


@pytest.mark.parametrize("divergence", CLASS_DIVERGENCES + [dw.KL()], ids=repr)
@SETTINGS
@given(data=rows_st, gamma=st.floats(1e-4, 2.0))
def test_soft_target_solution_is_feasible_and_tight_when_binding(divergence, data, gamma):
    L, _, raw = data
    y = _soft(raw)
    v = dw.class_weights(L, y, divergence, gamma=gamma)
    assert np.all(v >= 0)
    np.testing.assert_allclose(v.sum(-1), 1.0, atol=1e-10)
    value = divergence(v, y)
    assert np.all(value <= gamma + 1e-7)
    # the objective never exceeds the target's own loss, and improves when there is room
    obj, obj_y = (v * L).sum(-1), (y * L).sum(-1)
    assert np.all(obj <= obj_y + 1e-10)


@SETTINGS
@given(data=rows_st, gamma=st.floats(1e-3, 1.0))
def test_kl_soft_targets_are_loss_adaptive_label_smoothing(data, gamma):
    """v ∝ y exp(-l / lam) for one multiplier lam per row."""
    L, _, raw = data
    y = _soft(raw)
    v = dw.class_weights(L, y, dw.KL(), gamma=gamma)
    for i in range(3):
        on = y[i] > 0
        if np.ptp(L[i, on]) == 0:
            np.testing.assert_allclose(v[i], y[i], atol=1e-12)
            continue
        assert np.all(v[i, ~on] == 0)
        best = on & (L[i] == L[i, on].min())
        if gamma >= -np.log(y[i, best].sum()):  # cannot bind: the target restricted to its best classes
            np.testing.assert_allclose(v[i], np.where(best, y[i], 0) / y[i, best].sum(), atol=1e-12)
            continue
        # weights below the smallest normal number have lost their relative precision
        fit = on & (v[i] >= np.finfo(v.dtype).smallest_normal)
        log_ratio = np.log(v[i, fit]) - np.log(y[i, fit])  # = -l / lam + const
        slope = np.polyfit(L[i, fit], log_ratio, 1)[0]
        np.testing.assert_allclose(log_ratio, slope * L[i, fit] + (log_ratio - slope * L[i, fit]).mean(), atol=1e-6)
        assert slope <= 1e-9


def test_gamma_zero_returns_the_targets(rng):
    L = rng.exponential(size=(4, 5))
    y = rng.dirichlet(np.ones(5), size=4)
    for d in CLASS_DIVERGENCES + [dw.KL()]:
        np.testing.assert_allclose(dw.class_weights(L, y, d, gamma=0.0), y, atol=1e-12)


def test_large_gamma_puts_everything_on_the_best_class():
    L = np.array([[3.0, 0.5, 1.0, 0.5]])
    for d in (dw.TotalVariation(), dw.SquaredL2()):
        np.testing.assert_allclose(dw.class_weights(L, np.array([0]), d, gamma=10.0), [[0, 0.5, 0, 0.5]], atol=1e-12)
    np.testing.assert_allclose(
        dw.class_weights(L, np.array([0]), dw.ReverseKL(), gamma=50.0), [[0, 0.5, 0, 0.5]], atol=1e-12
    )


def test_label_already_best_is_kept():
    L = np.array([[0.1, 2.0, 3.0]])
    for d in CLASS_DIVERGENCES:
        np.testing.assert_allclose(dw.class_weights(L, np.array([0]), d, gamma=0.5), [[1.0, 0.0, 0.0]], atol=1e-12)


def test_leading_axes_of_class_problems(rng):
    L = rng.exponential(size=(2, 3, 4))
    y = rng.integers(0, 4, size=(2, 3))
    v = dw.class_weights(L, y, dw.SquaredL2(), gamma=0.1)
    np.testing.assert_allclose(v[1, 2], dw.class_weights(L[1, 2][None], y[1, 2][None], dw.SquaredL2(), gamma=0.1)[0])


def test_squared_l2_constraint_is_tight_when_binding():
    L = np.array([[1.0, 0.0, 2.0, 0.7]])
    v = dw.class_weights(L, np.array([0]), dw.SquaredL2(), gamma=0.05)
    assert float(np.sum((v - np.array([1.0, 0, 0, 0])) ** 2)) == pytest.approx(0.05, rel=1e-10)


# ---- mixup helpers ----------------------------------------------------------


def test_mixup_ratio_is_the_weight_share_and_half_at_zero():
    np.testing.assert_allclose(mixup_ratio(np.array([1.0, 0.0, 3.0]), np.array([3.0, 0.0, 0.0])), [0.25, 0.5, 1.0])


def test_partner_probabilities_follow_powered_weights_and_fall_back_to_uniform():
    np.testing.assert_allclose(partner_probabilities(np.array([1.0, 3.0]), power=2.0), [0.1, 0.9])
    np.testing.assert_allclose(partner_probabilities(np.zeros(4)), np.full(4, 0.25))


def test_mixup_helpers_keep_the_namespace(backend):
    w = backend.asarray(np.array([0.2, 0.0, 0.8]))
    out = backend.call(partner_probabilities, w, power=1.0)
    assert backend.is_namespace_of(out)
    r = backend.call(mixup_ratio, w, backend.asarray(np.array([0.2, 0.0, 0.2])))
    np.testing.assert_allclose(backend.to_numpy(r), [0.5, 0.5, 0.8])
