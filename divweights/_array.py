"""Array-API plumbing shared by every solver.

Everything here is written against the Python array API standard through
``array_api_compat``; no array library is imported at import time.  The
helpers keep three promises made by the public functions:

* outputs live in the input's namespace and on its device;
* integer inputs are promoted to the namespace's default floating dtype;
* half-precision inputs (``float16``, ``bfloat16``) are computed in
  ``float32`` and cast back at the end.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import sys
from dataclasses import dataclass
from typing import Any

import array_api_compat

__all__ = [
    "Work",
    "check_scalar",
    "clip",
    "is_concrete",
    "is_eager_numpy",
    "logsumexp",
    "normalised_exp",
    "prepare",
    "quiet",
    "safe_log",
    "scalar",
    "softmax_or",
    "uniform_on_minimisers",
]


@dataclass(frozen=True)
class Work:
    """Context of one computation: namespace, device and dtypes."""

    xp: Any
    device: Any
    dtype: Any  # working (compute) dtype
    out_dtype: Any  # dtype returned to the caller
    #: the row minima of the (working) losses, ``(..., 1)``, when the caller has them already
    #: (eager NumPy: :func:`divweights.instance_weights` reads them for its row checks, and
    #: the solvers then save a pass over the data); ``None`` otherwise
    row_min: Any = None

    @property
    def finfo(self):
        return self.xp.finfo(self.dtype)

    @property
    def polish(self) -> int:
        """Newton steps after the grid stage of the root finders (see :mod:`divweights._root`)."""
        return 3 if self.finfo.bits >= 64 else 1

    def const(self, value) -> Any:
        # xp.full launches a fill on the device; xp.asarray(python_float, device=gpu)
        # would be a blocking host-to-device copy
        if getattr(self.xp, "__name__", None) == "array_api_compat.numpy":  # host memory: convert (cheaper)
            return sys.modules["numpy"].asarray(value, dtype=self.dtype)
        return self.xp.full((), value, dtype=self.dtype, device=self.device)

    def finish(self, x):
        xp = self.xp
        if x.dtype != self.out_dtype:
            x = xp.astype(x, self.out_dtype)
        return x


def _is_half(xp, dtype) -> bool:
    try:
        return xp.finfo(dtype).bits <= 16
    except (TypeError, ValueError):  # pragma: no cover - exotic dtypes
        return False


def prepare(x, name: str, *, min_ndim: int = 1, xp=None):
    """Validate ``x`` and return ``(x_in_working_dtype, Work)``.

    Integer and boolean arrays are promoted to the namespace's default real
    floating dtype; half precision is computed in float32.
    """
    np = sys.modules.get("numpy")
    if xp is None and np is not None and type(x) is np.ndarray and x.ndim >= min_ndim:
        # the common NumPy case without the general detection (a few microseconds a call)
        if x.dtype == np.float64 or x.dtype == np.float32:
            from array_api_compat import numpy as xp_numpy

            return x, Work(xp=xp_numpy, device="cpu", dtype=x.dtype, out_dtype=x.dtype)
    if xp is None:
        try:
            xp = array_api_compat.array_namespace(x)
        except TypeError as exc:
            raise TypeError(
                f"{name} must be an array of a library supported by array-api-compat "
                f"(numpy, torch, jax, cupy, array-api-strict, ...); got {type(x).__name__}"
            ) from exc
    if x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s); got shape {tuple(x.shape)}")
    device = array_api_compat.device(x)
    dtype = x.dtype
    if xp.isdtype(dtype, "real floating"):
        out_dtype = dtype
        work_dtype = xp.float32 if _is_half(xp, dtype) else dtype
    elif xp.isdtype(dtype, ("integral", "bool")):
        info = xp.__array_namespace_info__()
        out_dtype = work_dtype = info.default_dtypes(device=device)["real floating"]
    else:
        raise TypeError(f"{name} must be real-valued (floating, integer or bool); got dtype {dtype}")
    if x.dtype != work_dtype:
        x = xp.astype(x, work_dtype)
    return x, Work(xp=xp, device=device, dtype=work_dtype, out_dtype=out_dtype)


@contextlib.contextmanager
def quiet(xp):
    """Silence NumPy's floating-point warnings: the solvers produce and mask
    infinities on purpose (``log(0)``, ``0 * inf`` in discarded branches)."""
    if array_api_compat.is_numpy_namespace(xp) or array_api_compat.is_array_api_strict_namespace(xp):
        import numpy as np

        with np.errstate(all="ignore"):
            yield
    else:
        yield


def is_concrete(x) -> bool:
    """True when ``x``'s values can be inspected eagerly and cheaply: not a jit
    tracer (``jax.jit``, ``torch.compile``), and in host memory (reading a GPU
    value would synchronise the device on every training step, so value checks
    are skipped there)."""
    if array_api_compat.is_jax_array(x):
        jax = sys.modules["jax"]  # imported, since x is a jax array
        if isinstance(x, jax.core.Tracer):
            return False
    elif array_api_compat.is_torch_array(x):
        compiler = getattr(sys.modules["torch"], "compiler", None)
        if compiler is not None and compiler.is_compiling():  # traced by torch.compile: no values
            return False
    else:
        try:
            if array_api_compat.is_lazy_array(x):
                return False
        except Exception:  # pragma: no cover
            return False
    try:
        device = array_api_compat.device(x)
    except Exception:  # pragma: no cover
        return True
    name = str(getattr(device, "platform", getattr(device, "type", device))).lower()
    return "cpu" in name or name in ("", "none")


def check_scalar(name: str, value, *, positive: bool, allow_inf: bool = True) -> None:
    """Validate a hyperparameter when its value is known eagerly.

    Python numbers and concrete 0-d arrays are checked; traced values (for
    example under ``jax.jit``) pass through unchecked.
    """
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a real number, not bool")
    if isinstance(value, numbers.Real):
        v = float(value)
    else:
        shape = getattr(value, "shape", None)
        if shape is None:
            raise TypeError(f"{name} must be a real number or a 0-d array; got {type(value).__name__}")
        if tuple(shape) != ():
            raise ValueError(f"{name} must be a scalar (0-d); got shape {tuple(shape)}")
        if not is_concrete(value):
            return
        try:
            v = float(value)
        except Exception:  # pragma: no cover - traced by a framework we do not know
            return
    if math.isnan(v):
        raise ValueError(f"{name} must not be NaN")
    if not allow_inf and v == float("inf"):
        raise ValueError(f"{name} must be finite; got inf")
    if positive and not v > 0:
        raise ValueError(f"{name} must be > 0; got {v!r}")
    if not positive and not v >= 0:
        raise ValueError(f"{name} must be >= 0; got {v!r}")


def scalar(work: Work, value):
    """``value`` (Python number or 0-d array) as a 0-d array of the working dtype,
    clipped to the largest finite value so that ``inf`` hyperparameters mean
    "as large as representable"."""
    xp = work.xp
    if isinstance(value, numbers.Real):
        v = float(value)
        big = float(work.finfo.max)
        return work.const(min(v, big))
    v = xp.asarray(value)
    v = xp.astype(v, work.dtype)
    if array_api_compat.device(v) != work.device:
        v = xp.asarray(v, device=work.device)  # pragma: no cover - cross-device scalars
    return xp.minimum(v, work.const(float(work.finfo.max)))


def _is_torch(xp) -> bool:
    """Whether ``xp`` is torch's array namespace, by its module name: array-api-compat's
    ``is_torch_namespace`` is ``lru_cache``-wrapped, and ``torch.compile`` warns each time it
    traces such a function (the helpers below run inside users' compiled steps)."""
    return getattr(xp, "__name__", None) in ("array_api_compat.torch", "torch")


def logsumexp(xp, x, *, axis: int = -1, keepdims: bool = True):
    """Stable ``log(sum(exp(x)))``; all ``-inf`` gives ``-inf``.  Torch takes its fused
    ``logsumexp`` (one kernel, with the same infinities)."""
    if _is_torch(xp):
        return sys.modules["torch"].logsumexp(x, dim=axis, keepdim=keepdims)
    m = xp.max(x, axis=axis, keepdims=True)
    # an infinite maximum becomes the largest finite number (one clip, where a test of
    # finiteness and a selection are 6 operations on torch): x - m is then -inf, 0 or +inf
    # as it should be, never inf - inf, and the result is the same infinity
    big = float(xp.finfo(x.dtype).max)
    m = clip(xp, m, min=-big, max=big)
    out = xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True)) + m
    if not keepdims:
        out = xp.squeeze(out, axis=axis)
    return out


def softmax_or(xp, logits, fallback_logits, *, axis: int = -1):
    """Softmax along ``axis``; rows whose logits are all ``-inf`` use
    ``fallback_logits`` instead (the limit the caller defines), never 0/0."""
    m = xp.max(logits, axis=axis, keepdims=True)
    dead = xp.isinf(m) & (m < 0)
    logits = xp.where(dead, fallback_logits, logits)
    m = xp.max(logits, axis=axis, keepdims=True)
    e = xp.exp(logits - m)
    return e / xp.sum(e, axis=axis, keepdims=True)


def normalised_exp(xp, t):
    """``exp(t) / sum(exp(t))`` along the last axis.  ``t`` is consumed: NumPy
    reuses its memory (no second array of the row's size), other libraries
    allocate as usual; torch takes its fused ``softmax`` (which also subtracts
    the row maximum: the same weights, to rounding)."""
    if is_eager_numpy(xp, t):
        import numpy as np

        np.exp(t, out=t)
        t /= np.sum(t, axis=-1, keepdims=True)
        return t
    if _is_torch(xp):  # one fused kernel, where exp, sum and divide are three
        return sys.modules["torch"].softmax(t, dim=-1)
    e = xp.exp(t)
    return e / xp.sum(e, axis=-1, keepdims=True)


def safe_log(xp, x):
    """``log(x)`` for ``x >= 0`` with ``log(0) = -inf``, without evaluating ``log(0)``
    (no warning, and no infinite gradient inside a discarded branch under JAX)."""
    pos = x > 0
    return xp.where(pos, xp.log(xp.where(pos, x, xp.ones_like(x))), xp.full_like(x, -float("inf")))


def uniform_on_minimisers(xp, x):
    """Uniform distribution over the minimisers of ``x`` along the last axis
    (the strong-reweighting limit of every instance and class problem)."""
    m = xp.astype(x == xp.min(x, axis=-1, keepdims=True), x.dtype)
    return m / xp.sum(m, axis=-1, keepdims=True)


def is_eager_numpy(xp, x) -> bool:
    """True for NumPy arrays: eager host code, where iterating until converged
    costs no device synchronisation and nothing is traced."""
    np = sys.modules.get("numpy")
    if np is not None and type(x) is np.ndarray:  # the common case in one check
        return array_api_compat.is_numpy_namespace(xp)
    return array_api_compat.is_numpy_namespace(xp) and array_api_compat.is_numpy_array(x)


def where(xp, cond, a, b):
    """``xp.where(cond, a, b)``; under JAX a single ``select`` (``jnp.where`` nests a jit around it:
    one or two jaxpr equations more per call, which issue 10's equation budget counts).  The JAX path
    takes arrays of one dtype or Python scalars (converted to that dtype); anything else goes to
    ``xp.where``."""
    if not array_api_compat.is_jax_namespace(xp) or not hasattr(cond, "shape"):
        return xp.where(cond, a, b)
    arrays = [v for v in (a, b) if hasattr(v, "dtype")]
    if not arrays or any(v.dtype != arrays[0].dtype for v in arrays):
        return xp.where(cond, a, b)
    lax = sys.modules["jax"].lax  # loaded: xp is JAX's namespace (the core imports no framework)
    a, b = (v if hasattr(v, "dtype") else xp.asarray(v, dtype=arrays[0].dtype) for v in (a, b))
    shape = xp.broadcast_shapes(cond.shape, a.shape, b.shape)

    def full(v):
        if v.shape == shape:
            return v
        return lax.broadcast_in_dim(v, shape, tuple(range(len(shape) - v.ndim, len(shape))))

    return lax.select(full(cond), full(a), full(b))


def clip(xp, x, min=None, max=None):
    """``xp.clip(x, min=min, max=max)``; NumPy arrays call ``np.clip`` directly (the
    array-API wrapper costs several microseconds a call, which small batches feel)."""
    if is_eager_numpy(xp, x):
        import numpy as np

        return np.clip(x, min, max)
    if array_api_compat.is_jax_namespace(xp):
        # jnp.clip traces to a nested jit with two dtype conversions (5 jaxpr equations); maximum and
        # minimum with the bounds in x's dtype are 2, in the same order (a bound above the other gives max)
        for bound, op in ((min, xp.maximum), (max, xp.minimum)):
            if bound is not None:
                if hasattr(bound, "dtype") and bound.dtype != x.dtype:
                    bound = xp.astype(bound, x.dtype)
                x = op(x, bound)
        return x
    return xp.clip(x, min=min, max=max)
