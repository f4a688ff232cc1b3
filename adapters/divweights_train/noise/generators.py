"""The label-noise generators: symmetric, asymmetric, pair-flip, CIFAR-100 and instance-dependent.

Each takes clean integer labels and returns ``(noisy_labels, flipped_mask)``;
see :mod:`divweights_train.noise` for the conventions shared by all of them.
"""

from __future__ import annotations

import numpy as np

from ._checks import (
    NoiseResult,
    RNGLike,
    _as_generator,
    _check_bool,
    _check_labels,
    _check_mapping,
    _check_num_classes,
    _check_rate,
    _exact_counts,
    _finish,
    _mapped_noise,
    _select_global,
    _select_per_class,
    _shared_doc,
)
from .class_maps import _CIFAR100_NEXT, _CIFAR100_SIBLINGS

__all__ = [
    "asymmetric_noise",
    "cifar100_asymmetric_noise",
    "instance_dependent_noise",
    "pair_flip_noise",
    "symmetric_noise",
]


@_shared_doc
def symmetric_noise(
    labels, rate, num_classes, *, rng: RNGLike, variant: str = "flip", exact: bool = True
) -> NoiseResult:
    """Symmetric (uniform) label noise.

    Parameters
    ----------
    {{labels}}
    rate : float
        Noise rate in ``[0, 1]``: the fraction of examples corrupted (see
        ``variant`` for how many of them end up with a wrong label).
    num_classes : int
        Number of classes ``k``: at least 2 for ``variant="flip"`` (a label
        needs another class to move to), at least 1 for ``"uniform"``.
    {{rng}}
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

    {{returns}}

    Examples
    --------
    >>> import numpy as np
    >>> from divweights_train.noise import symmetric_noise
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
        num_classes,
        minimum,
        "symmetric 'flip' noise (a label needs another class to move to)" if variant == "flip" else "",
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


@_shared_doc
def asymmetric_noise(
    labels, rate, *, mapping, rng: RNGLike, exact: bool = True, num_classes: int | None = None
) -> NoiseResult:
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
    {{rng}}
    exact : bool
        If True, exactly ``round(rate * count_c)`` examples (halves rounded
        up) of each source class ``c`` are flipped, chosen uniformly without
        replacement. If False, each flips independently with probability
        ``rate``.
    num_classes : int, optional
        If given, labels and mapping entries are checked to lie in
        ``[0, num_classes)``.

    {{returns}}

    Examples
    --------
    >>> import numpy as np
    >>> from divweights_train.noise import asymmetric_noise, CIFAR10_ASYMMETRIC
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


@_shared_doc
def pair_flip_noise(labels, rate, num_classes, *, rng: RNGLike, exact: bool = True) -> NoiseResult:
    """Pair-flip noise: class ``c`` moves to ``(c + 1) mod k``.

    Parameters
    ----------
    {{labels}}
    rate : float
        Flip probability in ``[0, 1]``.
    num_classes : int
        Number of classes ``k >= 2``.
    {{rng}}
    exact : bool
        If True, exactly ``round(rate * count_c)`` examples of each class
        ``c`` (halves rounded up) are flipped; if False, each example flips
        independently with probability ``rate``.

    {{returns}}

    Examples
    --------
    >>> from divweights_train.noise import pair_flip_noise
    >>> labels = [0, 1, 2, 3] * 50
    >>> noisy, flipped = pair_flip_noise(labels, 0.2, 4, rng=1)
    >>> int(flipped.sum())  # 20 % of each class
    40
    >>> sorted({(a, b) for a, b in zip(labels, noisy.tolist()) if a != b})  # c -> (c + 1) mod 4
    [(0, 1), (1, 2), (2, 3), (3, 0)]
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


@_shared_doc
def cifar100_asymmetric_noise(labels, rate, *, rng: RNGLike, variant: str = "next", exact: bool = True) -> NoiseResult:
    """CIFAR-100 noise that stays inside the 20 superclasses.

    Parameters
    ----------
    labels : array_like of int, shape (n,)
        Clean CIFAR-100 fine labels in ``[0, 100)``.
    rate : float
        Flip probability in ``[0, 1]``.
    {{rng}}
    variant : {"next", "random"}
        ``"next"``: a flipped example moves to the next fine class of its
        superclass, ordered by fine label and wrapping around
        (:data:`CIFAR100_NEXT_IN_SUPERCLASS`). ``"random"``: it moves to one
        of the other four classes of its superclass, uniformly at random.
    exact : bool
        If True, exactly ``round(rate * count_c)`` examples of each fine
        class ``c`` are flipped; if False, each flips independently with
        probability ``rate``.

    {{returns}}

    Examples
    --------
    >>> import numpy as np
    >>> from divweights_train.noise import cifar100_asymmetric_noise, CIFAR100_FINE_TO_COARSE
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


@_shared_doc
def instance_dependent_noise(labels, rate, confusion_scores, *, rng: RNGLike) -> NoiseResult:
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
    {{rng}}

    {{returns}}

    Examples
    --------
    >>> import numpy as np
    >>> from divweights_train.noise import instance_dependent_noise
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
        raise ValueError(f"confusion_scores must be a 2-D (n, k) array; got shape {scores.shape}")
    if scores.dtype == np.bool_ or not (
        np.issubdtype(scores.dtype, np.floating) or np.issubdtype(scores.dtype, np.integer)
    ):
        raise TypeError(f"confusion_scores must be real-valued; got dtype {scores.dtype}")
    n, k = scores.shape
    if k < 2:
        raise ValueError(f"confusion_scores needs at least 2 classes (columns); got {k}")
    y, out_dtype = _check_labels(labels, k)
    if y.size != n:
        raise ValueError(f"confusion_scores has {n} rows but labels has {y.size} entries")
    scores = scores.astype(np.float64)
    if not np.all(np.isfinite(scores)):
        raise ValueError("confusion_scores contains NaN or infinite entries")
    if n and scores.min() < 0:
        raise ValueError(
            f"confusion_scores must be nonnegative (e.g. softmax probabilities, not logits); found {scores.min()!r}"
        )
    totals = scores.sum(axis=1)
    if n and totals.min() <= 0:
        raise ValueError(f"every row of confusion_scores needs a positive sum; row {int(np.argmin(totals))} sums to 0")
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
