"""NumPy's small-batch path of ``class_weights``: integer labels with a closed form (total
variation, reverse KL) skip the one-hot targets and the array-API layer.  It must give the
weights of the general path to rounding, and only be taken where it applies."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import divweights as dw
import divweights._api as api
from divweights._array import prepare, scalar

CLOSED_FORMS = [dw.TotalVariation(), dw.ReverseKL(), dw.Alpha(0.0)]


def _general(L, y, divergence, gamma):
    """The one-hot closed form through the array-API layer (the path every other library takes)."""
    L, work = prepare(L, "class_losses")
    onehot = (y[..., None] == np.arange(L.shape[-1])).astype(L.dtype)
    with np.errstate(all="ignore"):
        return divergence.class_problem(L, onehot, True, scalar(work, gamma), work)


# losses on a coarse grid: ties of the minimum (with and without the label among them) are common
cases_st = st.integers(1, 6).flatmap(
    lambda k: st.tuples(
        arrays(np.float64, (2, 3, k), elements=st.integers(0, 6).map(lambda v: v / 2.0)),
        arrays(np.int64, (2, 3), elements=st.integers(0, k - 1)),
    )
)


@pytest.mark.parametrize("divergence", CLOSED_FORMS, ids=repr)
@settings(max_examples=60, deadline=None)
@given(case=cases_st, gamma=st.sampled_from([0.0, 0.05, 0.5, 1.0, 3.0, 800.0, float("inf")]))
def test_labels_path_equals_the_general_closed_form(divergence, case, gamma):
    L, y = case
    np.testing.assert_allclose(dw.class_weights(L, y, divergence, gamma=gamma), _general(L, y, divergence, gamma))


@pytest.mark.parametrize("divergence", CLOSED_FORMS, ids=repr)
@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_labels_path_keeps_the_dtype_and_matches_in_low_precision(divergence, dtype, rng):
    L = (-np.log(rng.dirichlet(np.ones(10), size=64))).astype(dtype)
    y = rng.integers(0, 10, size=64).astype(np.int32)
    v = dw.class_weights(L, y, divergence, gamma=0.2)
    assert v.dtype == dtype
    np.testing.assert_allclose(v.astype(np.float64), _general(L, y, divergence, 0.2), rtol=1e-3, atol=1e-3)


def test_infinite_losses_take_the_labels_path(monkeypatch):
    L = np.array([[np.inf, 1.0, 2.0], [np.inf, np.inf, np.inf], [0.5, np.inf, 0.5]])
    y = np.array([0, 1, 1])
    expected = _general(L, y, dw.TotalVariation(), 0.3)
    monkeypatch.setattr(api, "_as_probabilities", _refuse)
    np.testing.assert_allclose(dw.class_weights(L, y, dw.TotalVariation(), gamma=0.3), expected)


def _refuse(*args, **kwargs):
    raise AssertionError("the one-hot targets were built")


@pytest.mark.parametrize("divergence", CLOSED_FORMS, ids=repr)
@pytest.mark.parametrize("gamma", [0.3, np.float64(0.3), np.asarray(0.3)], ids=["float", "numpy scalar", "0-d array"])
def test_numpy_labels_with_a_closed_form_build_no_one_hot_targets(monkeypatch, divergence, gamma, rng):
    L, y = rng.exponential(size=(8, 4)), rng.integers(0, 4, size=8)
    expected = dw.class_weights(L, y, divergence, gamma=gamma)
    monkeypatch.setattr(api, "_as_probabilities", _refuse)
    np.testing.assert_array_equal(dw.class_weights(L, y, divergence, gamma=gamma), expected)


@pytest.mark.parametrize(
    "divergence, targets",
    [
        pytest.param(dw.SquaredL2(), "labels", id="no closed form for labels"),
        pytest.param(dw.TotalVariation(), "probabilities", id="probability targets"),
    ],
)
def test_the_general_path_is_taken_where_the_labels_path_does_not_apply(monkeypatch, divergence, targets, rng):
    L = rng.exponential(size=(8, 4))
    y = rng.integers(0, 4, size=8) if targets == "labels" else rng.dirichlet(np.ones(4), size=8)
    built = []
    original = api._as_probabilities
    monkeypatch.setattr(api, "_as_probabilities", lambda *a: built.append(1) or original(*a))
    dw.class_weights(L, y, divergence, gamma=0.2)
    assert built


def test_a_nan_row_gives_a_nan_row_and_leaves_the_others(rng):
    L, y = rng.exponential(size=(4, 3)), np.array([0, 1, 2, 0])
    L[2, 1] = np.nan
    v = dw.class_weights(L, y, dw.ReverseKL(), gamma=0.1)
    assert np.all(np.isnan(v[2]))
    np.testing.assert_allclose(
        np.delete(v, 2, axis=0), _general(np.delete(L, 2, axis=0), np.delete(y, 2), dw.ReverseKL(), 0.1)
    )


def test_out_of_range_labels_are_refused_on_the_labels_path(rng):
    with pytest.raises(ValueError, match=r"integer targets must lie in \[0, 3\) for 3 classes; got values in \[0, 3\]"):
        dw.class_weights(rng.exponential(size=(2, 3)), np.array([0, 3]), dw.TotalVariation(), gamma=0.2)
