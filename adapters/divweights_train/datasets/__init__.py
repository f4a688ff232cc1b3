"""Offline dataset readers and small array utilities for the training program.

Everything here uses NumPy only (no torch import), so data loading can be
tested and reused without a deep-learning framework.  Images are returned as
``float32`` arrays of shape ``(N, C, H, W)`` scaled to ``[0, 1]``; tabular data
as ``(N, D)``.  Labels are ``int64``.

Readers
-------
* :func:`load_fashion_mnist` -- the idx files of Fashion-MNIST (gzipped or raw).
* :func:`load_cifar` -- the "python version" pickle batches of CIFAR-10/100.
* :func:`load_digits_dataset` -- scikit-learn's bundled 8x8 digits.
* :func:`make_two_moons` -- synthetic two-moons points with clean labels.
* :func:`load_user_dataset` -- the user's own data: a ``.npz`` file with
  arrays ``x`` and ``y``, or a folder of class-named image folders.

A missing dataset raises :class:`DatasetNotFoundError` (a
:class:`FileNotFoundError`) whose message says how to obtain the files; a file
that exists but holds something else raises :class:`DatasetFormatError` (a
:class:`ValueError`) naming the file. No reader changes a label: label noise
is added separately (:mod:`divweights_train.noise`).

Layout
------
One module per concern, all names re-exported here:
:mod:`~divweights_train.datasets.base` (:class:`ArrayDataset`, the errors),
:mod:`~divweights_train.datasets.idx` (the idx format),
:mod:`~divweights_train.datasets.fashion_mnist`,
:mod:`~divweights_train.datasets.cifar` (with the restricted unpickler),
:mod:`~divweights_train.datasets.synthetic` (two-moons, digits),
:mod:`~divweights_train.datasets.user` (``.npz`` files and image folders) and
:mod:`~divweights_train.datasets.splits` (train/validation splits, subsets).
The writers of fake idx and CIFAR files that earlier versions exported
(``write_idx``, ``write_cifar_like``) served only the tests and live there now.
"""

from .base import ArrayDataset, DatasetFormatError, DatasetNotFoundError
from .cifar import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD, load_cifar
from .fashion_mnist import (
    DEFAULT_FASHION_MNIST_DIR,
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    load_fashion_mnist,
)
from .idx import IdxFormatError, read_idx
from .splits import stratified_subset, subset, train_val_split
from .synthetic import load_digits_dataset, make_two_moons
from .user import (
    IMAGE_EXTENSIONS,
    is_user_dataset,
    load_user_dataset,
    user_dataset_has_test_split,
)

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "DEFAULT_FASHION_MNIST_DIR",
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "IMAGE_EXTENSIONS",
    "ArrayDataset",
    "DatasetFormatError",
    "DatasetNotFoundError",
    "IdxFormatError",
    "is_user_dataset",
    "load_cifar",
    "load_digits_dataset",
    "load_fashion_mnist",
    "load_user_dataset",
    "make_two_moons",
    "read_idx",
    "stratified_subset",
    "subset",
    "train_val_split",
    "user_dataset_has_test_split",
]

_MOVED_TO_TESTS = ("write_idx", "write_cifar_like")


def __getattr__(name: str):
    if name in _MOVED_TO_TESTS:
        raise AttributeError(
            f"divweights_train.datasets.{name} was a test helper and moved to the test suite "
            f"(tests/_writers.py); copy it from there if you need fake dataset files"
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
