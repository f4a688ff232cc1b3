"""Training / validation splits and (stratified) subsets."""

from __future__ import annotations

import dataclasses

import numpy as np

from .base import ArrayDataset, _as_rng

__all__ = ["stratified_subset", "subset", "train_val_split"]


def train_val_split(n: int, val_fraction: float, *, rng) -> tuple[np.ndarray, np.ndarray]:
    """Randomly split ``range(n)`` into training and validation indices.

    Parameters
    ----------
    n : int
        Number of examples.
    val_fraction : float
        Fraction in ``[0, 1)`` put in the validation part (rounded to the
        nearest count).
    rng : numpy.random.Generator or int
        Source of randomness.

    Returns
    -------
    train_idx, val_idx : numpy.ndarray
        Disjoint sorted ``int64`` index arrays covering ``range(n)``.

    Examples
    --------
    >>> tr, va = train_val_split(10, 0.2, rng=0)
    >>> len(tr), len(va), sorted(set(tr) | set(va)) == list(range(10))
    (8, 2, True)
    """
    rng = _as_rng(rng)
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    val_fraction = float(val_fraction)
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in [0, 1), got {val_fraction}")
    n_val = round(n * val_fraction)
    perm = rng.permutation(n)
    return np.sort(perm[n_val:]).astype(np.int64), np.sort(perm[:n_val]).astype(np.int64)


def subset(ds: ArrayDataset, indices) -> ArrayDataset:
    """Return the examples of ``ds`` at ``indices`` (same metadata).

    Examples
    --------
    >>> import numpy as np
    >>> ds = ArrayDataset(np.arange(6, dtype=np.float32).reshape(3, 2), np.array([0, 1, 0]), 2, "toy")
    >>> subset(ds, [2, 0]).x.tolist()
    [[4.0, 5.0], [0.0, 1.0]]
    """
    idx = np.asarray(indices)
    if idx.dtype == bool:
        raise TypeError("indices must be integers, not a boolean mask (use np.flatnonzero)")
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise TypeError("indices must be a one-dimensional integer array")
    return dataclasses.replace(ds, x=ds.x[idx], y=ds.y[idx])


def stratified_subset(y, size: int, *, rng, num_classes: int | None = None) -> np.ndarray:
    """Pick ``size`` indices with class counts as equal as possible.

    Every class gets ``size // k`` examples (``k`` = number of classes
    present); the remainder goes to randomly chosen classes. A class with too
    few examples contributes all it has and the shortfall is shared among
    the others.

    Parameters
    ----------
    y : array_like of int
        Labels, shape ``(N,)``.
    size : int
        Number of indices to pick, at most ``N``.
    rng : numpy.random.Generator or int
        Source of randomness.
    num_classes : int, optional
        Number of classes (defaults to ``max(y) + 1``).

    Returns
    -------
    numpy.ndarray
        Sorted ``int64`` indices into ``y``.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.repeat(np.arange(3), [50, 30, 20])
    >>> idx = stratified_subset(y, 30, rng=0)
    >>> np.bincount(y[idx]).tolist()
    [10, 10, 10]
    """
    rng = _as_rng(rng)
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be one-dimensional, got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"y must hold integer labels, got dtype {y.dtype}")
    if y.size and y.min() < 0:
        raise ValueError("labels must be non-negative")
    size = int(size)
    if not 0 <= size <= y.shape[0]:
        raise ValueError(f"size must lie in [0, {y.shape[0]}], got {size}")
    k = int(num_classes) if num_classes is not None else (int(y.max()) + 1 if y.size else 0)
    available = np.bincount(y, minlength=k).astype(np.int64)
    alloc = np.zeros_like(available)
    remaining = size
    while remaining > 0:
        capacity = available - alloc
        active = np.flatnonzero(capacity > 0)
        per = remaining // active.size
        if per == 0:
            chosen = rng.choice(active, size=remaining, replace=False)
            alloc[chosen] += 1
            break
        add = np.minimum(per, capacity[active])
        alloc[active] += add
        remaining -= int(add.sum())
    picked = [rng.choice(np.flatnonzero(y == c), size=int(alloc[c]), replace=False) for c in range(k) if alloc[c] > 0]
    if not picked:
        return np.zeros(0, dtype=np.int64)
    return np.sort(np.concatenate(picked)).astype(np.int64)
