"""Writers of fake dataset files for the tests (formerly ``divweights_train.datasets.write_*``).

:func:`write_idx` writes an array in the idx format of (Fashion-)MNIST and
:func:`write_cifar_like` a tiny CIFAR-10/100 folder in the exact python-pickle
layout of the official files, so that the readers in
:mod:`divweights_train.datasets` can be tested without downloads.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
from divweights_train.datasets.base import _as_rng
from divweights_train.datasets.cifar import _CIFAR, _normalise_cifar_name
from divweights_train.datasets.idx import _IDX_CODES

__all__ = ["write_cifar_like", "write_idx"]


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` in the idx format; gzip it when ``path`` ends in ``.gz``.

    Parameters
    ----------
    path : str or path-like
        Destination file.
    array : numpy.ndarray
        Array of dtype uint8, int8, int16, int32, float32 or float64 with at
        least one dimension.

    Returns
    -------
    pathlib.Path
        The written path.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from divweights_train.datasets import read_idx
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = write_idx(os.path.join(d, "x-idx1-ubyte"), np.array([7, 8], np.uint8))
    ...     print(read_idx(p).tolist())
    [7, 8]
    """
    path = Path(path)
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _IDX_CODES:
        raise TypeError(f"dtype {array.dtype} cannot be stored in the idx format")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError("idx arrays need between 1 and 255 dimensions")
    header = bytes([0, 0, _IDX_CODES[native], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=native.newbyteorder(">")).tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as fh:
        fh.write(payload)
    return path


def write_cifar_like(
    directory: str | os.PathLike,
    name: str = "cifar10",
    num_train: int = 50,
    num_test: int = 10,
    rng=None,
) -> Path:
    """Write a tiny fake CIFAR dataset in the exact python-pickle layout.

    Meant for tests and smoke runs: random ``uint8`` images, labels cycling
    through all classes (so every class is present when there are enough
    examples), dictionaries with ``bytes`` keys pickled with protocol 2 as in
    the official files.

    Parameters
    ----------
    directory : str or path-like
        Parent folder; ``cifar-10-batches-py/`` or ``cifar-100-python/`` is
        created inside it.
    name : {"cifar10", "cifar100"}
        Which layout to write.
    num_train, num_test : int
        Number of training and test images. For CIFAR-10 the training images
        are spread over the five ``data_batch_*`` files.
    rng : numpy.random.Generator or int
        Source of randomness for images and label order.

    Returns
    -------
    pathlib.Path
        The created dataset folder.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     folder = write_cifar_like(d, "cifar100", 20, 5, rng=0)
    ...     print(sorted(p.name for p in folder.iterdir()))
    ['meta', 'test', 'train']
    """
    key = _normalise_cifar_name(name)
    if rng is None:
        raise TypeError("write_cifar_like needs an explicit rng (Generator or int seed)")
    rng = _as_rng(rng)
    if num_train < 0 or num_test < 0:
        raise ValueError("num_train and num_test must be non-negative")
    spec = _CIFAR[key]
    folder = Path(directory) / spec["folder"]
    folder.mkdir(parents=True, exist_ok=True)

    def fake(n, num_classes):
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = rng.permutation(np.arange(n) % num_classes).tolist()
        return data, [int(v) for v in labels]

    def dump(path, obj):
        with open(path, "wb") as fh:
            pickle.dump(obj, fh, protocol=2)

    if key == "cifar10":
        chunks = np.array_split(np.arange(num_train), 5)
        for i, chunk in enumerate(chunks, start=1):
            data, labels = fake(len(chunk), 10)
            dump(
                folder / f"data_batch_{i}",
                {
                    b"batch_label": f"training batch {i} of 5".encode(),
                    b"labels": labels,
                    b"data": data,
                    b"filenames": [f"img_{i}_{j}.png".encode() for j in range(len(chunk))],
                },
            )
        data, labels = fake(num_test, 10)
        dump(
            folder / "test_batch",
            {
                b"batch_label": b"testing batch 1 of 1",
                b"labels": labels,
                b"data": data,
                b"filenames": [f"test_{j}.png".encode() for j in range(num_test)],
            },
        )
        dump(
            folder / "batches.meta",
            {
                b"num_cases_per_batch": max((len(c) for c in chunks), default=0),
                b"label_names": [f"class_{c}".encode() for c in range(10)],
                b"num_vis": 3072,
            },
        )
    else:
        for split, n in (("train", num_train), ("test", num_test)):
            data, fine = fake(n, 100)
            coarse = [f // 5 for f in fine]
            dump(
                folder / split,
                {
                    b"filenames": [f"{split}_{j}.png".encode() for j in range(n)],
                    b"batch_label": f"{split}ing batch 1 of 1".encode(),
                    b"fine_labels": fine,
                    b"coarse_labels": coarse,
                    b"data": data,
                },
            )
        dump(
            folder / "meta",
            {
                b"fine_label_names": [f"fine_{c}".encode() for c in range(100)],
                b"coarse_label_names": [f"coarse_{c}".encode() for c in range(20)],
            },
        )
    return folder
