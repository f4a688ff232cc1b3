"""divweights: closed-form divergence-constrained instance and class weights for learning with noisy labels.

The core is written once against the Python array API standard: the same call
works on NumPy, PyTorch, JAX (also under ``jax.jit``), CuPy and
array-api-strict arrays, and returns an array of the input's namespace, dtype
and device.
"""

from . import divergences
from ._api import class_weights, instance_weights, reweighted_class_losses
from .adaptive import noise_radius, noise_rate, track_noise_rate
from .divergences import *  # KL, ReverseKL, Alpha, ChiSquared, TotalVariation, SquaredL2, Divergence
from .strength import Strength

__version__ = "0.1.0"

__all__ = [
    "Strength",
    "class_weights",
    "instance_weights",
    "noise_radius",
    "noise_rate",
    "reweighted_class_losses",
    "track_noise_rate",
]
__all__ += divergences.__all__
