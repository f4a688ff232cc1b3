"""The class problem, the oracle's own checks and its import path; helpers and conventions in test_oracle.py."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from _oracle import (
    CLASS_DIVERGENCES,
    check_class,
    div_id,
    published_weights,
    requires_cvxpy,
)
from helpers import assert_same_names, import_deprecated, python_output

import divweights as dw
from divweights import testing as ref
from divweights.testing import _solve

# -- class problem ------------------------------------------------------------------------------


def class_losses(rng, rows, k, scale=3.0):
    z = rng.normal(0.0, scale, size=(rows, k))
    z -= z.max(axis=-1, keepdims=True)
    return -(z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True)))


def soft_targets(rng, rows, k):
    """Mixup pairs (zeros), label smoothing (no zeros) and sparse Dirichlet rows."""
    out = np.zeros((rows, k))
    for i in range(rows):
        kind = i % 3
        if kind == 0:
            a, b = rng.choice(k, size=2, replace=False)
            r = rng.uniform(0.05, 0.95)
            out[i, a] += r
            out[i, b] += 1 - r
        elif kind == 1:
            out[i] = 0.1 / k
            out[i, rng.integers(k)] += 0.9
        else:
            mask = rng.random(k) < 0.6
            mask[rng.integers(k)] = True
            out[i, mask] = rng.dirichlet(np.full(int(mask.sum()), 0.7))
    return out


GAMMAS = {
    "TotalVariation()": [0.02, 0.2, 0.6],
    "ReverseKL()": [0.01, 0.2, 1.5],
    "SquaredL2()": [0.002, 0.05, 0.6],
    "KL()": [0.01, 0.2, 1.5],
}

CLASS_CASES = [
    (div, t) for div in CLASS_DIVERGENCES for t in ("int", "soft") if not (isinstance(div, dw.KL) and t == "int")
]
CLASS_IDS = [f"{div!r}-{t}" for div, t in CLASS_CASES]


@requires_cvxpy
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("k", [2, 5, 10])
@pytest.mark.parametrize(("div", "target_kind"), CLASS_CASES, ids=CLASS_IDS)
def test_class_random(div, target_kind, k, seed):
    rng = np.random.default_rng([seed, k, CLASS_CASES.index((div, target_kind))])
    rows = 3
    L = class_losses(rng, rows, k)
    targets = rng.integers(0, k, size=rows) if target_kind == "int" else soft_targets(rng, rows, k)
    gamma = GAMMAS[repr(div)][(seed + k) % 3]
    check_class(div, L, targets, gamma)


@requires_cvxpy
@pytest.mark.parametrize(("div", "target_kind"), CLASS_CASES, ids=CLASS_IDS)
def test_class_ties(div, target_kind):
    L = np.array([[1.0, 0.2, 0.2, 3.0, 1.0], [0.5, 0.5, 0.5, 0.5, 0.5], [2.0, 2.0, 0.1, 0.1, 4.0]])
    if target_kind == "int":
        targets = np.array([0, 2, 4])
    else:
        targets = np.array([[0.5, 0.0, 0.0, 0.5, 0.0], [0.2, 0.2, 0.2, 0.2, 0.2], [0.4, 0.4, 0.0, 0.0, 0.2]])
    V = check_class(div, L, targets, GAMMAS[repr(div)][1])
    assert V.shape == L.shape


@requires_cvxpy
@pytest.mark.parametrize(("div", "target_kind"), CLASS_CASES, ids=CLASS_IDS)
def test_class_two_classes(div, target_kind):
    L = np.array([[0.1, 2.3], [1.7, 0.2], [0.6, 0.6]])
    targets = np.array([1, 0, 1]) if target_kind == "int" else np.array([[0.3, 0.7], [0.9, 0.1], [0.5, 0.5]])
    for gamma in GAMMAS[repr(div)]:
        check_class(div, L, targets, gamma)


@requires_cvxpy
@pytest.mark.parametrize(("div", "target_kind"), CLASS_CASES, ids=CLASS_IDS)
def test_class_huge_spread(div, target_kind):
    rng = np.random.default_rng(21)
    L = np.stack([rng.permutation(np.logspace(-6, 6, 8)) for _ in range(3)])
    targets = rng.integers(0, 8, size=3) if target_kind == "int" else soft_targets(rng, 3, 8)
    check_class(div, L, targets, GAMMAS[repr(div)][1])


# Radii past which nothing changes (TV >= 1, ...).  ReverseKL keeps exp(-gamma) on
# the label, which underflows to 0 (D = inf) in float64 beyond gamma ~ 745: use 30.
HUGE_GAMMA = {"TotalVariation()": 5.0, "ReverseKL()": 30.0, "SquaredL2()": 10.0, "KL()": 1e3}


@requires_cvxpy
@pytest.mark.filterwarnings("ignore:reference solve of the class problem:RuntimeWarning")
@pytest.mark.parametrize("size", ["tiny", "huge"])
@pytest.mark.parametrize(("div", "target_kind"), CLASS_CASES, ids=CLASS_IDS)
def test_class_extreme_gamma(div, target_kind, size):
    gamma = 1e-8 if size == "tiny" else HUGE_GAMMA[repr(div)]
    rng = np.random.default_rng(22)
    L = class_losses(rng, 3, 6)
    targets = rng.integers(0, 6, size=3) if target_kind == "int" else soft_targets(rng, 3, 6)
    check_class(div, L, targets, gamma)


@requires_cvxpy
@pytest.mark.parametrize("div", [dw.TotalVariation(), dw.ReverseKL(), dw.SquaredL2(), dw.KL()], ids=div_id)
def test_class_argmin_outside_soft_support(div):
    # the best class has zero target mass: KL must stay on the support, the others may leave it
    L = np.array([[0.05, 1.0, 1.5, 3.0], [2.0, 0.3, 0.01, 0.9]])
    targets = np.array([[0.0, 0.6, 0.4, 0.0], [0.5, 0.0, 0.0, 0.5]])
    V = check_class(div, L, targets, GAMMAS[repr(div)][1])
    if isinstance(div, dw.KL):
        assert np.all(V[targets == 0] == 0)
    else:
        assert V[0, 0] > 0 and V[1, 2] > 0


@pytest.mark.parametrize(("div", "target_kind"), CLASS_CASES, ids=CLASS_IDS)
def test_class_zero_gamma_returns_targets(div, target_kind):
    L = np.array([[1.0, 0.2, 3.0], [0.1, 0.4, 0.3]])
    targets = np.array([0, 2]) if target_kind == "int" else np.array([[0.2, 0.0, 0.8], [0.1, 0.3, 0.6]])
    Y = np.eye(3)[targets] if target_kind == "int" else targets
    V = np.asarray(dw.class_weights(L, targets, div, gamma=0.0))
    np.testing.assert_allclose(V, Y, rtol=0, atol=1e-15)


@requires_cvxpy
@pytest.mark.parametrize("div", [dw.TotalVariation(), dw.ReverseKL(), dw.SquaredL2()], ids=div_id)
def test_class_label_is_argmin_keeps_label(div):
    L = np.array([[0.1, 0.5, 2.0], [3.0, 1.0, 0.2]])
    targets = np.array([0, 2])
    V = check_class(div, L, targets, GAMMAS[repr(div)][2])
    np.testing.assert_allclose(V, np.eye(3)[targets], rtol=0, atol=1e-12)


@requires_cvxpy
@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [3, 10, 100])
@pytest.mark.parametrize(("div", "target_kind"), CLASS_CASES, ids=CLASS_IDS)
def test_class_sweep(div, target_kind, k, seed):
    rng = np.random.default_rng([seed, k, 77, CLASS_CASES.index((div, target_kind))])
    L = class_losses(rng, 4, k, scale=rng.choice([0.3, 3.0, 20.0]))
    targets = rng.integers(0, k, size=4) if target_kind == "int" else soft_targets(rng, 4, k)
    gamma = float(rng.choice(GAMMAS[repr(div)])) * rng.uniform(0.5, 2.0)
    check_class(div, L, targets, gamma)


# -- the reference itself -----------------------------------------------------------------------


@requires_cvxpy
def test_reference_loops_over_leading_axes():
    rng = np.random.default_rng(31)
    l = rng.exponential(1.0, size=(2, 2, 5))
    w = ref.instance_weights(l, dw.KL(), lam=0.4)
    assert w.shape == l.shape
    for index in np.ndindex(2, 2):
        np.testing.assert_allclose(w[index], ref.instance_weights(l[index], dw.KL(), lam=0.4), atol=1e-9)
    L = rng.exponential(1.0, size=(2, 3, 4))
    v = ref.class_weights(L, rng.integers(0, 4, size=(2, 3)), dw.TotalVariation(), gamma=0.3)
    assert v.shape == L.shape


@requires_cvxpy
def test_reference_temperature_identity_recovers_published_weights():
    # the penalty solution at the implicit multiplier is the published formula
    l = np.random.default_rng(32).exponential(1.0, size=12)
    for a, T in [(0.1, 0.1), (0.5, 1.0), (-1.0, 0.5), (2.0, 3.0)]:
        w = ref.instance_weights(l, dw.Alpha(a), temperature=T)
        np.testing.assert_allclose(w, published_weights(l, a, T), rtol=0, atol=1e-5)


def test_implicit_lam_is_the_power_mean():
    l = np.array([0.0, 0.5, 3.0])
    a, T = 3.0, 2.0  # p = 1/2, b = max(T - 2 l, 0) = (2, 1, 0)
    assert ref.implicit_lam(l, a, T) == pytest.approx(((np.sqrt(2) + 1 + 0) / 3) ** 2, rel=1e-14)
    assert ref.implicit_lam(l, 1.0, 0.25) == 0.25
    with pytest.raises(ValueError, match="undefined"):
        ref.implicit_lam(np.array([-10.0, 0.0]), 0.5, 1.0)


@requires_cvxpy
def test_reference_input_validation():
    l = np.array([0.1, 0.2])
    with pytest.raises(ValueError, match="exactly one"):
        ref.instance_weights(l, dw.KL(), lam=1.0, delta=0.1)
    with pytest.raises(ValueError, match="temperature"):
        ref.instance_weights(l, dw.TotalVariation(), temperature=1.0)
    with pytest.raises(ValueError, match="finite"):
        ref.instance_weights(np.array([0.1, np.inf]), dw.KL(), lam=1.0)
    with pytest.raises(ValueError, match="> 0"):
        ref.instance_weights(l, dw.KL(), lam=0.0)
    with pytest.raises(TypeError, match="instance"):
        ref.instance_weights(l, dw.KL, lam=1.0)
    with pytest.raises(ValueError, match="not available"):
        ref.class_weights(l[None], np.array([0]), dw.Alpha(0.5), gamma=0.1)
    with pytest.raises(ValueError, match="sum to 1"):
        ref.class_weights(l[None], np.array([[0.3, 0.3]]), dw.TotalVariation(), gamma=0.1)


def test_reference_without_cvxpy_explains_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "cvxpy", None)
    with pytest.raises(ImportError, match=r"divweights\[reference\]"):
        ref.instance_weights(np.array([0.1, 0.2]), dw.KL(), lam=1.0)


@requires_cvxpy
def test_reference_solver_failure_names_the_status(monkeypatch):
    monkeypatch.setattr(_solve, "_solve_with", lambda cp, problem, solver, options: "infeasible")
    with pytest.raises(ref.ReferenceSolverError, match="infeasible"):
        ref.instance_weights(np.array([0.1, 0.2, 0.5]), dw.KL(), delta=0.1)


# -- where the oracle lives ------------------------------------------------------------------------


def test_import_divweights_loads_no_framework_no_cvxpy_and_no_oracle():
    code = (
        "import sys, divweights\n"
        "heavy = {'torch', 'jax', 'cvxpy', 'divweights_train', 'divweights.testing', 'divweights.noise'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    assert python_output(code) == "[]"


def test_import_oracle_does_not_load_cvxpy_until_a_solve():
    code = "import sys, divweights.testing; print('cvxpy' in sys.modules)"
    assert python_output(code) == "False"


def test_old_reference_path_is_a_deprecated_alias(monkeypatch):
    old = import_deprecated(monkeypatch, "divweights.reference", "divweights.testing", __file__)
    assert old.__all__ == ref.__all__
    assert_same_names(old, ref)
