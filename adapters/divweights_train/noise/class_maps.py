"""Class names and class maps of the datasets the noise models know.

Plain data (tuples and read-only mappings), NumPy only: the class names of
CIFAR-10 and Fashion-MNIST, the asymmetric (class-mapping) noise of both, and
the CIFAR-100 superclass structure used by
:func:`~divweights_train.noise.cifar100_asymmetric_noise`.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

__all__ = [
    "ASYMMETRIC_MAPPINGS",
    "CIFAR10_ASYMMETRIC",
    "CIFAR10_CLASSES",
    "CIFAR100_COARSE_CLASSES",
    "CIFAR100_FINE_TO_COARSE",
    "CIFAR100_NEXT_IN_SUPERCLASS",
    "CIFAR100_SUPERCLASSES",
    "FASHION_MNIST_ASYMMETRIC",
    "FASHION_MNIST_CLASSES",
]

# fmt: off
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
# fmt: on

CIFAR100_SUPERCLASSES = tuple(tuple(f for f in range(100) if CIFAR100_FINE_TO_COARSE[f] == c) for c in range(20))
"""For each coarse label, the five fine labels it contains, in increasing
order."""

CIFAR100_NEXT_IN_SUPERCLASS = MappingProxyType(
    {members[i]: members[(i + 1) % len(members)] for members in CIFAR100_SUPERCLASSES for i in range(len(members))}
)
"""The ``"next"`` CIFAR-100 mapping: each fine class goes to the next fine
class of its superclass (ordered by fine label), the last one wrapping
around to the first, so each superclass forms a 5-cycle."""

# Siblings of each fine class: the other four members of its superclass.
_CIFAR100_SIBLINGS = np.array(
    [[g for g in CIFAR100_SUPERCLASSES[CIFAR100_FINE_TO_COARSE[f]] if g != f] for f in range(100)],
    dtype=np.int64,
)
_CIFAR100_NEXT = np.array([CIFAR100_NEXT_IN_SUPERCLASS[f] for f in range(100)], dtype=np.int64)
