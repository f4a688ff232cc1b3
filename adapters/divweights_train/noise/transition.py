"""Class-conditional noise from a transition matrix, and the matrices of the standard families."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ._checks import (
    NoiseResult,
    RNGLike,
    _as_generator,
    _check_labels,
    _check_mapping,
    _check_num_classes,
    _check_rate,
    _finish,
    _shared_doc,
)
from .class_maps import _CIFAR100_NEXT, _CIFAR100_SIBLINGS
from .spec import _canonical_kind

__all__ = ["noise_transition_matrix", "transition_matrix_noise"]


def _check_transition_matrix(matrix) -> np.ndarray:
    arr = np.asarray(matrix)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] == 0:
        raise ValueError(f"transition matrix must be a non-empty square (k, k) array; got shape {arr.shape}")
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"transition matrix must be real-valued; got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError("transition matrix contains NaN or infinite entries")
    if arr.min() < 0:
        raise ValueError(f"transition matrix entries must be nonnegative probabilities; found {arr.min()!r}")
    row_sums = arr.sum(axis=1)
    if not np.allclose(row_sums, 1.0, rtol=0.0, atol=1e-6):
        bad = int(np.argmax(np.abs(row_sums - 1.0)))
        hint = ""
        if np.allclose(arr.sum(axis=0), 1.0, rtol=0.0, atol=1e-6):
            hint = " Its columns sum to 1: it looks column-stochastic; pass its transpose."
        raise ValueError(
            "transition matrix rows must each sum to 1 (row convention: "
            f"matrix[i, j] = P(noisy = j | clean = i)); row {bad} sums to "
            f"{row_sums[bad]!r}.{hint}"
        )
    return arr / row_sums[:, None]


@_shared_doc
def transition_matrix_noise(labels, matrix, *, rng: RNGLike, num_classes: int | None = None) -> NoiseResult:
    """Class-conditional noise drawn from a transition matrix.

    .. important::
       **Row convention.** ``matrix[i, j] = P(noisy = j | clean = i)``:
       row ``i`` is the distribution of the noisy label of a clean class-``i``
       example, so every **row** must sum to 1 (checked with tolerance
       ``1e-6``). A column-stochastic matrix (the transpose convention) is
       rejected.

    Every example's noisy label is drawn independently from the row of its
    clean class (there is no ``exact`` option).

    Parameters
    ----------
    labels : array_like of int, shape (n,)
        Clean class labels in ``[0, k)``.
    matrix : array_like, shape (k, k)
        Row-stochastic, nonnegative transition matrix.
    {{rng}}
    num_classes : int, optional
        If given, must equal ``k``.

    {{returns}}

    See Also
    --------
    noise_transition_matrix : matrices of the standard noise families.

    Examples
    --------
    >>> import numpy as np
    >>> from divweights_train.noise import transition_matrix_noise
    >>> T = np.array([[0.8, 0.2, 0.0],
    ...               [0.0, 1.0, 0.0],
    ...               [0.0, 0.5, 0.5]])
    >>> y = np.repeat(np.arange(3), 1000)
    >>> noisy, flipped = transition_matrix_noise(y, T, rng=0)
    >>> int(flipped[y == 1].sum()), sorted(set(noisy[y == 0].tolist()))
    (0, [0, 1])
    """
    probs = _check_transition_matrix(matrix)
    k = probs.shape[0]
    if num_classes is not None:
        num_classes = _check_num_classes(num_classes, 1)
        if num_classes != k:
            raise ValueError(f"transition matrix is {k}x{k} but num_classes is {num_classes}")
    y, out_dtype = _check_labels(labels, None)
    if y.size and y.max() >= k:
        raise ValueError(f"labels must lie in [0, k) = [0, {k}) for a {k}x{k} transition matrix; found {y.max()}")
    gen = _as_generator(rng)
    noisy = y.copy()
    if y.size == 0:
        return _finish(y, noisy, out_dtype)
    u = gen.random(y.size)
    cdf = np.cumsum(probs, axis=1)
    cols = np.arange(k)
    for c in np.unique(y):
        where = np.flatnonzero(y == c)
        last_positive = cols[probs[c] > 0].max()
        draw = np.searchsorted(cdf[c], u[where], side="right")
        noisy[where] = np.minimum(draw, last_positive)
    return _finish(y, noisy, out_dtype)


def noise_transition_matrix(kind: str, num_classes, rate, *, mapping: Mapping[int, int] | None = None) -> np.ndarray:
    """Row-stochastic transition matrix of a standard noise family.

    ``T[i, j] = P(noisy = j | clean = i)`` (row convention, as in
    :func:`transition_matrix_noise`). This is the per-example law of the
    ``exact=False`` generators; with ``exact=True`` it holds up to the
    rounding of the flip counts.

    Parameters
    ----------
    kind : str
        ``"none"``, ``"symmetric"`` (flip to a different class),
        ``"symmetric-uniform"``, ``"pairflip"``, ``"asymmetric"`` (needs
        ``mapping``), ``"cifar100-next"`` or ``"cifar100-random"`` (need
        ``num_classes=100``).
    num_classes : int
        Number of classes ``k``.
    rate : float
        Noise rate in ``[0, 1]``.
    mapping : Mapping[int, int], optional
        Source -> target classes, for ``kind="asymmetric"`` only.

    Returns
    -------
    numpy.ndarray, shape (k, k)
        Float64 matrix whose rows sum to 1.

    Examples
    --------
    >>> from divweights_train.noise import noise_transition_matrix
    >>> noise_transition_matrix("symmetric", 3, 0.3)
    array([[0.7 , 0.15, 0.15],
           [0.15, 0.7 , 0.15],
           [0.15, 0.15, 0.7 ]])
    >>> noise_transition_matrix("pairflip", 3, 0.25)
    array([[0.75, 0.25, 0.  ],
           [0.  , 0.75, 0.25],
           [0.25, 0.  , 0.75]])
    """
    if not isinstance(kind, str):
        raise TypeError(f"kind must be a str; got {type(kind).__name__}")
    kind = _canonical_kind(kind.strip().lower())
    rate = _check_rate(rate)
    if kind == "instance":
        raise ValueError(
            "instance-dependent noise has no class-level transition matrix; "
            "supported kinds: none, symmetric, symmetric-uniform, pairflip, "
            "asymmetric, cifar100-next, cifar100-random"
        )
    if mapping is not None and kind != "asymmetric":
        raise ValueError(f"mapping is only used with kind='asymmetric', not {kind!r}")
    minimum = 2 if kind in ("symmetric", "pairflip") else 1
    k = _check_num_classes(num_classes, minimum, f"{kind!r} noise")
    eye = np.eye(k)
    if kind == "none":
        return eye
    if kind == "symmetric":
        return (1.0 - rate) * eye + rate / (k - 1) * (1.0 - eye)
    if kind == "symmetric-uniform":
        return (1.0 - rate) * eye + rate / k
    if kind == "pairflip":
        return (1.0 - rate) * eye + rate * np.roll(eye, 1, axis=1)
    if kind == "asymmetric":
        if mapping is None:
            raise ValueError("kind='asymmetric' needs a mapping (source -> target class)")
        src, dst = _check_mapping(mapping, k)
        out = eye.copy()
        out[src, src] = 1.0 - rate
        out[src, dst] = rate
        return out
    if k != 100:
        raise ValueError(f"{kind!r} noise needs num_classes=100; got {k}")
    if kind == "cifar100-next":
        return (1.0 - rate) * eye + rate * eye[_CIFAR100_NEXT]
    # cifar100-random
    out = (1.0 - rate) * eye
    rows = np.repeat(np.arange(100), _CIFAR100_SIBLINGS.shape[1])
    out[rows, _CIFAR100_SIBLINGS.ravel()] = rate / _CIFAR100_SIBLINGS.shape[1]
    return out
