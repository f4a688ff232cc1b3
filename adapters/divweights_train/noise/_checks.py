"""Argument checks, selection helpers and docstring parts shared by the noise generators (private)."""

from __future__ import annotations

import numbers
import re
import textwrap
from collections.abc import Mapping

import numpy as np

RNGLike = int | np.integer | np.random.Generator | np.random.SeedSequence | None
"""Accepted types for the ``rng`` argument."""

NoiseResult = tuple[np.ndarray, np.ndarray]

# Docstring sections that every generator shares, written once (see _shared_doc).
_DOC_PARTS = {
    "labels": """
        labels : array_like of int, shape (n,)
            Clean class labels in ``[0, num_classes)``.
    """,
    "rng": """
        rng : int or numpy.random.Generator
            Seed or generator.
    """,
    "returns": """
        Returns
        -------
        noisy_labels : numpy.ndarray, shape (n,)
            New noisy labels with the dtype of ``labels`` (which is not modified).
        flipped_mask : numpy.ndarray of bool, shape (n,)
            ``noisy_labels != labels``.
    """,
}
_DOC_PLACEHOLDER = re.compile(r"^([ \t]*)\{\{(\w+)\}\}[ \t]*$", re.MULTILINE)


def _shared_doc(obj):
    """Replace each docstring line ``{{name}}`` by the shared part ``name``, indented like that line."""
    if obj.__doc__:  # None under python -OO
        obj.__doc__ = _DOC_PLACEHOLDER.sub(
            lambda m: textwrap.indent(textwrap.dedent(_DOC_PARTS[m[2]]).strip("\n"), m[1]), obj.__doc__
        )
    return obj


def _as_generator(rng: RNGLike) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, np.random.SeedSequence):
        return np.random.default_rng(rng)
    if isinstance(rng, (bool, np.bool_)) or not isinstance(rng, numbers.Integral):
        raise TypeError(f"rng must be an int seed or a numpy.random.Generator; got {type(rng).__name__}")
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
    if isinstance(num_classes, (bool, np.bool_)) or not isinstance(num_classes, numbers.Integral):
        raise TypeError(f"num_classes must be an int; got {num_classes!r}")
    k = int(num_classes)
    if k < minimum:
        reason = f" for {what}" if what else ""
        raise ValueError(f"num_classes must be at least {minimum}{reason}; got {k}")
    return k


def _check_labels(labels, num_classes: int | None = None):
    """Return ``(labels as int64, dtype for the output)``."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"labels must be a 1-D array of class indices; got an array with shape {arr.shape}")
    if arr.size == 0:
        out_dtype = arr.dtype if np.issubdtype(arr.dtype, np.integer) else np.dtype(np.int64)
        return np.zeros(0, dtype=np.int64), out_dtype
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"labels must have an integer dtype; got {arr.dtype}")
    lo, hi = arr.min(), arr.max()
    if lo < 0:
        raise ValueError(f"labels must be nonnegative class indices; found {lo}")
    if num_classes is not None and hi >= num_classes:
        raise ValueError(f"labels must lie in [0, num_classes) = [0, {num_classes}); found {hi}")
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


def _check_mapping(mapping, num_classes: int | None):
    if not isinstance(mapping, Mapping):
        raise TypeError(f"mapping must be a dict from source class to target class; got {type(mapping).__name__}")
    src, dst = [], []
    for s, d in mapping.items():
        for value in (s, d):
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
                raise TypeError(f"mapping keys and values must be int class indices; got {s!r}: {d!r}")
            if value < 0 or (num_classes is not None and value >= num_classes):
                bound = "" if num_classes is None else f" < num_classes={num_classes}"
                raise ValueError(f"mapping entry {s!r}: {d!r} is not a valid class pair (classes must be >= 0{bound})")
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
