"""Shared fixtures: a backend enum over the array libraries divweights supports.

``backend.call(fn, *arrays, **kwargs)`` converts NumPy inputs to the backend,
calls ``fn`` (under ``jax.jit`` for the JAX backend, with ``kwargs`` closed
over), checks that the result is in the backend's namespace, and returns it.
``backend.to_numpy`` brings results back for comparison.
"""

from __future__ import annotations

import enum
import os

import numpy as np
import pytest

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

try:  # optional backends
    import torch
except ImportError:  # pragma: no cover
    torch = None
try:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
except ImportError:  # pragma: no cover
    jax = jnp = None
try:
    import array_api_strict
except ImportError:  # pragma: no cover
    array_api_strict = None


class Backend(enum.Enum):
    NUMPY = "numpy"
    ARRAY_API_STRICT = "array_api_strict"
    TORCH = "torch"
    JAX_JIT = "jax_jit"

    @property
    def available(self) -> bool:
        return {
            Backend.NUMPY: True,
            Backend.ARRAY_API_STRICT: array_api_strict is not None,
            Backend.TORCH: torch is not None,
            Backend.JAX_JIT: jax is not None,
        }[self]

    def dtype(self, name: str):
        if self is Backend.NUMPY:
            return np.dtype(name)
        if self is Backend.ARRAY_API_STRICT:
            return getattr(array_api_strict, name)
        if self is Backend.TORCH:
            return getattr(torch, name)
        return getattr(jnp, name)

    def asarray(self, x, dtype=None):
        x = np.asarray(x)
        if dtype is None:
            dtype = x.dtype.name
        if self is Backend.NUMPY:
            return x.astype(dtype)
        if self is Backend.ARRAY_API_STRICT:
            return array_api_strict.asarray(x.astype(dtype) if dtype != "bfloat16" else x)
        if self is Backend.TORCH:
            if dtype == "bfloat16":
                return torch.asarray(x.astype("float32")).to(torch.bfloat16)
            return torch.asarray(x.astype(dtype))
        if dtype == "bfloat16":
            return jnp.asarray(x.astype("float32")).astype(jnp.bfloat16)
        return jnp.asarray(x.astype(dtype))

    def to_numpy(self, y):
        if self is Backend.TORCH:
            if y.dtype == torch.bfloat16:
                y = y.float()
            return y.detach().cpu().numpy()
        if self is Backend.ARRAY_API_STRICT:
            return np.asarray(y._array)
        if self is Backend.JAX_JIT and y.dtype == jnp.bfloat16:
            y = y.astype(jnp.float32)
        return np.asarray(y)

    def call(self, fn, *args, **kwargs):
        """Call ``fn``; for JAX under ``jax.jit`` with the array arguments traced
        and everything else (divergences, keyword hyperparameters) static."""
        if self is not Backend.JAX_JIT:
            return fn(*args, **kwargs)
        slots = [i for i, a in enumerate(args) if hasattr(a, "shape")]

        def traced(*arrays):
            full = list(args)
            for i, a in zip(slots, arrays):
                full[i] = a
            return fn(*full, **kwargs)

        return jax.jit(traced)(*[args[i] for i in slots])

    def is_namespace_of(self, y) -> bool:
        if self is Backend.NUMPY:
            return isinstance(y, np.ndarray)
        if self is Backend.ARRAY_API_STRICT:
            return type(y).__module__.startswith("array_api_strict")
        if self is Backend.TORCH:
            return isinstance(y, torch.Tensor)
        return isinstance(y, jax.Array)


def pytest_configure(config):
    # The deprecated aliases divweights.noise and divweights.reference must not be used by the test suite
    # itself: importing them is an error here, except inside the one test per alias that checks the warning
    # (pytest.warns records it).
    config.addinivalue_line("filterwarnings", r"error:divweights\.(noise|reference) is deprecated:DeprecationWarning")


@pytest.fixture(params=[b for b in Backend], ids=lambda b: b.value)
def backend(request) -> Backend:
    b = request.param
    if not b.available:
        pytest.skip(f"{b.value} is not installed")
    return b


@pytest.fixture
def rng():
    return np.random.default_rng(20211109)
