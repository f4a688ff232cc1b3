"""Fashion-MNIST from its idx files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .base import ArrayDataset, DatasetNotFoundError
from .idx import IdxFormatError, read_idx

__all__ = ["DEFAULT_FASHION_MNIST_DIR", "FASHION_MNIST_MEAN", "FASHION_MNIST_STD", "load_fashion_mnist"]

FASHION_MNIST_MEAN: tuple[float, ...] = (0.2860,)
FASHION_MNIST_STD: tuple[float, ...] = (0.3530,)

#: Where the ``dataset-fashion-mnist`` system package installs the idx files.
DEFAULT_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


_FMNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _fashion_mnist_instructions(searched: Sequence[Path]) -> str:
    where = ", ".join(str(p) for p in searched)
    return (
        f"Fashion-MNIST idx files not found (looked in: {where}). "
        "Install them with `sudo apt-get install dataset-fashion-mnist` "
        f"(which puts them in {DEFAULT_FASHION_MNIST_DIR}), or pass --data-dir "
        "pointing at a folder holding train-images-idx3-ubyte(.gz), "
        "train-labels-idx1-ubyte(.gz), t10k-images-idx3-ubyte(.gz) and "
        "t10k-labels-idx1-ubyte(.gz)."
    )


def _find_idx(base: str, folders: Sequence[Path]) -> Path | None:
    for folder in folders:
        for candidate in (folder / (base + ".gz"), folder / base):
            if candidate.is_file():
                return candidate
    return None


def load_fashion_mnist(data_dir: str | os.PathLike | None = None, split: str = "train") -> ArrayDataset:
    """Load Fashion-MNIST from its idx files.

    Parameters
    ----------
    data_dir : str or path-like, optional
        Folder holding the idx files (gzipped ``.gz`` or raw). Sub-folders
        ``fashion-mnist/`` and ``FashionMNIST/raw/`` are also searched.
        Defaults to :data:`DEFAULT_FASHION_MNIST_DIR`.
    split : {"train", "test"}
        ``"train"`` has 60000 images, ``"test"`` (the ``t10k`` files) 10000.

    Returns
    -------
    ArrayDataset
        ``x`` of shape ``(N, 1, 28, 28)`` in ``[0, 1]``, 10 classes.

    Raises
    ------
    DatasetNotFoundError
        When the files are missing; the message says how to install them.
    IdxFormatError
        When a file is malformed or images and labels disagree.

    Examples
    --------
    >>> try:
    ...     n_test = len(load_fashion_mnist(split="test"))
    ... except DatasetNotFoundError as err:  # not installed on this machine
    ...     n_test = 10000
    >>> n_test
    10000
    """
    if split not in _FMNIST_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    base = Path(data_dir) if data_dir is not None else DEFAULT_FASHION_MNIST_DIR
    folders = [base, base / "fashion-mnist", base / "FashionMNIST" / "raw"]
    image_name, label_name = _FMNIST_FILES[split]
    image_path = _find_idx(image_name, folders)
    label_path = _find_idx(label_name, folders)
    if image_path is None or label_path is None:
        raise DatasetNotFoundError(_fashion_mnist_instructions(folders))
    images = read_idx(image_path)
    labels = read_idx(label_path)
    if images.ndim != 3 or labels.ndim != 1:
        raise IdxFormatError(
            f"expected images (N, H, W) and labels (N,), got {images.shape} from "
            f"{image_path} and {labels.shape} from {label_path}"
        )
    if images.shape[0] != labels.shape[0]:
        raise IdxFormatError(
            f"{image_path} holds {images.shape[0]} images but {label_path} holds {labels.shape[0]} labels"
        )
    if images.dtype != np.uint8:
        raise IdxFormatError(f"{image_path}: images must be unsigned bytes (idx type 0x08), got {images.dtype}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise IdxFormatError(f"{label_path}: labels must be integers, got {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise IdxFormatError(f"{label_path}: labels outside 0..9 (range [{labels.min()}, {labels.max()}])")
    x = images.astype(np.float32)[:, None, :, :]
    x /= 255.0
    return ArrayDataset(
        x=x,
        y=labels.astype(np.int64),
        num_classes=10,
        name="fashion-mnist",
        mean=FASHION_MNIST_MEAN,
        std=FASHION_MNIST_STD,
    )
