"""Input checks shared by the public functions: one array library per call,
no autograd history, eager value checks that are skipped under tracing."""

from __future__ import annotations

import math
import sys

import array_api_compat

from ._array import is_concrete

__all__ = ["check_values", "detach", "integer_targets", "library", "same_library"]


def detach(x):
    """``x`` without autograd history: ``detach()`` for torch, ``stop_gradient``
    for JAX, unchanged otherwise (Python numbers, NumPy, CuPy, ...).

    The weights are constants of the training objective (Danskin's theorem),
    so the public functions compute them from detached inputs."""
    np = sys.modules.get("numpy")
    if np is not None and type(x) is np.ndarray:  # the NumPy case in one check (the general ones cost microseconds)
        return x
    if array_api_compat.is_torch_array(x):
        return x.detach()
    if array_api_compat.is_jax_array(x):
        return sys.modules["jax"].lax.stop_gradient(x)
    return x


def library(x) -> str:
    """Short name of the array library of ``x``, for messages (``numpy``, ``torch``, ``jax`` ...)."""
    module = type(x).__module__.split(".")[0]
    return {"jaxlib": "jax", "builtins": type(x).__name__}.get(module, module)


def same_library(xp, x, name: str, reference, reference_name: str):
    """Return ``x`` as an array of namespace ``xp``, the namespace of ``reference``.

    Arrays of another library are refused with a message naming both (the
    array-API functions of one library do not accept another's arrays, and a
    silent conversion could copy between devices).  One exception: NumPy
    arrays with JAX, which JAX itself accepts everywhere (host constants),
    are converted with ``xp.asarray``.
    """
    if type(x) is type(reference) and array_api_compat.is_numpy_array(x):  # the common NumPy case, cheaply
        return x
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(f"{name} must be an array; got {type(x).__name__}")
    try:
        ns = array_api_compat.array_namespace(x)
    except TypeError:
        ns = None
    if ns is xp:
        return x
    if array_api_compat.is_jax_namespace(xp) and array_api_compat.is_numpy_array(x):
        return xp.asarray(x)
    ref_lib, lib = library(reference), library(x)
    raise TypeError(
        f"{reference_name} is a {ref_lib} array but {name} is a {lib} array: one call cannot mix array "
        f"libraries; convert {name} to {ref_lib} (for example with {ref_lib}.asarray) before the call"
    )


def check_values(xp, x, name: str, *, nonnegative: bool = True, hot: bool = False) -> None:
    """Refuse NaN, infinite (and, with ``nonnegative``, negative) entries of ``x``
    when its values can be read eagerly (host memory, not traced); a no-op otherwise.

    ``hot=True`` marks a per-training-step helper: torch tensors are then never
    read (the torch adapter's step makes no host reads, a promise its tests
    count), so only NumPy-like and concrete JAX arrays are checked."""
    if hot and array_api_compat.is_torch_array(x):
        return
    if not is_concrete(x) or math.prod(x.shape) == 0:
        return
    nan = xp.any(xp.isnan(x))
    if not is_concrete(nan):  # a constant inside a jit trace: its reductions are staged
        return
    if bool(nan):
        raise ValueError(f"{name} must not contain NaN")
    if bool(xp.any(xp.isinf(x))):
        raise ValueError(f"{name} must be finite; got an infinite entry")
    if nonnegative and bool(xp.any(x < 0)):
        raise ValueError(f"{name} must be >= 0; got a negative entry (min {float(xp.min(x))!r})")


def integer_targets(xp, targets, class_losses) -> bool:
    """Whether ``targets`` are integer labels (``True``) or probability rows (``False``).

    Integer labels must have shape ``class_losses.shape[:-1]``, probabilities
    the shape of ``class_losses``; ``bool`` targets are refused.  Values are
    not checked here."""
    shape = tuple(class_losses.shape)
    if xp.isdtype(targets.dtype, "integral"):
        if tuple(targets.shape) != shape[:-1]:
            raise ValueError(
                f"integer targets must have shape class_losses.shape[:-1] = {shape[:-1]}; got {tuple(targets.shape)}"
            )
        return True
    if xp.isdtype(targets.dtype, "bool"):
        raise TypeError("targets must be integer labels or floating probabilities, not bool")
    if tuple(targets.shape) != shape:
        raise ValueError(f"probability targets must have the shape of class_losses {shape}; got {tuple(targets.shape)}")
    return False
