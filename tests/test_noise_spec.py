"""divweights_train.noise: transition matrices, specs (``"KIND:RATE"``) and their dispatch, the old path ``divweights.noise``."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from divweights_train import noise
from divweights_train.noise import (
    CIFAR10_ASYMMETRIC,
    CIFAR100_FINE_TO_COARSE,
    FASHION_MNIST_ASYMMETRIC,
    NOISE_KINDS,
    NoiseSpec,
    apply_noise,
    noise_transition_matrix,
    parse_noise_spec,
    transition_matrix_noise,
)
from helpers import (
    assert_same_names,
    balanced,
    import_deprecated,
    python_output,
    random_scores,
    within,
)

COARSE = np.asarray(CIFAR100_FINE_TO_COARSE)


# ---------------------------------------------------------------- transition matrices


def test_transition_matrix_empirical_frequencies_match():
    T = np.array([[0.6, 0.3, 0.1, 0.0],
                  [0.0, 0.9, 0.0, 0.1],
                  [0.25, 0.25, 0.25, 0.25],
                  [0.0, 0.0, 0.0, 1.0]])  # fmt: skip
    n_per = 8000
    y = np.repeat(np.arange(4), n_per)
    noisy, _ = transition_matrix_noise(y, T, rng=0)
    for i in range(4):
        counts = np.bincount(noisy[y == i], minlength=4)
        for j in range(4):
            if T[i, j] == 0:
                assert counts[j] == 0
            else:
                assert within(counts[j], n_per, T[i, j])


def test_transition_matrix_rejects_column_stochastic_matrix():
    col = np.array([[0.5, 0.2, 0.1],
                    [0.3, 0.7, 0.1],
                    [0.2, 0.1, 0.8]])  # fmt: skip
    with pytest.raises(ValueError, match=r"rows must each sum to 1.*columns sum to 1"):
        transition_matrix_noise(np.array([0, 1, 2]), col, rng=0)


def test_transition_matrix_accepts_rows_within_tolerance():
    T = np.array([[1.0 + 5e-7, 0.0], [0.5, 0.5]])
    noisy, _ = transition_matrix_noise(np.array([0, 1]), T, rng=0)
    assert noisy[0] == 0


@pytest.mark.parametrize(
    "matrix, match",
    [
        (np.ones((2, 3)) / 3, "square"),
        (np.ones(3) / 3, "square"),
        (np.zeros((0, 0)), "square"),
        (np.array([[1.5, -0.5], [0.0, 1.0]]), "nonnegative"),
        (np.array([[np.nan, 1.0], [0.0, 1.0]]), "NaN"),
        (np.array([[0.5, 0.4], [0.0, 1.0]]), "rows must each sum to 1"),
    ],
)
def test_transition_matrix_validation(matrix, match):
    with pytest.raises(ValueError, match=match):
        transition_matrix_noise(np.array([0, 1]), matrix, rng=0)


def test_transition_matrix_rejects_non_real_dtype():
    with pytest.raises(TypeError, match="real-valued"):
        transition_matrix_noise(np.array([0, 1]), np.eye(2, dtype=bool), rng=0)


def test_transition_matrix_labels_must_fit_matrix():
    with pytest.raises(ValueError, match=r"\[0, 3\) for a 3x3"):
        transition_matrix_noise(np.array([0, 3]), np.eye(3), rng=0)


def test_transition_matrix_num_classes_must_match():
    with pytest.raises(ValueError, match="3x3 but num_classes is 4"):
        transition_matrix_noise(np.array([0, 1]), np.eye(3), rng=0, num_classes=4)


@pytest.mark.parametrize("kind", ["none", "symmetric", "symmetric-uniform", "pairflip"])
def test_noise_transition_matrix_rows_are_stochastic(kind):
    T = noise_transition_matrix(kind, 7, 0.3)
    assert T.shape == (7, 7)
    assert np.all(T >= 0)
    np.testing.assert_allclose(T.sum(axis=1), 1.0)


def test_noise_transition_matrix_values():
    k, r = 5, 0.4
    sym = noise_transition_matrix("symmetric", k, r)
    np.testing.assert_allclose(np.diag(sym), 1 - r)
    np.testing.assert_allclose(sym[0, 1], r / (k - 1))
    uni = noise_transition_matrix("symmetric-uniform", k, r)
    np.testing.assert_allclose(np.diag(uni), 1 - r + r / k)
    np.testing.assert_allclose(uni[0, 1], r / k)
    pair = noise_transition_matrix("pairflip", k, r)
    np.testing.assert_allclose(pair[k - 1, 0], r)
    np.testing.assert_allclose(pair[0, 2], 0.0)


def test_noise_transition_matrix_asymmetric_and_cifar100():
    A = noise_transition_matrix("asymmetric", 10, 0.3, mapping=CIFAR10_ASYMMETRIC)
    assert A[9, 1] == pytest.approx(0.3) and A[9, 9] == pytest.approx(0.7)
    assert A[0, 0] == 1.0
    for kind in ("cifar100-next", "cifar100-random"):
        C = noise_transition_matrix(kind, 100, 0.4)
        np.testing.assert_allclose(C.sum(axis=1), 1.0)
        same_super = COARSE[:, None] == COARSE[None, :]
        assert np.all(C[~same_super] == 0)
    assert noise_transition_matrix("cifar100-next", 100, 0.4)[4, 30] == pytest.approx(0.4)


def test_noise_transition_matrix_matches_bernoulli_generator():
    k, n, r = 4, 20000, 0.3
    y = balanced(n, k)
    noisy, _ = noise.symmetric_noise(y, r, k, rng=0, exact=False)
    T = noise_transition_matrix("symmetric", k, r)
    row0 = noisy[y == 0]
    for j in range(k):
        assert within((row0 == j).sum(), row0.size, T[0, j])


@pytest.mark.parametrize(
    "args, kwargs, exc, match",
    [
        (("instance", 3, 0.1), {}, ValueError, "no class-level transition matrix"),
        (("bogus", 3, 0.1), {}, ValueError, "unknown noise kind"),
        (("asymmetric", 10, 0.1), {}, ValueError, "needs a mapping"),
        (("symmetric", 3, 0.1), {"mapping": {0: 1}}, ValueError, "only used with kind='asymmetric'"),
        (("cifar100-next", 10, 0.1), {}, ValueError, "num_classes=100"),
        (("symmetric", 1, 0.1), {}, ValueError, "at least 2"),
        (("symmetric", 3, 1.1), {}, ValueError, r"\[0, 1\]"),
        ((3, 3, 0.1), {}, TypeError, "kind must be a str"),
    ],
)
def test_noise_transition_matrix_validation(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        noise_transition_matrix(*args, **kwargs)


# ---------------------------------------------------------------- specs and dispatch


@pytest.mark.parametrize("rate", [0.0, 0.45, 1.0])
@pytest.mark.parametrize("kind", [k for k in NOISE_KINDS if k != "none"])
def test_parse_noise_spec_reads_every_kind(kind, rate):
    assert parse_noise_spec(f"{kind}:{rate}") == NoiseSpec(kind, rate)


@pytest.mark.parametrize(
    "text, kind, rate",
    [
        ("none", "none", 0.0),
        ("none:0", "none", 0.0),
        ("  Symmetric : 0.2 ", "symmetric", 0.2),
        ("pair-flip:0.1", "pairflip", 0.1),
        ("asym:1", "asymmetric", 1.0),
    ],
)
def test_parse_noise_spec_spellings(text, kind, rate):
    assert parse_noise_spec(text) == NoiseSpec(kind, rate)


@pytest.mark.parametrize("text", ["symmetric:0.6", "pairflip:0.45", "none", "instance:0.0"])
def test_noise_spec_str_round_trips(text):
    spec = parse_noise_spec(text)
    assert parse_noise_spec(str(spec)) == spec


def test_noise_spec_is_frozen_and_passes_through():
    spec = NoiseSpec("symmetric", 0.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.rate = 0.1  # type: ignore[misc]
    assert parse_noise_spec(spec) is spec


@pytest.mark.parametrize(
    "text, exc, match",
    [
        ("bogus:0.1", ValueError, "unknown noise kind 'bogus'; supported kinds: none, symmetric"),
        ("symmetric", ValueError, "missing a rate"),
        ("symmetric:", ValueError, "missing a rate"),
        ("symmetric:abc", ValueError, "could not parse rate 'abc'"),
        ("symmetric:0.2:3", ValueError, "could not parse rate"),
        ("symmetric:1.5", ValueError, r"rate must lie in \[0, 1\]"),
        ("symmetric:nan", ValueError, r"rate must lie in \[0, 1\]"),
        ("none:0.3", ValueError, "must have rate 0"),
        ("   ", ValueError, "empty noise spec"),
        (0.4, TypeError, "noise spec must be a str"),
    ],
)
def test_parse_noise_spec_errors(text, exc, match):
    with pytest.raises(exc, match=match):
        parse_noise_spec(text)


@pytest.mark.parametrize("alias, kind", sorted(noise.NOISE_KIND_ALIASES.items()))
def test_every_accepted_alias_is_listed_in_the_error(alias, kind):
    # Regression (issue 15): "sym:0.6" parsed, but the error for an unknown kind listed only the canonical kinds.
    assert parse_noise_spec(f"{alias}:0.25" if kind != "none" else alias).kind == kind
    with pytest.raises(ValueError, match="unknown noise kind") as info:
        parse_noise_spec("bogus:0.1")
    assert f"{alias} -> {kind}" in str(info.value)


def test_noise_spec_constructor_validates():
    with pytest.raises(ValueError, match="unknown noise kind"):
        NoiseSpec("bogus", 0.1)
    with pytest.raises(ValueError, match="'sym' is an alias of 'symmetric'"):
        NoiseSpec("sym", 0.1)  # aliases are for the parser only
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        NoiseSpec("symmetric", 2.0)


@pytest.mark.parametrize(
    "spec, direct, k",
    [
        ("symmetric:0.4", lambda y: noise.symmetric_noise(y, 0.4, 10, rng=3), 10),
        ("symmetric-uniform:0.4", lambda y: noise.symmetric_noise(y, 0.4, 10, rng=3, variant="uniform"), 10),
        ("pairflip:0.45", lambda y: noise.pair_flip_noise(y, 0.45, 10, rng=3), 10),
        ("cifar100-next:0.4", lambda y: noise.cifar100_asymmetric_noise(y, 0.4, rng=3), 100),
        ("cifar100-random:0.4", lambda y: noise.cifar100_asymmetric_noise(y, 0.4, rng=3, variant="random"), 100),
    ],
)
def test_apply_noise_dispatches(spec, direct, k):
    y = balanced(1000, k)
    a, ma = apply_noise(spec, y, k, rng=3)
    b, mb = direct(y)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ma, mb)


@pytest.mark.parametrize(
    "dataset, mapping",
    [
        ("cifar10", CIFAR10_ASYMMETRIC),
        ("CIFAR-10", CIFAR10_ASYMMETRIC),
        ("fashion-mnist", FASHION_MNIST_ASYMMETRIC),
        ("FashionMNIST", FASHION_MNIST_ASYMMETRIC),
    ],
)
def test_apply_noise_asymmetric_picks_mapping_by_dataset(dataset, mapping):
    y = balanced(1000, 10)
    a, _ = apply_noise("asymmetric:0.4", y, 10, rng=3, dataset=dataset)
    b, _ = noise.asymmetric_noise(y, 0.4, mapping=mapping, rng=3)
    np.testing.assert_array_equal(a, b)


def test_apply_noise_instance_uses_scores():
    y = balanced(500, 10)
    scores = random_scores(500, 10)
    a, _ = apply_noise("instance:0.3", y, 10, rng=3, confusion_scores=scores)
    b, _ = noise.instance_dependent_noise(y, 0.3, scores, rng=3)
    np.testing.assert_array_equal(a, b)


def test_apply_noise_none_returns_copy():
    y = balanced(100, 10).astype(np.int32)
    noisy, mask = apply_noise("none", y, 10, rng=0)
    np.testing.assert_array_equal(noisy, y)
    assert noisy.dtype == np.int32 and noisy is not y
    assert not mask.any()


def test_apply_noise_passes_exact_flag():
    n = 20000
    y = balanced(n, 10)
    _, mask = apply_noise("symmetric:0.3", y, 10, rng=0, exact=False)
    assert mask.sum() != round(0.3 * n)
    assert within(mask.sum(), n, 0.3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"spec": "asymmetric:0.4", "dataset": None}, r"needs dataset=.*'cifar10', 'fashion-mnist'"),
        (
            {"spec": "asymmetric:0.4", "dataset": "mnist"},
            r"no asymmetric mapping for dataset 'mnist'; supported: 'cifar10', 'fashion-mnist'",
        ),
        ({"spec": "asymmetric:0.4", "dataset": "cifar100"}, "cifar100-next"),
        ({"spec": "asymmetric:0.4", "dataset": "cifar10", "num_classes": 12}, "num_classes=10"),
        ({"spec": "cifar100-next:0.4"}, "num_classes=100"),
        ({"spec": "instance:0.4"}, "needs confusion_scores"),
        (
            {"spec": "instance:0.4", "confusion_scores": np.ones((4, 10)), "exact": False},
            "exact=False is not supported",
        ),
        ({"spec": "instance:0.4", "confusion_scores": np.ones((4, 3))}, "3 columns but num_classes is 10"),
    ],
)
def test_apply_noise_errors(kwargs, match):
    kwargs = dict(kwargs)
    spec = kwargs.pop("spec")
    k = kwargs.pop("num_classes", 10)
    with pytest.raises(ValueError, match=match):
        apply_noise(spec, np.array([0, 1, 2, 3]), k, rng=0, **kwargs)


# ---------------------------------------------------------------- the old path


def test_package_is_framework_free():
    code = "import sys, divweights_train.noise; print(sorted({'torch', 'jax', 'divweights'} & set(sys.modules)))"
    assert python_output(code) == "[]"


def test_old_path_is_a_deprecated_alias(monkeypatch):
    old = import_deprecated(monkeypatch, "divweights.noise", "divweights_train.noise", __file__)
    assert_same_names(old, noise)
    with pytest.raises(AttributeError, match="moved to divweights_train.noise"):
        old.not_a_name


def test_importing_the_old_path_does_not_load_the_training_program():
    code = (
        "import sys, warnings; warnings.simplefilter('ignore')\n"
        "import divweights.noise\n"
        "print('divweights_train' in sys.modules)"
    )
    assert python_output(code) == "False"
