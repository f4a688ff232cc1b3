"""Deprecated alias of :mod:`divweights_train.noise` (removed in the next release).

The label-noise models are not part of the weights, so they moved out of the
core package into the training program, split by concern:
:mod:`divweights_train.noise` (generators, class maps, ``"KIND:RATE"``
specs). Import them from there::

    from divweights_train.noise import symmetric_noise, apply_noise

Importing this module emits a :class:`DeprecationWarning`.

Layering
--------
The core (:mod:`divweights`) never imports the training program at import
time: ``import divweights`` does not load this module, and importing this
module does not load :mod:`divweights_train` either. A name is fetched from
:mod:`divweights_train.noise` only when it is first looked up here (a
module-level ``__getattr__``). That lazy look-up is the only edge from the
core to the training program, it exists only on this deprecated path, and it
goes away with this file. (Both packages ship in the same distribution, so
the look-up always succeeds where :mod:`divweights` is installed.)
"""

from __future__ import annotations

import importlib
import warnings

_NEW_HOME = "divweights_train.noise"

# The public names of divweights_train.noise (checked equal by the test suite).
_PUBLIC = (
    "RNGLike",
    "NoiseSpec",
    "NOISE_KINDS",
    "NOISE_KIND_ALIASES",
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
)
__all__ = list(_PUBLIC)

warnings.warn(
    "divweights.noise is deprecated and will be removed in the next release; "
    f"import the label-noise models from {_NEW_HOME} instead",
    DeprecationWarning,
    stacklevel=2,
)


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_NEW_HOME), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}; the label-noise models moved to {_NEW_HOME}")


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
