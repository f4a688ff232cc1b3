"""Tests for the generators of divweights_train.noise (transition matrices, specs, old path: test_noise_spec.py)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from divweights_train import noise
from divweights_train.noise import (
    CIFAR10_ASYMMETRIC,
    CIFAR100_FINE_TO_COARSE,
    CIFAR100_NEXT_IN_SUPERCLASS,
    CIFAR100_SUPERCLASSES,
    FASHION_MNIST_ASYMMETRIC,
    apply_noise,
    asymmetric_noise,
    cifar100_asymmetric_noise,
    instance_dependent_noise,
    noise_transition_matrix,
    pair_flip_noise,
    symmetric_noise,
    transition_matrix_noise,
)
from helpers import balanced, random_scores, within

COARSE = np.asarray(CIFAR100_FINE_TO_COARSE)


# Every generator, as a function of (labels, seed) for shared property tests.
Y10 = balanced(2000, 10)
Y100 = balanced(2000, 100)
SCORES10 = random_scores(2000, 10)
GENERATORS = {
    "symmetric-flip": (Y10, lambda y, r: symmetric_noise(y, 0.4, 10, rng=r)),
    "symmetric-uniform": (Y10, lambda y, r: symmetric_noise(y, 0.4, 10, rng=r, variant="uniform")),
    "symmetric-bernoulli": (Y10, lambda y, r: symmetric_noise(y, 0.4, 10, rng=r, exact=False)),
    "asymmetric": (Y10, lambda y, r: asymmetric_noise(y, 0.4, mapping=CIFAR10_ASYMMETRIC, rng=r)),
    "asymmetric-bernoulli": (
        Y10,
        lambda y, r: asymmetric_noise(y, 0.4, mapping=CIFAR10_ASYMMETRIC, rng=r, exact=False),
    ),
    "pairflip": (Y10, lambda y, r: pair_flip_noise(y, 0.45, 10, rng=r)),
    "cifar100-next": (Y100, lambda y, r: cifar100_asymmetric_noise(y, 0.4, rng=r)),
    "cifar100-random": (Y100, lambda y, r: cifar100_asymmetric_noise(y, 0.4, rng=r, variant="random")),
    "transition": (Y10, lambda y, r: transition_matrix_noise(y, noise_transition_matrix("symmetric", 10, 0.4), rng=r)),
    "instance": (Y10, lambda y, r: instance_dependent_noise(y, 0.4, SCORES10, rng=r)),
}
GEN_IDS = sorted(GENERATORS)


# ---------------------------------------------------------------- shared properties


@pytest.mark.parametrize("name", GEN_IDS)
def test_mask_equals_noisy_differs_from_clean(name):
    y, gen = GENERATORS[name]
    noisy, mask = gen(y, 0)
    assert mask.dtype == np.bool_
    np.testing.assert_array_equal(mask, noisy != y)
    assert mask.any()


@pytest.mark.parametrize("name", GEN_IDS)
def test_same_seed_is_deterministic(name):
    y, gen = GENERATORS[name]
    a, ma = gen(y, 123)
    b, mb = gen(y, 123)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ma, mb)


@pytest.mark.parametrize("name", GEN_IDS)
def test_different_seeds_differ(name):
    y, gen = GENERATORS[name]
    a, _ = gen(y, 1)
    b, _ = gen(y, 2)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("name", GEN_IDS)
def test_generator_object_matches_int_seed(name):
    y, gen = GENERATORS[name]
    a, _ = gen(y, 7)
    b, _ = gen(y, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", GEN_IDS)
def test_input_labels_are_not_modified(name):
    y, gen = GENERATORS[name]
    before = y.copy()
    gen(y, 0)
    np.testing.assert_array_equal(y, before)


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.int16])
def test_output_keeps_label_dtype(dtype):
    y = balanced(500, 10).astype(dtype)
    noisy, _ = symmetric_noise(y, 0.5, 10, rng=0)
    assert noisy.dtype == np.dtype(dtype)


def test_list_input_is_accepted():
    noisy, mask = pair_flip_noise([0, 1, 2, 0], 1.0, 3, rng=0)
    np.testing.assert_array_equal(noisy, [1, 2, 0, 1])
    assert mask.all()


@pytest.mark.parametrize(
    "call",
    [
        lambda y: symmetric_noise(y, 0.5, 10, rng=0),
        lambda y: symmetric_noise(y, 0.5, 10, rng=0, variant="uniform", exact=False),
        lambda y: asymmetric_noise(y, 0.5, mapping=CIFAR10_ASYMMETRIC, rng=0),
        lambda y: pair_flip_noise(y, 0.5, 10, rng=0),
        lambda y: cifar100_asymmetric_noise(y, 0.5, rng=0),
        lambda y: transition_matrix_noise(y, np.eye(3), rng=0),
        lambda y: instance_dependent_noise(y, 0.5, np.zeros((0, 3)), rng=0),
        lambda y: apply_noise("none", y, 10, rng=0),
    ],
)
@pytest.mark.parametrize("empty", [[], np.zeros(0, dtype=np.int64)])
def test_empty_labels_return_empty(call, empty):
    noisy, mask = call(empty)
    assert noisy.shape == (0,) and mask.shape == (0,)
    assert mask.dtype == np.bool_


# ---------------------------------------------------------------- symmetric


@pytest.mark.parametrize("rate", [0.0, 0.2, 0.37, 0.6, 1.0])
def test_symmetric_flip_exact_count(rate):
    y = balanced(1000, 10)
    _, mask = symmetric_noise(y, rate, 10, rng=0)
    assert mask.sum() == round(rate * 1000)


def test_exact_count_rounds_half_up():
    _, mask = symmetric_noise(np.arange(5) % 2, 0.5, 2, rng=0)
    assert mask.sum() == 3


def test_symmetric_flip_never_keeps_the_class():
    y = balanced(5000, 7)
    noisy, mask = symmetric_noise(y, 1.0, 7, rng=0)
    assert mask.all()
    assert np.all(noisy != y)


def test_symmetric_flip_bernoulli_never_keeps_a_resampled_class():
    y = balanced(5000, 3)
    _noisy, mask = symmetric_noise(y, 1.0, 3, rng=0, exact=False)
    assert mask.all()


def test_symmetric_flip_targets_are_uniform_over_other_classes():
    k, n = 5, 20000
    y = balanced(n, k)
    noisy, _ = symmetric_noise(y, 1.0, k, rng=0)
    shift = (noisy - y) % k
    counts = np.bincount(shift, minlength=k)
    assert counts[0] == 0
    for c in counts[1:]:
        assert within(c, n, 1 / (k - 1))


def test_symmetric_bernoulli_rate_within_binomial_tolerance():
    n, rate = 20000, 0.3
    _, mask = symmetric_noise(balanced(n, 10), rate, 10, rng=0, exact=False)
    assert within(mask.sum(), n, rate)


def test_symmetric_bernoulli_is_not_exact():
    n, rate = 20000, 0.3
    counts = {int(symmetric_noise(balanced(n, 10), rate, 10, rng=s, exact=False)[1].sum()) for s in range(5)}
    assert len(counts) > 1


def test_symmetric_uniform_keeps_class_with_probability_one_over_k():
    k, n = 4, 20000
    y = balanced(n, k)
    _, mask = symmetric_noise(y, 1.0, k, rng=0, variant="uniform")
    assert within(n - mask.sum(), n, 1 / k)


def test_symmetric_uniform_exact_resamples_exactly_round_rate_n():
    # With k = 1000 classes almost no resample lands on the true class, so the
    # flip count sits just below the number of resampled examples.
    n, rate, k = 2000, 0.3, 1000
    y = balanced(n, k)
    _, mask = symmetric_noise(y, rate, k, rng=0, variant="uniform")
    resampled = round(rate * n)
    assert resampled - 5 <= mask.sum() <= resampled


def test_symmetric_uniform_bernoulli_flip_fraction():
    n, rate, k = 20000, 0.4, 10
    _, mask = symmetric_noise(balanced(n, k), rate, k, rng=0, variant="uniform", exact=False)
    assert within(mask.sum(), n, rate * (k - 1) / k)


def test_symmetric_uniform_allows_one_class():
    _noisy, mask = symmetric_noise(np.zeros(10, dtype=int), 1.0, 1, rng=0, variant="uniform")
    assert not mask.any()


# ---------------------------------------------------------------- asymmetric / mappings


def test_cifar10_mapping_is_the_documented_one():
    assert dict(CIFAR10_ASYMMETRIC) == {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}


def test_fashion_mnist_mapping_is_documented_and_acyclic():
    assert dict(FASHION_MNIST_ASYMMETRIC) == {0: 6, 2: 4, 5: 7, 9: 7}
    assert not set(FASHION_MNIST_ASYMMETRIC) & set(FASHION_MNIST_ASYMMETRIC.values())


def test_named_mappings_are_read_only():
    with pytest.raises(TypeError):
        CIFAR10_ASYMMETRIC[0] = 1  # type: ignore[index]


@pytest.mark.parametrize("mapping", [CIFAR10_ASYMMETRIC, FASHION_MNIST_ASYMMETRIC], ids=["cifar10", "fashion-mnist"])
def test_mapping_sends_sources_to_targets_and_leaves_others(mapping):
    n, rate = 3000, 0.4
    y = balanced(n, 10)
    noisy, mask = asymmetric_noise(y, rate, mapping=mapping, rng=0)
    for c in range(10):
        in_c = y == c
        if c in mapping:
            assert mask[in_c].sum() == round(rate * in_c.sum())
            np.testing.assert_array_equal(noisy[in_c & mask], mapping[c])
        else:
            assert not mask[in_c].any()


def test_asymmetric_bernoulli_per_class_rate():
    n, rate = 20000, 0.35
    y = balanced(n, 10)
    _, mask = asymmetric_noise(y, rate, mapping=CIFAR10_ASYMMETRIC, rng=0, exact=False)
    sources = np.isin(y, list(CIFAR10_ASYMMETRIC))
    assert within(mask.sum(), sources.sum(), rate)
    assert not mask[~sources].any()


def test_asymmetric_generic_mapping_without_num_classes():
    y = np.array([0, 0, 5, 5, 7])
    noisy, _mask = asymmetric_noise(y, 1.0, mapping={5: 11}, rng=0)
    np.testing.assert_array_equal(noisy, [0, 0, 11, 11, 7])


def test_pair_flip_sends_c_to_c_plus_one_with_exact_counts():
    k, rate = 6, 0.45
    y = balanced(1200, k)
    noisy, mask = pair_flip_noise(y, rate, k, rng=0)
    np.testing.assert_array_equal(noisy[mask], (y[mask] + 1) % k)
    for c in range(k):
        assert mask[y == c].sum() == round(rate * (y == c).sum())


def test_pair_flip_with_two_classes_swaps():
    y = np.array([0, 1, 0, 1])
    noisy, _ = pair_flip_noise(y, 1.0, 2, rng=0)
    np.testing.assert_array_equal(noisy, [1, 0, 1, 0])


def test_pair_flip_bernoulli_rate():
    n, rate = 20000, 0.45
    _, mask = pair_flip_noise(balanced(n, 10), rate, 10, rng=0, exact=False)
    assert within(mask.sum(), n, rate)


# ---------------------------------------------------------------- CIFAR-100


def test_cifar100_superclass_table():
    assert len(CIFAR100_FINE_TO_COARSE) == 100
    assert np.bincount(COARSE).tolist() == [5] * 20
    # spot checks: apple, aquarium_fish, beaver, whale, worm
    assert [COARSE[f] for f in (0, 1, 4, 95, 99)] == [4, 1, 0, 0, 13]
    assert CIFAR100_SUPERCLASSES[0] == (4, 30, 55, 72, 95)  # aquatic mammals
    assert len(noise.CIFAR100_COARSE_CLASSES) == 20


def test_cifar100_next_is_a_cycle_within_each_superclass():
    for members in CIFAR100_SUPERCLASSES:
        orbit = [members[0]]
        for _ in range(4):
            orbit.append(CIFAR100_NEXT_IN_SUPERCLASS[orbit[-1]])
        assert sorted(orbit) == list(members)
        assert CIFAR100_NEXT_IN_SUPERCLASS[orbit[-1]] == members[0]
        for a, b in zip(members, members[1:] + members[:1]):
            assert CIFAR100_NEXT_IN_SUPERCLASS[a] == b


def test_cifar100_next_flips_stay_in_superclass_and_follow_the_cycle():
    y = np.repeat(np.arange(100), 20)
    noisy, mask = cifar100_asymmetric_noise(y, 0.4, rng=0, variant="next")
    assert mask.sum() == 100 * 8
    np.testing.assert_array_equal(COARSE[noisy], COARSE[y])
    nxt = np.array([CIFAR100_NEXT_IN_SUPERCLASS[f] for f in range(100)])
    np.testing.assert_array_equal(noisy[mask], nxt[y[mask]])


def test_cifar100_random_stays_in_superclass_and_is_roughly_uniform():
    y = np.repeat(np.arange(100), 200)
    noisy, mask = cifar100_asymmetric_noise(y, 1.0, rng=0, variant="random")
    assert mask.all()
    np.testing.assert_array_equal(COARSE[noisy], COARSE[y])
    # For fine class 4 (beaver) the four siblings should each get ~1/4.
    got = noisy[y == 4]
    for sibling in (30, 55, 72, 95):
        assert within((got == sibling).sum(), 200, 0.25)


# ---------------------------------------------------------------- instance-dependent


def test_instance_noise_flips_exact_count_to_argmax_other():
    n, k, rate = 1000, 10, 0.35
    y = balanced(n, k)
    scores = random_scores(n, k, seed=3)
    noisy, mask = instance_dependent_noise(y, rate, scores, rng=0)
    assert mask.sum() == round(rate * n)
    others = scores.copy()
    others[np.arange(n), y] = -np.inf
    np.testing.assert_array_equal(noisy[mask], others.argmax(axis=1)[mask])


def test_instance_noise_prefers_confusable_examples():
    n, k = 4000, 5
    y = balanced(n, k)
    hard = np.arange(n) < n // 2
    p_true = np.where(hard, 0.3, 0.95)
    scores = np.tile(((1 - p_true) / (k - 1))[:, None], (1, k))
    scores[np.arange(n), y] = p_true
    _, mask = instance_dependent_noise(y, 0.2, scores, rng=0)
    assert mask[hard].mean() > 3 * mask[~hard].mean()


def test_instance_noise_selection_probability_grows_with_confusability():
    # Across many seeds the per-example flip frequency is monotone in confusability.
    y = np.zeros(4, dtype=int)
    scores = np.array([[0.9, 0.1], [0.7, 0.3], [0.5, 0.5], [0.2, 0.8]])
    freq = np.zeros(4)
    for seed in range(400):
        freq += instance_dependent_noise(y, 0.25, scores, rng=seed)[1]
    assert np.all(np.diff(freq) > 0)


def test_instance_noise_unnormalised_scores_are_normalised():
    y = np.array([0, 1, 2])
    scores = np.array([[2.0, 1.0, 1.0], [3.0, 3.0, 6.0], [0.0, 5.0, 5.0]])
    noisy_a, _ = instance_dependent_noise(y, 0.67, scores, rng=5)
    noisy_b, _ = instance_dependent_noise(y, 0.67, scores / scores.sum(1, keepdims=True), rng=5)
    np.testing.assert_array_equal(noisy_a, noisy_b)


def test_instance_noise_skips_zero_confusion_until_needed():
    y = np.array([0, 1, 0, 1])
    scores = np.array([[1.0, 0.0], [0.0, 1.0], [0.4, 0.6], [0.5, 0.5]])
    _, mask = instance_dependent_noise(y, 0.5, scores, rng=0)
    np.testing.assert_array_equal(mask, [False, False, True, True])
    noisy, mask = instance_dependent_noise(y, 1.0, scores, rng=0)
    assert mask.all()
    np.testing.assert_array_equal(noisy, [1, 0, 1, 0])


@pytest.mark.parametrize(
    "labels, scores, exc, match",
    [
        ([0, 1], np.array([0.5, 0.5]), ValueError, "2-D"),
        ([0, 1], np.ones((3, 2)), ValueError, "3 rows but labels has 2"),
        ([0, 0], np.ones((2, 1)), ValueError, "at least 2 classes"),
        ([0, 1], np.array([[0.5, 0.5], [-0.1, 1.1]]), ValueError, "nonnegative"),
        ([0, 1], np.array([[0.5, np.inf], [0.0, 1.0]]), ValueError, "NaN or infinite"),
        ([0, 1], np.array([[0.5, 0.5], [0.0, 0.0]]), ValueError, "positive sum"),
        ([0, 2], np.ones((2, 2)), ValueError, r"\[0, 2\)"),
        ([0, 1], np.ones((2, 2), dtype=bool), TypeError, "real-valued"),
    ],
)
def test_instance_noise_validation(labels, scores, exc, match):
    with pytest.raises(exc, match=match):
        instance_dependent_noise(np.asarray(labels), 0.5, scores, rng=0)


# ---------------------------------------------------------------- shared validation


@pytest.mark.parametrize("rate", [-0.1, 1.1, float("nan"), float("inf")])
def test_rate_outside_unit_interval_is_rejected(rate):
    with pytest.raises(ValueError, match=r"rate must lie in \[0, 1\]"):
        symmetric_noise(np.array([0, 1]), rate, 2, rng=0)


@pytest.mark.parametrize("rate", ["0.3", True, None])
def test_rate_of_wrong_type_is_rejected(rate):
    with pytest.raises(TypeError, match="rate must be a real number"):
        pair_flip_noise(np.array([0, 1]), rate, 2, rng=0)


def test_rate_as_zero_d_array_is_accepted():
    _, mask = symmetric_noise(np.arange(10) % 2, np.array(0.5), 2, rng=0)
    assert mask.sum() == 5


@pytest.mark.parametrize("labels", [np.array([0.0, 1.0]), np.array([True, False]), np.array(["a", "b"])])
def test_non_integer_labels_are_rejected(labels):
    with pytest.raises(TypeError, match="labels must have an integer dtype"):
        symmetric_noise(labels, 0.5, 2, rng=0)


def test_non_1d_labels_are_rejected():
    with pytest.raises(ValueError, match="1-D array"):
        symmetric_noise(np.zeros((2, 2), dtype=int), 0.5, 2, rng=0)
    with pytest.raises(ValueError, match="1-D array"):
        symmetric_noise(np.int64(1), 0.5, 2, rng=0)


def test_negative_labels_are_rejected():
    with pytest.raises(ValueError, match="nonnegative"):
        asymmetric_noise(np.array([0, -1]), 0.5, mapping={0: 1}, rng=0)


def test_labels_at_or_above_num_classes_are_rejected():
    with pytest.raises(ValueError, match=r"\[0, 3\); found 3"):
        symmetric_noise(np.array([0, 3]), 0.5, 3, rng=0)
    with pytest.raises(ValueError, match=r"\[0, 100\)"):
        cifar100_asymmetric_noise(np.array([100]), 0.5, rng=0)


def test_symmetric_flip_needs_two_classes():
    with pytest.raises(ValueError, match="at least 2 for symmetric 'flip'"):
        symmetric_noise(np.zeros(3, dtype=int), 0.5, 1, rng=0)


def test_pair_flip_needs_two_classes():
    with pytest.raises(ValueError, match="at least 2 for pair-flip"):
        pair_flip_noise(np.zeros(3, dtype=int), 0.5, 1, rng=0)


@pytest.mark.parametrize("k", [2.0, "2", True])
def test_num_classes_must_be_int(k):
    with pytest.raises(TypeError, match="num_classes must be an int"):
        symmetric_noise(np.array([0, 1]), 0.5, k, rng=0)


def test_unknown_variants_are_rejected():
    with pytest.raises(ValueError, match="variant must be 'flip' or 'uniform'"):
        symmetric_noise(np.array([0, 1]), 0.5, 2, rng=0, variant="other")
    with pytest.raises(ValueError, match="variant must be 'next' or 'random'"):
        cifar100_asymmetric_noise(np.array([0, 1]), 0.5, rng=0, variant="other")


def test_exact_must_be_bool():
    with pytest.raises(TypeError, match="exact must be True or False"):
        symmetric_noise(np.array([0, 1]), 0.5, 2, rng=0, exact=1)


@pytest.mark.parametrize(
    "rng, exc, match",
    [
        (1.5, TypeError, "rng must be an int seed or a numpy.random.Generator"),
        ("7", TypeError, "rng must be an int seed"),
        (np.random.RandomState(0), TypeError, "got RandomState"),
        (-3, ValueError, "nonnegative"),
    ],
)
def test_bad_rng_is_rejected(rng, exc, match):
    with pytest.raises(exc, match=match):
        symmetric_noise(np.array([0, 1]), 0.5, 2, rng=rng)


def test_rng_is_keyword_only_and_required():
    with pytest.raises(TypeError):
        symmetric_noise(np.array([0, 1]), 0.5, 2)  # type: ignore[call-arg]


def test_dtype_overflow_is_reported():
    y = np.array([255], dtype=np.uint8)
    with pytest.raises(ValueError, match="does not fit"):
        pair_flip_noise(y, 1.0, 300, rng=0)


@pytest.mark.parametrize(
    "mapping, exc, match",
    [
        ([(0, 1)], TypeError, "mapping must be a dict"),
        ({0: 0}, ValueError, "to itself"),
        ({-1: 2}, ValueError, "not a valid class pair"),
        ({0: 1.5}, TypeError, "must be int class indices"),
        ({0: 12}, ValueError, "< num_classes=10"),
    ],
)
def test_bad_mappings_are_rejected(mapping, exc, match):
    with pytest.raises(exc, match=match):
        asymmetric_noise(np.array([0, 1]), 0.5, mapping=mapping, rng=0, num_classes=10)


# The sections the generators share are written once and filled in at import (noise._checks._shared_doc).
NOISE_FUNCTIONS = [n for n in noise.__all__ if inspect.isfunction(getattr(noise, n))]


@pytest.mark.parametrize("name", NOISE_FUNCTIONS)
def test_docstrings_have_every_shared_section_filled_in(name):
    doc = getattr(noise, name).__doc__
    assert "{{" not in doc and "}}" not in doc
    if "rng" in inspect.signature(getattr(noise, name)).parameters:
        assert "rng : int or numpy.random.Generator\n        Seed or generator." in doc


@pytest.mark.parametrize("name", [n for n in NOISE_FUNCTIONS if n.endswith("_noise") or n == "apply_noise"])
def test_every_generator_documents_what_it_returns(name):
    doc = getattr(noise, name).__doc__
    assert "    Returns\n    -------\n    noisy_labels : numpy.ndarray, shape (n,)\n" in doc
    assert "    flipped_mask : numpy.ndarray of bool, shape (n,)\n        ``noisy_labels != labels``." in doc
