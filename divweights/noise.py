"""Synthetic label noise for experiments on learning with noisy labels.

Every generator in this module takes a 1-D array of clean integer class
labels and returns a pair ``(noisy_labels, flipped_mask)`` where

* ``noisy_labels`` is a new NumPy array with the same dtype as the input
  (the input is never modified), and
* ``flipped_mask`` is a boolean array with ``flipped_mask[i] ==
  (noisy_labels[i] != labels[i])``.

Randomness always comes from an explicit, keyword-only ``rng`` argument,
which accepts an integer seed or a :class:`numpy.random.Generator` (a
``SeedSequence`` also works). The same seed always gives the same noise.

Noise families
--------------
``symmetric_noise``
    Uniform label noise. Variant ``"flip"`` moves a label to a uniformly
    chosen *different* class; variant ``"uniform"`` redraws it uniformly
    from all classes (so it may land on the true class again, and the
    realised flip fraction is ``rate * (k - 1) / k``).
``asymmetric_noise``
    Class-mapping noise ``src -> dst`` for the classes named in a mapping.
    Named mappings: :data:`CIFAR10_ASYMMETRIC`,
    :data:`FASHION_MNIST_ASYMMETRIC`.
``pair_flip_noise``
    Class ``c`` moves to ``(c + 1) mod k``.
``cifar100_asymmetric_noise``
    Flips within the 20 CIFAR-100 superclasses (see
    :data:`CIFAR100_FINE_TO_COARSE`).
``transition_matrix_noise``
    Arbitrary class-conditional noise from a row-stochastic matrix
    ``T[i, j] = P(noisy = j | clean = i)``.
``instance_dependent_noise``
    Flips the examples a clean-trained model finds most confusable
    towards the class it confuses them with.

Counting convention
-------------------
With ``exact=True`` (the default) the number of corrupted examples is
fixed: ``round(rate * n)`` where ``n`` is the number of candidates and
halves are rounded *up* (``floor(rate * n + 0.5)``), chosen uniformly
without replacement. For class-mapping noise (asymmetric, pair-flip,
CIFAR-100) this count is applied separately to each source class. With
``exact=False`` every candidate is corrupted independently with
probability ``rate``.

The command-line helpers :func:`parse_noise_spec` and :func:`apply_noise`
map strings such as ``"symmetric:0.6"`` onto these generators.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping, Optional, Tuple, Union

import numpy as np

__all__ = [
    "RNGLike",
    "NoiseSpec",
    "NOISE_KINDS",
    "CIFAR10_CLASSES",
    "FASHION_MNIST_CLASSES",
    "CIFAR10_ASYMMETRIC",
    "FASHION_MNIST_ASYMMETRIC",
    "ASYMMETRIC_MAPPINGS",
    "CIFAR100_FINE_TO_COARSE",
    "CIFAR100_COARSE_CLASSES",
    "CIFAR100_SUPERCLASSES",
    "CIFAR100_NEXT_IN_SUPERCLASS",
    "symmetric_noise",
    "asymmetric_noise",
    "pair_flip_noise",
    "cifar100_asymmetric_noise",
    "transition_matrix_noise",
    "noise_transition_matrix",
    "instance_dependent_noise",
    "parse_noise_spec",
    "apply_noise",
]

RNGLike = Union[int, np.integer, np.random.Generator, np.random.SeedSequence, None]
"""Accepted types for the ``rng`` argument."""

NoiseResult = Tuple[np.ndarray, np.ndarray]

# --------------------------------------------------------------------------
# Dataset constants
# --------------------------------------------------------------------------

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
"""CIFAR-10 class names, indexed by label."""

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
"""Fashion-MNIST class names, indexed by label."""

CIFAR10_ASYMMETRIC = MappingProxyType({9: 1, 2: 0, 4: 7, 3: 5, 5: 3})
"""The usual CIFAR-10 asymmetric noise: truck -> automobile, bird -> airplane,
deer -> horse, cat -> dog and dog -> cat. The other five classes are never
corrupted."""

FASHION_MNIST_ASYMMETRIC = MappingProxyType({0: 6, 2: 4, 5: 7, 9: 7})
"""Asymmetric noise for Fashion-MNIST, chosen by divweights.

* 0 T-shirt/top -> 6 Shirt: both are short upper-body garments and form the
  pair that Fashion-MNIST classifiers confuse most often.
* 2 Pullover -> 4 Coat: long-sleeved upper-body garments with nearly the
  same silhouette at 28x28 pixels.
* 5 Sandal -> 7 Sneaker and 9 Ankle boot -> 7 Sneaker: the three footwear
  classes are confused with each other; Sneaker is the one in between.

No source class is also a target, so the mapping has no cycles and no
chains: every corrupted label is exactly one step from its clean class,
and Trouser (1), Dress (3), Coat (4), Shirt (6), Sneaker (7) and Bag (8)
are never corrupted (they only receive flipped examples).
"""

ASYMMETRIC_MAPPINGS = MappingProxyType({
    "cifar10": CIFAR10_ASYMMETRIC,
    "fashion-mnist": FASHION_MNIST_ASYMMETRIC,
})
"""Named asymmetric mappings used by :func:`apply_noise`, by dataset."""

CIFAR100_FINE_TO_COARSE = (
    4, 1, 14, 8, 0, 6, 7, 7, 18, 3,
    3, 14, 9, 18, 7, 11, 3, 9, 7, 11,
    6, 11, 5, 10, 7, 6, 13, 15, 3, 15,
    0, 11, 1, 10, 12, 14, 16, 9, 11, 5,
    5, 19, 8, 8, 15, 13, 14, 17, 18, 10,
    16, 4, 17, 4, 2, 0, 17, 4, 18, 17,
    10, 3, 2, 12, 12, 16, 12, 1, 9, 19,
    2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
    16, 19, 2, 4, 6, 19, 5, 5, 8, 19,
    18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
)
"""Coarse (superclass) label of each CIFAR-100 fine label 0..99, using the
dataset's own numbering (fine labels in alphabetical order of their names,
e.g. 0 apple -> 4 fruit_and_vegetables, 99 worm -> 13
non-insect_invertebrates)."""

CIFAR100_COARSE_CLASSES = (
    "aquatic_mammals", "fish", "flowers", "food_containers",
    "fruit_and_vegetables", "household_electrical_devices",
    "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores", "medium_mammals",
    "non-insect_invertebrates", "people", "reptiles", "small_mammals",
    "trees", "vehicles_1", "vehicles_2",
)
"""CIFAR-100 superclass names, indexed by coarse label."""

CIFAR100_SUPERCLASSES = tuple(
    tuple(f for f in range(100) if CIFAR100_FINE_TO_COARSE[f] == c)
    for c in range(20)
)
"""For each coarse label, the five fine labels it contains, in increasing
order."""

CIFAR100_NEXT_IN_SUPERCLASS = MappingProxyType({
    members[i]: members[(i + 1) % len(members)]
    for members in CIFAR100_SUPERCLASSES
    for i in range(len(members))
})
"""The ``"next"`` CIFAR-100 mapping: each fine class goes to the next fine
class of its superclass (ordered by fine label), the last one wrapping
around to the first, so each superclass forms a 5-cycle."""

# Siblings of each fine class: the other four members of its superclass.
_CIFAR100_SIBLINGS = np.array(
    [[g for g in CIFAR100_SUPERCLASSES[CIFAR100_FINE_TO_COARSE[f]] if g != f]
     for f in range(100)],
    dtype=np.int64,
)
_CIFAR100_NEXT = np.array([CIFAR100_NEXT_IN_SUPERCLASS[f] for f in range(100)], dtype=np.int64)

NOISE_KINDS = (
    "none",
    "symmetric",
    "symmetric-uniform",
    "asymmetric",
    "pairflip",
    "cifar100-next",
    "cifar100-random",
    "instance",
)
"""Canonical noise kinds understood by :func:`parse_noise_spec`."""

_KIND_ALIASES = {
    "clean": "none",
    "sym": "symmetric",
    "symmetric-flip": "symmetric",
    "asym": "asymmetric",
    "pair": "pairflip",
    "pair-flip": "pairflip",
    "instance-dependent": "instance",
}

_DATASET_ALIASES = {
    "cifar10": "cifar10",
    "fashionmnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
}

# --------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------


def _as_generator(rng: RNGLike) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, np.random.SeedSequence):
        return np.random.default_rng(rng)
    if isinstance(rng, (bool, np.bool_)) or not isinstance(rng, numbers.Integral):
        raise TypeError(
            "rng must be an int seed or a numpy.random.Generator; "
            f"got {type(rng).__name__}"
        )
    if rng < 0:
        raise ValueError(f"rng seed must be nonnegative; got {rng}")
    return np.random.default_rng(int(rng))


def _check_rate(rate) -> float:
    if isinstance(rate, np.ndarray) and rate.ndim == 0:
        rate = rate.item()
    if isinstance(rate, (bool, np.bool_)) or not isinstance(rate, numbers.Real):
        raise TypeError(f"rate must be a real number in [0, 1]; got {rate!r}")
    value = float(rate)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"rate must lie in [0, 1]; got {value!r}")
    return value


def _check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def _check_num_classes(num_classes, minimum: int, what: str = "") -> int:
    if isinstance(num_classes, (bool, np.bool_)) or not isinstance(
        num_classes, numbers.Integral
    ):
        raise TypeError(f"num_classes must be an int; got {num_classes!r}")
    k = int(num_classes)
    if k < minimum:
        reason = f" for {what}" if what else ""
        raise ValueError(f"num_classes must be at least {minimum}{reason}; got {k}")
    return k


def _check_labels(labels, num_classes: Optional[int] = None):
    """Return ``(labels as int64, dtype for the output)``."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(
            "labels must be a 1-D array of class indices; "
            f"got an array with shape {arr.shape}"
        )
    if arr.size == 0:
        out_dtype = arr.dtype if np.issubdtype(arr.dtype, np.integer) else np.dtype(np.int64)
        return np.zeros(0, dtype=np.int64), out_dtype
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"labels must have an integer dtype; got {arr.dtype}")
    lo, hi = arr.min(), arr.max()
    if lo < 0:
        raise ValueError(f"labels must be nonnegative class indices; found {lo}")
    if num_classes is not None and hi >= num_classes:
        raise ValueError(
            f"labels must lie in [0, num_classes) = [0, {num_classes}); found {hi}"
        )
    return arr.astype(np.int64), arr.dtype


def _finish(clean: np.ndarray, noisy: np.ndarray, out_dtype) -> NoiseResult:
    if noisy.size and np.issubdtype(out_dtype, np.integer):
        top = int(noisy.max())
        if top > np.iinfo(out_dtype).max:
            raise ValueError(
                f"noisy label {top} does not fit in the labels' dtype {out_dtype}; "
                "pass labels with a wider integer dtype"
            )
    return noisy.astype(out_dtype), noisy != clean


def _exact_counts(rate: float, counts):
    """``round(rate * counts)`` with halves rounded up, clipped to ``counts``."""
    counts = np.asarray(counts, dtype=np.int64)
    return np.minimum(np.floor(rate * counts + 0.5).astype(np.int64), counts)


def _select_global(n: int, rate: float, gen: np.random.Generator, exact: bool):
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    if exact:
        m = int(_exact_counts(rate, n))
        mask[gen.choice(n, size=m, replace=False)] = True
    else:
        mask = gen.random(n) < rate
    return mask


def _select_per_class(y, eligible, rate: float, gen: np.random.Generator, exact: bool):
    """Choose examples to corrupt among ``eligible`` ones, class by class."""
    n = y.size
    if n == 0:
        return np.zeros(0, dtype=bool)
    if not exact:
        return eligible & (gen.random(n) < rate)
    mask = np.zeros(n, dtype=bool)
    idx = np.flatnonzero(eligible)
    if idx.size == 0:
        return mask
    cls = y[idx]
    # Random order within each class: sort by class, ties broken by a random key.
    order = np.lexsort((gen.random(idx.size), cls))
    sorted_cls = cls[order]
    counts = np.bincount(cls)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank_in_class = np.arange(idx.size) - starts[sorted_cls]
    quota = _exact_counts(rate, counts)
    mask[idx[order[rank_in_class < quota[sorted_cls]]]] = True
    return mask


def _check_mapping(mapping, num_classes: Optional[int]):
    if not isinstance(mapping, Mapping):
        raise TypeError(
            f"mapping must be a dict from source class to target class; "
            f"got {type(mapping).__name__}"
        )
    src, dst = [], []
    for s, d in mapping.items():
        for value in (s, d):
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
                raise TypeError(
                    f"mapping keys and values must be int class indices; got {s!r}: {d!r}"
                )
            if value < 0 or (num_classes is not None and value >= num_classes):
                bound = "" if num_classes is None else f" < num_classes={num_classes}"
                raise ValueError(
                    f"mapping entry {s!r}: {d!r} is not a valid class pair "
                    f"(classes must be >= 0{bound})"
                )
        if s == d:
            raise ValueError(f"mapping sends class {s} to itself; drop that entry")
        src.append(int(s))
        dst.append(int(d))
    return np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)


def _mapped_noise(y, rate, src, dst, gen, exact):
    """Corrupt ``y`` by the class map ``src -> dst`` (int64 arrays)."""
    size = int(max(y.max(initial=-1), src.max(initial=-1)) + 1)
    table = np.arange(size, dtype=np.int64)
    table[src] = dst
    eligible = np.isin(y, src)
    chosen = _select_per_class(y, eligible, rate, gen, exact)
    noisy = y.copy()
    noisy[chosen] = table[y[chosen]]
    return noisy


# --------------------------------------------------------------------------
# Generators
# --------------------------------------------------------------------------


def symmetric_noise(labels, rate, num_classes, *, rng: RNGLike,
                    variant: str = "flip", exact: bool = True) -> NoiseResult:
    """Symmetric (uniform) label noise.

    Parameters
    ----------
    labels : array_like of int, shape (n,)
        Clean class labels in ``[0, num_classes)``.
    rate : float
        Noise rate in ``[0, 1]``.
    num_classes : int
        Number of classes ``k`` (at least 2 for ``variant="flip"``).
    rng : int or numpy.random.Generator
        Seed or generator.
    variant : {"flip", "uniform"}
        ``"flip"``: a corrupted label moves to a uniformly chosen *different*
        class, so ``rate`` is the fraction of wrong labels.
        ``"uniform"``: a corrupted label is redrawn uniformly from all ``k``
        classes and may come back unchanged, so the expected fraction of
        wrong labels is ``rate * (k - 1) / k``.
    exact : bool
        If True, exactly ``round(rate * n)`` examples (halves rounded up),
        chosen uniformly without replacement, are flipped (``"flip"``) or
        redrawn (``"uniform"``). If False, each example is flipped or redrawn
        independently with probability ``rate``.

    Returns
    -------
    noisy_labels : numpy.ndarray, shape (n,)
        Noisy labels with the dtype of ``labels``.
    flipped_mask : numpy.ndarray of bool, shape (n,)
        ``noisy_labels != labels``.

    Examples
    --------
    >>> import numpy as np
    >>> from divweights.noise import symmetric_noise
    >>> y = np.arange(1000) % 10
    >>> noisy, flipped = symmetric_noise(y, 0.4, 10, rng=0)
    >>> int(flipped.sum())
    400
    >>> bool(np.all((noisy != y) == flipped))
    True
    """
    if variant not in ("flip", "uniform"):
        raise ValueError(f"variant must be 'flip' or 'uniform'; got {variant!r}")
    rate = _check_rate(rate)
    exact = _check_bool(exact, "exact")
    minimum = 2 if variant == "flip" else 1
    k = _check_num_classes(
        num_classes, minimum,
        "symmetric 'flip' noise (a label needs another class to move to)"
        if variant == "flip" else "",
    )
    y, out_dtype = _check_labels(labels, k)
    gen = _as_generator(rng)
    chosen = _select_global(y.size, rate, gen, exact)
    noisy = y.copy()
    m = int(chosen.sum())
    if variant == "flip":
        noisy[chosen] = (y[chosen] + gen.integers(1, k, size=m)) % k
    else:
        noisy[chosen] = gen.integers(0, k, size=m)
    return _finish(y, noisy, out_dtype)


def asymmetric_noise(labels, rate, *, mapping, rng: RNGLike, exact: bool = True,
                     num_classes: Optional[int] = None) -> NoiseResult:
    """Class-mapping (asymmetric) label noise.

    Each example whose class is a key of ``mapping`` is moved to
    ``mapping[class]`` with probability ``rate``; examples of other classes
    are never touched.

    Parameters
    ----------
    labels : array_like of int, shape (n,)
        Clean class labels (nonnegative).
    rate : float
        Flip probability in ``[0, 1]`` for each source class.
    mapping : Mapping[int, int]
        Source class -> target class, e.g. :data:`CIFAR10_ASYMMETRIC` or
        :data:`FASHION_MNIST_ASYMMETRIC`. A class may not map to itself.
    rng : int or numpy.random.Generator
        Seed or generator.
    exact : bool
        If True, exactly ``round(rate * count_c)`` examples (halves rounded
        up) of each source class ``c`` are flipped, chosen uniformly without
        replacement. If False, each flips independently with probability
        ``rate``.
    num_classes : int, optional
        If given, labels and mapping entries are checked to lie in
        ``[0, num_classes)``.

    Returns
    -------
    noisy_labels : numpy.ndarray, shape (n,)
    flipped_mask : numpy.ndarray of bool, shape (n,)

    Examples
    --------
    >>> import numpy as np
    >>> from divweights.noise import asymmetric_noise, CIFAR10_ASYMMETRIC
    >>> y = np.repeat(np.arange(10), 100)
    >>> noisy, flipped = asymmetric_noise(y, 0.4, mapping=CIFAR10_ASYMMETRIC, rng=0)
    >>> int(flipped[y == 9].sum()), sorted(set(noisy[flipped & (y == 9)].tolist()))
    (40, [1])
    >>> int(flipped[y == 0].sum())
    0
    """
    rate = _check_rate(rate)
    exact = _check_bool(exact, "exact")
    if num_classes is not None:
        num_classes = _check_num_classes(num_classes, 1)
    src, dst = _check_mapping(mapping, num_classes)
    y, out_dtype = _check_labels(labels, num_classes)
    gen = _as_generator(rng)
    if y.size == 0:
        return _finish(y, y.copy(), out_dtype)
    noisy = _mapped_noise(y, rate, src, dst, gen, exact)
    return _finish(y, noisy, out_dtype)


def pair_flip_noise(labels, rate, num_classes, *, rng: RNGLike,
                    exact: bool = True) -> NoiseResult:
    """Pair-flip noise: class ``c`` moves to ``(c + 1) mod k``.

    Parameters
    ----------
    labels : array_like of int, shape (n,)
        Clean class labels in ``[0, num_classes)``.
    rate : float
        Flip probability in ``[0, 1]``.
    num_classes : int
        Number of classes ``k >= 2``.
    rng : int or numpy.random.Generator
        Seed or generator.
    exact : bool
        If True, exactly ``round(rate * count_c)`` examples of each class
        ``c`` (halves rounded up) are flipped; if False, each example flips
        independently with probability ``rate``.

    Returns
    -------
    noisy_labels : numpy.ndarray, shape (n,)
    flipped_mask : numpy.ndarray of bool, shape (n,)

    Examples
    --------
    >>> import numpy as np
    >>> from divweights.noise import pair_flip_noise
    >>> y = np.repeat(np.arange(4), 50)
    >>> noisy, flipped = pair_flip_noise(y, 0.2, 4, rng=1)
    >>> int(flipped.sum())
    40
    >>> bool(np.all(noisy[flipped] == (y[flipped] + 1) % 4))
    True
    """
    rate = _check_rate(rate)
    exact = _check_bool(exact, "exact")
    k = _check_num_classes(num_classes, 2, "pair-flip noise")
    y, out_dtype = _check_labels(labels, k)
    gen = _as_generator(rng)
    if y.size == 0:
        return _finish(y, y.copy(), out_dtype)
    src = np.arange(k, dtype=np.int64)
    noisy = _mapped_noise(y, rate, src, (src + 1) % k, gen, exact)
    return _finish(y, noisy, out_dtype)


def cifar100_asymmetric_noise(labels, rate, *, rng: RNGLike, variant: str = "next",
                              exact: bool = True) -> NoiseResult:
    """CIFAR-100 noise that stays inside the 20 superclasses.

    Parameters
    ----------
    labels : array_like of int, shape (n,)
        Clean CIFAR-100 fine labels in ``[0, 100)``.
    rate : float
        Flip probability in ``[0, 1]``.
    rng : int or numpy.random.Generator
        Seed or generator.
    variant : {"next", "random"}
        ``"next"``: a flipped example moves to the next fine class of its
        superclass, ordered by fine label and wrapping around
        (:data:`CIFAR100_NEXT_IN_SUPERCLASS`). ``"random"``: it moves to one
        of the other four classes of its superclass, uniformly at random.
    exact : bool
        If True, exactly ``round(rate * count_c)`` examples of each fine
        class ``c`` are flipped; if False, each flips independently with
        probability ``rate``.

    Returns
    -------
    noisy_labels : numpy.ndarray, shape (n,)
    flipped_mask : numpy.ndarray of bool, shape (n,)

    Examples
    --------
    >>> import numpy as np
    >>> from divweights.noise import cifar100_asymmetric_noise, CIFAR100_FINE_TO_COARSE
    >>> coarse = np.asarray(CIFAR100_FINE_TO_COARSE)
    >>> y = np.repeat(np.arange(100), 10)
    >>> noisy, flipped = cifar100_asymmetric_noise(y, 0.4, rng=0, variant="random")
    >>> int(flipped.sum())
    400
    >>> bool(np.all(coarse[noisy] == coarse[y]))
    True
    """
    if variant not in ("next", "random"):
        raise ValueError(f"variant must be 'next' or 'random'; got {variant!r}")
    rate = _check_rate(rate)
    exact = _check_bool(exact, "exact")
    y, out_dtype = _check_labels(labels, 100)
    gen = _as_generator(rng)
    if y.size == 0:
        return _finish(y, y.copy(), out_dtype)
    chosen = _select_per_class(y, np.ones(y.size, dtype=bool), rate, gen, exact)
    noisy = y.copy()
    if variant == "next":
        noisy[chosen] = _CIFAR100_NEXT[y[chosen]]
    else:
        pick = gen.integers(0, _CIFAR100_SIBLINGS.shape[1], size=int(chosen.sum()))
        noisy[chosen] = _CIFAR100_SIBLINGS[y[chosen], pick]
    return _finish(y, noisy, out_dtype)


def _check_transition_matrix(matrix) -> np.ndarray:
    arr = np.asarray(matrix)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] == 0:
        raise ValueError(
            f"transition matrix must be a non-empty square (k, k) array; got shape {arr.shape}"
        )
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise TypeError(f"transition matrix must be real-valued; got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError("transition matrix contains NaN or infinite entries")
    if arr.min() < 0:
        raise ValueError(
            f"transition matrix entries must be nonnegative probabilities; found {arr.min()!r}"
        )
    row_sums = arr.sum(axis=1)
    if not np.allclose(row_sums, 1.0, rtol=0.0, atol=1e-6):
        bad = int(np.argmax(np.abs(row_sums - 1.0)))
        hint = ""
        if np.allclose(arr.sum(axis=0), 1.0, rtol=0.0, atol=1e-6):
            hint = (" Its columns sum to 1: it looks column-stochastic; "
                    "pass its transpose.")
        raise ValueError(
            "transition matrix rows must each sum to 1 (row convention: "
            f"matrix[i, j] = P(noisy = j | clean = i)); row {bad} sums to "
            f"{row_sums[bad]!r}.{hint}"
        )
    return arr / row_sums[:, None]


def transition_matrix_noise(labels, matrix, *, rng: RNGLike,
                            num_classes: Optional[int] = None) -> NoiseResult:
    """Class-conditional noise drawn from a transition matrix.

    .. important::
       **Row convention.** ``matrix[i, j] = P(noisy = j | clean = i)``:
       row ``i`` is the distribution of the noisy label of a clean class-``i``
       example, so every **row** must sum to 1 (checked with tolerance
       ``1e-6``). A column-stochastic matrix (the transpose convention) is
       rejected.

    Every example's noisy label is drawn independently from the row of its
    clean class (there is no ``exact`` option).

    Parameters
    ----------
    labels : array_like of int, shape (n,)
        Clean class labels in ``[0, k)``.
    matrix : array_like, shape (k, k)
        Row-stochastic, nonnegative transition matrix.
    rng : int or numpy.random.Generator
        Seed or generator.
    num_classes : int, optional
        If given, must equal ``k``.

    Returns
    -------
    noisy_labels : numpy.ndarray, shape (n,)
    flipped_mask : numpy.ndarray of bool, shape (n,)

    See Also
    --------
    noise_transition_matrix : matrices of the standard noise families.

    Examples
    --------
    >>> import numpy as np
    >>> from divweights.noise import transition_matrix_noise
    >>> T = np.array([[0.8, 0.2, 0.0],
    ...               [0.0, 1.0, 0.0],
    ...               [0.0, 0.5, 0.5]])
    >>> y = np.repeat(np.arange(3), 1000)
    >>> noisy, flipped = transition_matrix_noise(y, T, rng=0)
    >>> int(flipped[y == 1].sum()), sorted(set(noisy[y == 0].tolist()))
    (0, [0, 1])
    """
    probs = _check_transition_matrix(matrix)
    k = probs.shape[0]
    if num_classes is not None:
        num_classes = _check_num_classes(num_classes, 1)
        if num_classes != k:
            raise ValueError(
                f"transition matrix is {k}x{k} but num_classes is {num_classes}"
            )
    y, out_dtype = _check_labels(labels, None)
    if y.size and y.max() >= k:
        raise ValueError(
            f"labels must lie in [0, k) = [0, {k}) for a {k}x{k} transition matrix; "
            f"found {y.max()}"
        )
    gen = _as_generator(rng)
    noisy = y.copy()
    if y.size == 0:
        return _finish(y, noisy, out_dtype)
    u = gen.random(y.size)
    cdf = np.cumsum(probs, axis=1)
    cols = np.arange(k)
    for c in np.unique(y):
        where = np.flatnonzero(y == c)
        last_positive = cols[probs[c] > 0].max()
        draw = np.searchsorted(cdf[c], u[where], side="right")
        noisy[where] = np.minimum(draw, last_positive)
    return _finish(y, noisy, out_dtype)


def _canonical_kind(text: str) -> str:
    kind = _KIND_ALIASES.get(text, text)
    if kind not in NOISE_KINDS:
        raise ValueError(
            f"unknown noise kind {text!r}; supported kinds: {', '.join(NOISE_KINDS)}"
        )
    return kind


def noise_transition_matrix(kind: str, num_classes, rate, *,
                            mapping: Optional[Mapping[int, int]] = None) -> np.ndarray:
    """Row-stochastic transition matrix of a standard noise family.

    ``T[i, j] = P(noisy = j | clean = i)`` (row convention, as in
    :func:`transition_matrix_noise`). This is the per-example law of the
    ``exact=False`` generators; with ``exact=True`` it holds up to the
    rounding of the flip counts.

    Parameters
    ----------
    kind : str
        ``"none"``, ``"symmetric"`` (flip to a different class),
        ``"symmetric-uniform"``, ``"pairflip"``, ``"asymmetric"`` (needs
        ``mapping``), ``"cifar100-next"`` or ``"cifar100-random"`` (need
        ``num_classes=100``).
    num_classes : int
        Number of classes ``k``.
    rate : float
        Noise rate in ``[0, 1]``.
    mapping : Mapping[int, int], optional
        Source -> target classes, for ``kind="asymmetric"`` only.

    Returns
    -------
    numpy.ndarray, shape (k, k)
        Float64 matrix whose rows sum to 1.

    Examples
    --------
    >>> from divweights.noise import noise_transition_matrix
    >>> noise_transition_matrix("symmetric", 3, 0.3)
    array([[0.7 , 0.15, 0.15],
           [0.15, 0.7 , 0.15],
           [0.15, 0.15, 0.7 ]])
    >>> noise_transition_matrix("pairflip", 3, 0.25)
    array([[0.75, 0.25, 0.  ],
           [0.  , 0.75, 0.25],
           [0.25, 0.  , 0.75]])
    """
    if not isinstance(kind, str):
        raise TypeError(f"kind must be a str; got {type(kind).__name__}")
    kind = _canonical_kind(kind.strip().lower())
    rate = _check_rate(rate)
    if kind == "instance":
        raise ValueError(
            "instance-dependent noise has no class-level transition matrix; "
            "supported kinds: none, symmetric, symmetric-uniform, pairflip, "
            "asymmetric, cifar100-next, cifar100-random"
        )
    if mapping is not None and kind != "asymmetric":
        raise ValueError(f"mapping is only used with kind='asymmetric', not {kind!r}")
    minimum = 2 if kind in ("symmetric", "pairflip") else 1
    k = _check_num_classes(num_classes, minimum, f"{kind!r} noise")
    eye = np.eye(k)
    if kind == "none":
        return eye
    if kind == "symmetric":
        return (1.0 - rate) * eye + rate / (k - 1) * (1.0 - eye)
    if kind == "symmetric-uniform":
        return (1.0 - rate) * eye + rate / k
    if kind == "pairflip":
        return (1.0 - rate) * eye + rate * np.roll(eye, 1, axis=1)
    if kind == "asymmetric":
        if mapping is None:
            raise ValueError("kind='asymmetric' needs a mapping (source -> target class)")
        src, dst = _check_mapping(mapping, k)
        out = eye.copy()
        out[src, src] = 1.0 - rate
        out[src, dst] = rate
        return out
    if k != 100:
        raise ValueError(f"{kind!r} noise needs num_classes=100; got {k}")
    if kind == "cifar100-next":
        return (1.0 - rate) * eye + rate * eye[_CIFAR100_NEXT]
    # cifar100-random
    out = (1.0 - rate) * eye
    rows = np.repeat(np.arange(100), _CIFAR100_SIBLINGS.shape[1])
    out[rows, _CIFAR100_SIBLINGS.ravel()] = rate / _CIFAR100_SIBLINGS.shape[1]
    return out


def instance_dependent_noise(labels, rate, confusion_scores, *,
                             rng: RNGLike) -> NoiseResult:
    """Instance-dependent noise guided by a clean-trained model.

    ``confusion_scores[i]`` holds a model's class scores for example ``i``;
    the model should have been trained on *clean* labels (the caller trains
    it and computes the scores). Two things are derived from it:

    * **Target.** A flipped example moves to the class with the highest
      score among the classes other than its true one (ties go to the
      lowest class index).
    * **Who flips.** Scores are normalised per row to probabilities ``p``;
      the confusability of example ``i`` is ``1 - p[i, y_i]``, the mass the
      model puts on wrong classes. Exactly ``round(rate * n)`` examples
      (halves rounded up) are drawn *without replacement* with probability
      proportional to their confusability (successive sampling, done with
      Efraimidis-Spirakis keys ``u ** (1 / confusability)``). Hard examples
      therefore flip more often than easy ones, as with real annotators.
      Examples with zero confusability are only chosen if fewer than
      ``round(rate * n)`` examples have positive confusability; then they
      fill the remainder uniformly at random.

    Parameters
    ----------
    labels : array_like of int, shape (n,)
        Clean class labels in ``[0, k)``.
    rate : float
        Fraction of examples to flip, in ``[0, 1]``.
    confusion_scores : array_like, shape (n, k)
        Nonnegative scores, typically softmax probabilities, with ``k >= 2``;
        each row must have a positive sum.
    rng : int or numpy.random.Generator
        Seed or generator.

    Returns
    -------
    noisy_labels : numpy.ndarray, shape (n,)
    flipped_mask : numpy.ndarray of bool, shape (n,)

    Examples
    --------
    >>> import numpy as np
    >>> from divweights.noise import instance_dependent_noise
    >>> y = np.array([0, 0, 1, 1])
    >>> probs = np.array([[0.9, 0.05, 0.05],
    ...                   [0.2, 0.1, 0.7],
    ...                   [0.1, 0.8, 0.1],
    ...                   [0.3, 0.6, 0.1]])
    >>> noisy, flipped = instance_dependent_noise(y, 0.5, probs, rng=0)
    >>> int(flipped.sum())
    2
    >>> targets = np.array([1, 2, 0, 0])  # best wrong class of each row
    >>> bool(np.all(noisy[flipped] == targets[flipped]))
    True
    """
    rate = _check_rate(rate)
    scores = np.asarray(confusion_scores)
    if scores.ndim != 2:
        raise ValueError(
            f"confusion_scores must be a 2-D (n, k) array; got shape {scores.shape}"
        )
    if scores.dtype == np.bool_ or not (
        np.issubdtype(scores.dtype, np.floating) or np.issubdtype(scores.dtype, np.integer)
    ):
        raise TypeError(f"confusion_scores must be real-valued; got dtype {scores.dtype}")
    n, k = scores.shape
    if k < 2:
        raise ValueError(f"confusion_scores needs at least 2 classes (columns); got {k}")
    y, out_dtype = _check_labels(labels, k)
    if y.size != n:
        raise ValueError(
            f"confusion_scores has {n} rows but labels has {y.size} entries"
        )
    scores = scores.astype(np.float64)
    if not np.all(np.isfinite(scores)):
        raise ValueError("confusion_scores contains NaN or infinite entries")
    if n and scores.min() < 0:
        raise ValueError(
            "confusion_scores must be nonnegative (e.g. softmax probabilities, "
            f"not logits); found {scores.min()!r}"
        )
    totals = scores.sum(axis=1)
    if n and totals.min() <= 0:
        raise ValueError(
            f"every row of confusion_scores needs a positive sum; row "
            f"{int(np.argmin(totals))} sums to 0"
        )
    gen = _as_generator(rng)
    noisy = y.copy()
    if n == 0:
        return _finish(y, noisy, out_dtype)
    rows = np.arange(n)
    true_score = scores[rows, y]
    confusability = (totals - true_score) / totals
    others = scores.copy()
    others[rows, y] = -np.inf
    target = np.argmax(others, axis=1)

    m = int(_exact_counts(rate, n))
    positive = np.flatnonzero(confusability > 0)
    if m <= positive.size:
        with np.errstate(divide="ignore"):
            keys = np.log(gen.random(positive.size)) / confusability[positive]
        chosen = positive[np.argsort(-keys, kind="stable")[:m]]
    else:
        zero = np.flatnonzero(confusability <= 0)
        extra = gen.choice(zero, size=m - positive.size, replace=False)
        chosen = np.concatenate([positive, extra])
    noisy[chosen] = target[chosen]
    return _finish(y, noisy, out_dtype)


# --------------------------------------------------------------------------
# Command-line specs
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class NoiseSpec:
    """A parsed noise specification such as ``"symmetric:0.6"``.

    Parameters
    ----------
    kind : str
        One of :data:`NOISE_KINDS`.
    rate : float
        Noise rate in ``[0, 1]``; must be 0 for ``kind="none"``.

    Examples
    --------
    >>> from divweights.noise import NoiseSpec
    >>> spec = NoiseSpec("pairflip", 0.45)
    >>> str(spec)
    'pairflip:0.45'
    """

    kind: str
    rate: float = 0.0

    def __post_init__(self):
        if not isinstance(self.kind, str):
            raise TypeError(f"kind must be a str; got {type(self.kind).__name__}")
        if self.kind not in NOISE_KINDS:
            raise ValueError(
                f"unknown noise kind {self.kind!r}; supported kinds: {', '.join(NOISE_KINDS)}"
            )
        rate = _check_rate(self.rate)
        if self.kind == "none" and rate != 0.0:
            raise ValueError(f"noise kind 'none' must have rate 0; got {rate!r}")
        object.__setattr__(self, "rate", rate)

    def __str__(self) -> str:
        return "none" if self.kind == "none" else f"{self.kind}:{self.rate!r}"


def parse_noise_spec(spec) -> NoiseSpec:
    """Parse a ``"KIND:RATE"`` noise string.

    Kinds (case-insensitive): ``symmetric``, ``symmetric-uniform``,
    ``asymmetric``, ``pairflip``, ``cifar100-next``, ``cifar100-random``,
    ``instance`` and ``none`` (which takes no rate, or rate 0). Aliases:
    ``sym``, ``symmetric-flip``, ``asym``, ``pair``, ``pair-flip``,
    ``instance-dependent``, ``clean``.

    Parameters
    ----------
    spec : str or NoiseSpec
        The string to parse; a ``NoiseSpec`` is returned unchanged.

    Returns
    -------
    NoiseSpec

    Examples
    --------
    >>> from divweights.noise import parse_noise_spec
    >>> parse_noise_spec("symmetric:0.6")
    NoiseSpec(kind='symmetric', rate=0.6)
    >>> parse_noise_spec("none")
    NoiseSpec(kind='none', rate=0.0)
    """
    if isinstance(spec, NoiseSpec):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"noise spec must be a str like 'symmetric:0.4'; got {type(spec).__name__}")
    text = spec.strip().lower()
    if not text:
        raise ValueError("empty noise spec; expected 'KIND:RATE' (e.g. 'symmetric:0.4') or 'none'")
    kind_text, sep, rate_text = text.partition(":")
    kind = _canonical_kind(kind_text.strip())
    rate_text = rate_text.strip()
    if kind == "none" and not sep:
        return NoiseSpec("none", 0.0)
    if not rate_text:
        raise ValueError(
            f"noise spec {spec!r} is missing a rate; expected '{kind}:RATE' "
            f"with RATE in [0, 1], e.g. '{kind}:0.4'"
        )
    try:
        rate = float(rate_text)
    except ValueError:
        raise ValueError(
            f"could not parse rate {rate_text!r} in noise spec {spec!r}; "
            "expected a number in [0, 1]"
        ) from None
    return NoiseSpec(kind, rate)


def _canonical_dataset(dataset) -> str:
    supported = ", ".join(repr(d) for d in ASYMMETRIC_MAPPINGS)
    if dataset is None:
        raise ValueError(
            f"asymmetric noise needs dataset= to pick its class mapping; supported: {supported}"
        )
    if not isinstance(dataset, str):
        raise TypeError(f"dataset must be a str; got {type(dataset).__name__}")
    key = dataset.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    if key in _DATASET_ALIASES:
        return _DATASET_ALIASES[key]
    hint = ""
    if key == "cifar100":
        hint = " For CIFAR-100 use the kinds 'cifar100-next' or 'cifar100-random'."
    raise ValueError(
        f"no asymmetric mapping for dataset {dataset!r}; supported: {supported}.{hint}"
    )


def apply_noise(spec, labels, num_classes, *, rng: RNGLike, dataset: Optional[str] = None,
                confusion_scores=None, exact: bool = True) -> NoiseResult:
    """Apply the noise described by a spec string or :class:`NoiseSpec`.

    Dispatch:

    =============================  ==============================================
    kind                           generator
    =============================  ==============================================
    ``none``                       labels returned unchanged (copied)
    ``symmetric``                  :func:`symmetric_noise`, ``variant="flip"``
    ``symmetric-uniform``          :func:`symmetric_noise`, ``variant="uniform"``
    ``asymmetric``                 :func:`asymmetric_noise` with the mapping of
                                   ``dataset`` (``"cifar10"`` or
                                   ``"fashion-mnist"``)
    ``pairflip``                   :func:`pair_flip_noise`
    ``cifar100-next``/``-random``  :func:`cifar100_asymmetric_noise`
    ``instance``                   :func:`instance_dependent_noise` (needs
                                   ``confusion_scores``; always exact)
    =============================  ==============================================

    Parameters
    ----------
    spec : str or NoiseSpec
        E.g. ``"symmetric:0.6"``; see :func:`parse_noise_spec`.
    labels : array_like of int, shape (n,)
        Clean labels in ``[0, num_classes)``.
    num_classes : int
        Number of classes.
    rng : int or numpy.random.Generator
        Seed or generator.
    dataset : str, optional
        Dataset name; required for ``asymmetric``.
    confusion_scores : array_like, shape (n, num_classes), optional
        Clean-model class probabilities; required for ``instance``.
    exact : bool
        Passed to the generator. ``instance`` noise is always exact, so
        ``exact=False`` is an error for it.

    Returns
    -------
    noisy_labels : numpy.ndarray, shape (n,)
    flipped_mask : numpy.ndarray of bool, shape (n,)

    Examples
    --------
    >>> import numpy as np
    >>> from divweights.noise import apply_noise
    >>> y = np.repeat(np.arange(10), 100)
    >>> noisy, flipped = apply_noise("asymmetric:0.4", y, 10, rng=0, dataset="cifar10")
    >>> int(flipped.sum())
    200
    >>> noisy, flipped = apply_noise("none", y, 10, rng=0)
    >>> bool(flipped.any())
    False
    """
    spec = parse_noise_spec(spec)
    exact = _check_bool(exact, "exact")
    kind, rate = spec.kind, spec.rate
    if kind == "none":
        k = _check_num_classes(num_classes, 1)
        y, out_dtype = _check_labels(labels, k)
        _as_generator(rng)
        return _finish(y, y.copy(), out_dtype)
    if kind in ("symmetric", "symmetric-uniform"):
        variant = "flip" if kind == "symmetric" else "uniform"
        return symmetric_noise(labels, rate, num_classes, rng=rng, variant=variant, exact=exact)
    if kind == "pairflip":
        return pair_flip_noise(labels, rate, num_classes, rng=rng, exact=exact)
    if kind == "asymmetric":
        name = _canonical_dataset(dataset)
        k = _check_num_classes(num_classes, 1)
        if k != 10:
            raise ValueError(f"asymmetric noise for {name!r} needs num_classes=10; got {k}")
        return asymmetric_noise(labels, rate, mapping=ASYMMETRIC_MAPPINGS[name], rng=rng,
                                exact=exact, num_classes=k)
    if kind in ("cifar100-next", "cifar100-random"):
        k = _check_num_classes(num_classes, 1)
        if k != 100:
            raise ValueError(f"{kind!r} noise needs num_classes=100; got {k}")
        variant = kind.split("-", 1)[1]
        return cifar100_asymmetric_noise(labels, rate, rng=rng, variant=variant, exact=exact)
    # instance
    if confusion_scores is None:
        raise ValueError(
            "noise kind 'instance' needs confusion_scores: an (n, num_classes) array of "
            "class probabilities from a model trained on clean labels"
        )
    if not exact:
        raise ValueError(
            "instance-dependent noise always flips exactly round(rate * n) examples; "
            "exact=False is not supported"
        )
    k = _check_num_classes(num_classes, 2, "instance-dependent noise")
    scores = np.asarray(confusion_scores)
    if scores.ndim == 2 and scores.shape[1] != k:
        raise ValueError(
            f"confusion_scores has {scores.shape[1]} columns but num_classes is {k}"
        )
    return instance_dependent_noise(labels, rate, scores, rng=rng)
