"""The dataset container :class:`ArrayDataset`, the dataset errors and the seed helper."""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["ArrayDataset", "DatasetFormatError", "DatasetNotFoundError"]


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files could not be found; the message says how to get them."""


class DatasetFormatError(ValueError):
    """A dataset file exists but holds something else than the format promises; the message names the file."""


def _as_rng(rng) -> np.random.Generator:
    """Return a NumPy Generator from a Generator or an integer seed."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy.random.Generator or an integer seed, got {type(rng).__name__}")


# --------------------------------------------------------------------------- #
# The dataset container.
# --------------------------------------------------------------------------- #
@dataclasses.dataclass(frozen=True, eq=False)
class ArrayDataset:
    """An in-memory labelled dataset held as NumPy arrays.

    Parameters
    ----------
    x : numpy.ndarray
        Inputs, ``float32``: images ``(N, C, H, W)`` in ``[0, 1]`` or tabular
        features ``(N, D)``.
    y : numpy.ndarray
        Integer class labels ``(N,)`` (stored as ``int64``) in
        ``[0, num_classes)``.
    num_classes : int
        Number of classes.
    name : str
        Short dataset name, e.g. ``"fashion-mnist"``.
    mean, std : tuple of float
        Per-channel (images) or per-feature (tabular) normalisation constants.
        Empty tuples mean "no normalisation".
    class_names : tuple of str
        Name of each class, indexed by label, when known (user image
        folders); empty otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> ds = ArrayDataset(np.zeros((4, 2), np.float32), np.array([0, 1, 1, 0]), 2, "toy")
    >>> len(ds), ds.input_shape, ds.y.dtype
    (4, (2,), dtype('int64'))
    """

    x: np.ndarray
    y: np.ndarray
    num_classes: int
    name: str
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    class_names: tuple[str, ...] = ()

    def __post_init__(self):
        x = np.asarray(self.x)
        y = np.asarray(self.y)
        if x.ndim not in (2, 4):
            raise ValueError(f"x must have shape (N, D) or (N, C, H, W), got shape {x.shape}")
        if y.ndim != 1:
            raise ValueError(f"y must be one-dimensional, got shape {y.shape}")
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"x and y disagree on the number of examples: {x.shape[0]} != {y.shape[0]}")
        if y.size and not np.issubdtype(y.dtype, np.integer):
            raise TypeError(f"y must hold integer labels, got dtype {y.dtype}")
        num_classes = int(self.num_classes)
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {self.num_classes}")
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(f"labels must lie in [0, {num_classes}), got range [{y.min()}, {y.max()}]")
        mean = tuple(float(m) for m in self.mean)
        std = tuple(float(s) for s in self.std)
        if len(mean) != len(std):
            raise ValueError("mean and std must have the same length")
        if any(s <= 0 for s in std):
            raise ValueError("std entries must be positive")
        object.__setattr__(self, "x", x.astype(np.float32, copy=False))
        object.__setattr__(self, "y", y.astype(np.int64, copy=False))
        object.__setattr__(self, "num_classes", num_classes)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)
        class_names = tuple(str(c) for c in self.class_names)
        if class_names and len(class_names) != num_classes:
            raise ValueError(f"class_names has {len(class_names)} entries for {num_classes} classes")
        object.__setattr__(self, "class_names", class_names)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, without the leading example axis."""
        return tuple(int(d) for d in self.x.shape[1:])

    @property
    def is_image(self) -> bool:
        """Whether the inputs are images ``(N, C, H, W)``."""
        return self.x.ndim == 4

    def with_labels(self, y: np.ndarray) -> ArrayDataset:
        """Return a copy that shares ``x`` but carries the labels ``y``.

        Examples
        --------
        >>> import numpy as np
        >>> ds = ArrayDataset(np.zeros((2, 1), np.float32), np.array([0, 1]), 2, "toy")
        >>> ds.with_labels(np.array([1, 1])).y.tolist()
        [1, 1]
        """
        return dataclasses.replace(self, y=np.asarray(y))

    def class_counts(self) -> np.ndarray:
        """Number of examples of each class, shape ``(num_classes,)``."""
        return np.bincount(self.y, minlength=self.num_classes)
