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

Layout
------
NumPy only; no deep-learning framework is imported.

* :mod:`~divweights_train.noise.generators` -- the generators above except
  the transition-matrix one;
* :mod:`~divweights_train.noise.transition` -- :func:`transition_matrix_noise`
  and :func:`noise_transition_matrix`;
* :mod:`~divweights_train.noise.class_maps` -- class names and class maps
  (CIFAR-10, Fashion-MNIST, CIFAR-100 superclasses);
* :mod:`~divweights_train.noise.spec` -- :class:`NoiseSpec`,
  :func:`parse_noise_spec` and :func:`apply_noise`.

Through divweights 0.1.0 these lived in the core as ``divweights.noise``;
that path remains as a deprecated alias for one release.
"""

from . import class_maps, generators, spec, transition
from ._checks import RNGLike
from .class_maps import *
from .generators import *
from .spec import *
from .transition import *

# The public names of each room, as its own __all__ lists them.
__all__ = ["RNGLike"]
__all__ += class_maps.__all__ + generators.__all__ + spec.__all__ + transition.__all__
