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

A missing dataset raises :class:`DatasetNotFoundError` (a
:class:`FileNotFoundError`) whose message says how to obtain the files.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import pickle
import shutil
import struct
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "ArrayDataset",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "DatasetNotFoundError",
    "DEFAULT_FASHION_MNIST_DIR",
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "IdxFormatError",
    "load_cifar",
    "load_digits_dataset",
    "load_fashion_mnist",
    "make_two_moons",
    "read_idx",
    "stratified_subset",
    "subset",
    "train_val_split",
    "write_cifar_like",
    "write_idx",
]

# --------------------------------------------------------------------------- #
# Normalisation constants (per channel, for images scaled to [0, 1]).
# --------------------------------------------------------------------------- #
CIFAR10_MEAN: tuple[float, ...] = (0.4914, 0.4822, 0.4465)
CIFAR10_STD: tuple[float, ...] = (0.2023, 0.1994, 0.2010)
CIFAR100_MEAN: tuple[float, ...] = (0.5071, 0.4865, 0.4409)
CIFAR100_STD: tuple[float, ...] = (0.2673, 0.2564, 0.2762)
FASHION_MNIST_MEAN: tuple[float, ...] = (0.2860,)
FASHION_MNIST_STD: tuple[float, ...] = (0.3530,)

#: Where the ``dataset-fashion-mnist`` system package installs the idx files.
DEFAULT_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files could not be found; the message says how to get them."""


class IdxFormatError(ValueError):
    """An idx file is malformed (bad magic number, bad header or truncated)."""


def _as_rng(rng) -> np.random.Generator:
    """Return a NumPy Generator from a Generator or an integer seed."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(
        "rng must be a numpy.random.Generator or an integer seed, "
        f"got {type(rng).__name__}"
    )


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

    def __post_init__(self):
        x = np.asarray(self.x)
        y = np.asarray(self.y)
        if x.ndim not in (2, 4):
            raise ValueError(
                f"x must have shape (N, D) or (N, C, H, W), got shape {x.shape}"
            )
        if y.ndim != 1:
            raise ValueError(f"y must be one-dimensional, got shape {y.shape}")
        if x.shape[0] != y.shape[0]:
            raise ValueError(
                f"x and y disagree on the number of examples: {x.shape[0]} != {y.shape[0]}"
            )
        if y.size and not np.issubdtype(y.dtype, np.integer):
            raise TypeError(f"y must hold integer labels, got dtype {y.dtype}")
        num_classes = int(self.num_classes)
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {self.num_classes}")
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(
                f"labels must lie in [0, {num_classes}), got range [{y.min()}, {y.max()}]"
            )
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

    def with_labels(self, y: np.ndarray) -> "ArrayDataset":
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


# --------------------------------------------------------------------------- #
# idx format (MNIST / Fashion-MNIST).
# --------------------------------------------------------------------------- #
# Third byte of the magic number -> big-endian element type.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dt.newbyteorder("="): code for code, dt in _IDX_DTYPES.items()}


def _open_maybe_gzip(path: Path):
    with open(path, "rb") as fh:
        head = fh.read(2)
    if head == b"\x1f\x8b":  # gzip magic, whatever the file suffix
        return gzip.open(path, "rb")
    return open(path, "rb")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an array stored in the idx format (gzipped or raw).

    The idx header is a 4-byte magic number ``0x00 0x00 <type> <ndim>``
    followed by ``ndim`` big-endian ``uint32`` sizes and then the data in
    big-endian, row-major order.

    Parameters
    ----------
    path : str or path-like
        The file; gzip compression is detected from the content.

    Returns
    -------
    numpy.ndarray
        The array in native byte order with the shape from the header.

    Raises
    ------
    IdxFormatError
        On a bad magic number, an unknown element type, a truncated file or
        trailing bytes after the data.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = write_idx(os.path.join(d, "a-idx2-ubyte.gz"), np.arange(6, dtype=np.uint8).reshape(2, 3))
    ...     print(read_idx(p).tolist())
    [[0, 1, 2], [3, 4, 5]]
    """
    path = Path(path)
    try:
        with _open_maybe_gzip(path) as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise IdxFormatError(f"{path}: cannot read file ({exc})") from exc
    if len(raw) < 4:
        raise IdxFormatError(f"{path}: file too short for an idx header ({len(raw)} bytes)")
    zero0, zero1, type_code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero0 != 0 or zero1 != 0:
        raise IdxFormatError(
            f"{path}: bad idx magic number 0x{raw[:4].hex()} (first two bytes must be zero)"
        )
    if type_code not in _IDX_DTYPES:
        raise IdxFormatError(
            f"{path}: bad idx magic number 0x{raw[:4].hex()} (unknown element type 0x{type_code:02x})"
        )
    if ndim == 0:
        raise IdxFormatError(f"{path}: idx header declares zero dimensions")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise IdxFormatError(
            f"{path}: truncated idx header: {ndim} dimensions need {header_len} bytes, "
            f"file has {len(raw)}"
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header_len])
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    available = len(raw) - header_len
    if available < expected:
        raise IdxFormatError(
            f"{path}: truncated idx data: header shape {shape} needs {expected} bytes, "
            f"only {available} present"
        )
    if available > expected:
        raise IdxFormatError(
            f"{path}: {available - expected} unexpected trailing bytes after idx data "
            f"of shape {shape}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


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


def load_fashion_mnist(
    data_dir: str | os.PathLike | None = None, split: str = "train"
) -> ArrayDataset:
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
            f"{image_path} holds {images.shape[0]} images but {label_path} holds "
            f"{labels.shape[0]} labels"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise IdxFormatError(f"{label_path}: labels outside 0..9")
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


# --------------------------------------------------------------------------- #
# CIFAR-10 / CIFAR-100 (python pickle version).
# --------------------------------------------------------------------------- #
_CIFAR = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "url": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "md5": "c58f30108f718f92721af3b95e74349a",
        "mean": CIFAR10_MEAN,
        "std": CIFAR10_STD,
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "url": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "md5": "eb9058c3a382ffc7106e4002c42a8d85",
        "mean": CIFAR100_MEAN,
        "std": CIFAR100_STD,
    },
}


def _normalise_cifar_name(name: str) -> str:
    key = str(name).lower().replace("-", "").replace("_", "")
    if key not in _CIFAR:
        raise ValueError(f"name must be 'cifar10' or 'cifar100', got {name!r}")
    return key


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds plain containers and NumPy arrays.

    The CIFAR batches are pickles; refusing every other global keeps a
    tampered file from running arbitrary code.
    """

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("builtins", "bytearray"),
        ("_codecs", "encode"),  # how protocol-2 pickles from Python 3 store bytes
        ("codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name} from a CIFAR batch file "
            "(only NumPy arrays and plain containers are allowed)"
        )


def _load_cifar_batch(path: Path) -> dict:
    with open(path, "rb") as fh:
        try:
            obj = _ArrayOnlyUnpickler(fh, encoding="bytes").load()
        except (pickle.UnpicklingError, EOFError, ValueError) as exc:
            raise ValueError(f"{path}: not a valid CIFAR pickle batch ({exc})") from exc
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a dict, got {type(obj).__name__}")
    # Keys are bytes in the original (Python 2) files; accept str keys too.
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _cifar_instructions(name: str, searched: Sequence[Path]) -> str:
    spec = _CIFAR[name]
    where = ", ".join(str(p) for p in searched)
    return (
        f"{name.upper().replace('CIFAR', 'CIFAR-')} files not found (looked in: {where}). "
        f"Download and extract {spec['url']} so that the folder {spec['folder']}/ "
        f"with {', '.join(spec['train'] + spec['test'])} exists, then pass --data-dir "
        f"pointing at that folder or at its parent (or call load_cifar(..., download=True) "
        f"on a machine with network access)."
    )


def _resolve_cifar_dir(data_dir: Path, name: str) -> Path | None:
    spec = _CIFAR[name]
    needed = spec["train"] + spec["test"]
    for folder in (data_dir / spec["folder"], data_dir):
        if all((folder / f).is_file() for f in needed):
            return folder
    # Accept a folder holding just the requested split's files as well.
    for folder in (data_dir / spec["folder"], data_dir):
        if folder.is_dir() and any((folder / f).is_file() for f in needed):
            return folder
    return None


def _download_cifar(data_dir: Path, name: str) -> None:
    spec = _CIFAR[name]
    data_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(suffix=".tar.gz", dir=data_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            with urllib.request.urlopen(spec["url"], timeout=60) as resp, open(tmp, "wb") as out:
                shutil.copyfileobj(resp, out)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise DatasetNotFoundError(
                f"could not download {spec['url']} ({exc}); this machine may be offline. "
                + _cifar_instructions(name, [data_dir])
            ) from exc
        digest = hashlib.md5(tmp.read_bytes()).hexdigest()
        if digest != spec["md5"]:
            raise DatasetNotFoundError(
                f"downloaded {spec['url']} has md5 {digest}, expected {spec['md5']}"
            )
        with tarfile.open(tmp, "r:gz") as tar:
            if sys.version_info >= (3, 12):
                tar.extractall(data_dir, filter="data")
            else:  # pragma: no cover - older Pythons
                root = data_dir.resolve()
                for member in tar.getmembers():
                    target = (data_dir / member.name).resolve()
                    if root not in target.parents and target != root:
                        raise DatasetNotFoundError(f"unsafe path in archive: {member.name}")
                tar.extractall(data_dir)
    finally:
        tmp.unlink(missing_ok=True)


def load_cifar(
    data_dir: str | os.PathLike,
    name: str = "cifar10",
    split: str = "train",
    download: bool = False,
    *,
    label_type: str = "fine",
) -> ArrayDataset:
    """Load CIFAR-10 or CIFAR-100 from the python-pickle batch files.

    Parameters
    ----------
    data_dir : str or path-like
        Either the extracted folder (``cifar-10-batches-py`` or
        ``cifar-100-python``) or its parent.
    name : {"cifar10", "cifar100"}
        Which dataset.
    split : {"train", "test"}
        CIFAR-10 train reads ``data_batch_1`` .. ``data_batch_5``, test reads
        ``test_batch``; CIFAR-100 reads ``train`` or ``test``.
    download : bool, default False
        If the files are missing, fetch the official tarball with ``urllib``
        into ``data_dir`` and extract it. Raises
        :class:`DatasetNotFoundError` when offline.
    label_type : {"fine", "coarse"}, default "fine"
        CIFAR-100 only: the 100 fine classes or the 20 superclasses.

    Returns
    -------
    ArrayDataset
        ``x`` of shape ``(N, 3, 32, 32)`` in ``[0, 1]``.

    Raises
    ------
    DatasetNotFoundError
        When the files are missing (the message says how to get them).

    Notes
    -----
    The batch files are pickles; they are read with an unpickler that only
    rebuilds NumPy arrays and plain containers.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = write_cifar_like(d, "cifar10", num_train=10, num_test=4, rng=np.random.default_rng(0))
    ...     print(load_cifar(d, "cifar10", "test").x.shape)
    (4, 3, 32, 32)
    """
    key = _normalise_cifar_name(name)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if label_type not in ("fine", "coarse"):
        raise ValueError(f"label_type must be 'fine' or 'coarse', got {label_type!r}")
    spec = _CIFAR[key]
    data_dir = Path(data_dir)
    folder = _resolve_cifar_dir(data_dir, key)
    if folder is None and download:
        _download_cifar(data_dir, key)
        folder = _resolve_cifar_dir(data_dir, key)
    searched = [data_dir / spec["folder"], data_dir]
    if folder is None:
        raise DatasetNotFoundError(_cifar_instructions(key, searched))
    files = [folder / f for f in spec[split]]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"missing {', '.join(str(m) for m in missing)}. " + _cifar_instructions(key, searched)
        )
    if key == "cifar10":
        label_key, num_classes = "labels", 10
    elif label_type == "fine":
        label_key, num_classes = "fine_labels", 100
    else:
        label_key, num_classes = "coarse_labels", 20
    xs, ys = [], []
    for path in files:
        batch = _load_cifar_batch(path)
        if "data" not in batch or label_key not in batch:
            raise ValueError(
                f"{path}: expected keys b'data' and b'{label_key}', got {sorted(batch)}"
            )
        data = np.asarray(batch["data"])
        labels = np.asarray(batch[label_key], dtype=np.int64)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise ValueError(f"{path}: b'data' must have shape (N, 3072), got {data.shape}")
        if data.shape[0] != labels.shape[0]:
            raise ValueError(
                f"{path}: {data.shape[0]} images but {labels.shape[0]} labels"
            )
        xs.append(data.astype(np.uint8, copy=False))
        ys.append(labels)
    data = np.concatenate(xs)
    x = data.reshape(-1, 3, 32, 32).astype(np.float32)
    x /= 255.0
    is_coarse = key == "cifar100" and label_type == "coarse"
    return ArrayDataset(
        x=x,
        y=np.concatenate(ys),
        num_classes=num_classes,
        name=key + ("-coarse" if is_coarse else ""),
        mean=spec["mean"],
        std=spec["std"],
    )


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


# --------------------------------------------------------------------------- #
# Small offline datasets.
# --------------------------------------------------------------------------- #
def make_two_moons(n: int, noise_rate: float = 0.3, *, rng) -> ArrayDataset:
    """Sample the two-moons toy problem with clean labels.

    Class 0 lies on the upper half circle of radius 1 centred at ``(0, 0)``;
    class 1 on the lower half circle centred at ``(1, 0.5)``. Points are
    shifted so the data is roughly centred at the origin.

    Parameters
    ----------
    n : int
        Number of points; the classes get ``ceil(n/2)`` and ``floor(n/2)``.
    noise_rate : float, default 0.3
        Standard deviation of the isotropic Gaussian jitter added to the
        coordinates (geometric noise). Labels are never corrupted here; apply
        label noise separately, e.g. with ``divweights.noise``.
    rng : numpy.random.Generator or int
        Source of randomness.

    Returns
    -------
    ArrayDataset
        ``x`` of shape ``(n, 2)``, ``y`` in ``{0, 1}``, shuffled.

    Examples
    --------
    >>> import numpy as np
    >>> ds = make_two_moons(100, 0.1, rng=np.random.default_rng(0))
    >>> ds.x.shape, np.bincount(ds.y).tolist()
    ((100, 2), [50, 50])
    """
    rng = _as_rng(rng)
    n = int(n)
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    noise_rate = float(noise_rate)
    if not np.isfinite(noise_rate) or noise_rate < 0:
        raise ValueError(f"noise_rate must be a non-negative number, got {noise_rate}")
    n0 = (n + 1) // 2
    n1 = n - n0
    t0 = rng.uniform(0.0, np.pi, size=n0)
    t1 = rng.uniform(0.0, np.pi, size=n1)
    upper = np.stack([np.cos(t0), np.sin(t0)], axis=1)
    lower = np.stack([1.0 - np.cos(t1), 0.5 - np.sin(t1)], axis=1)
    x = np.concatenate([upper, lower]) - np.array([0.5, 0.25])
    x = x + noise_rate * rng.standard_normal(x.shape)
    y = np.concatenate([np.zeros(n0, np.int64), np.ones(n1, np.int64)])
    order = rng.permutation(n)
    return ArrayDataset(
        x=x[order].astype(np.float32),
        y=y[order],
        num_classes=2,
        name="two-moons",
        mean=(0.0, 0.0),
        std=(1.0, 1.0),
    )


def load_digits_dataset(*, flatten: bool = False) -> ArrayDataset:
    """Load scikit-learn's bundled 8x8 handwritten digits (1797 images).

    Parameters
    ----------
    flatten : bool, default False
        Return ``x`` as ``(N, 64)`` instead of ``(N, 1, 8, 8)``.

    Returns
    -------
    ArrayDataset
        Pixel values scaled from ``0..16`` to ``[0, 1]``, 10 classes, with
        the mean and standard deviation computed over all pixels.

    Examples
    --------
    >>> ds = load_digits_dataset()
    >>> ds.x.shape, ds.num_classes
    ((1797, 1, 8, 8), 10)
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - sklearn is a train extra
        raise DatasetNotFoundError(
            "the digits dataset ships with scikit-learn; install it with "
            "`pip install scikit-learn` (or the 'train' extra of divweights)"
        ) from exc
    bunch = load_digits()
    x = (np.asarray(bunch.data, dtype=np.float32) / 16.0).reshape(-1, 1, 8, 8)
    mean, std = float(x.mean()), float(x.std())
    if flatten:
        x = x.reshape(x.shape[0], -1)
        mean_t, std_t = (mean,) * 64, (std,) * 64
    else:
        mean_t, std_t = (mean,), (std,)
    return ArrayDataset(
        x=x,
        y=np.asarray(bunch.target, dtype=np.int64),
        num_classes=10,
        name="digits",
        mean=mean_t,
        std=std_t,
    )


# --------------------------------------------------------------------------- #
# Splits and subsets.
# --------------------------------------------------------------------------- #
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
    n_val = int(round(n * val_fraction))
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
    picked = [
        rng.choice(np.flatnonzero(y == c), size=int(alloc[c]), replace=False)
        for c in range(k)
        if alloc[c] > 0
    ]
    if not picked:
        return np.zeros(0, dtype=np.int64)
    return np.sort(np.concatenate(picked)).astype(np.int64)
