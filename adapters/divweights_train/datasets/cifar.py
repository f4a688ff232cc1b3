"""CIFAR-10 and CIFAR-100 from the "python version" pickle batches, read with a restricted unpickler."""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .base import ArrayDataset, DatasetFormatError, DatasetNotFoundError

__all__ = ["CIFAR10_MEAN", "CIFAR10_STD", "CIFAR100_MEAN", "CIFAR100_STD", "load_cifar"]

CIFAR10_MEAN: tuple[float, ...] = (0.4914, 0.4822, 0.4465)
CIFAR10_STD: tuple[float, ...] = (0.2023, 0.1994, 0.2010)
CIFAR100_MEAN: tuple[float, ...] = (0.5071, 0.4865, 0.4409)
CIFAR100_STD: tuple[float, ...] = (0.2673, 0.2564, 0.2762)


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

    _ALLOWED = frozenset(
        {
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
    )

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
        except MemoryError:
            raise
        except Exception as exc:  # a truncated or garbage pickle fails in many ways; all mean the same here
            raise DatasetFormatError(f"{path}: not a valid CIFAR pickle batch ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict):
        raise DatasetFormatError(f"{path}: expected a dict, got {type(obj).__name__}")
    # Keys are bytes in the original (Python 2) files; accept str keys too.
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _check_batch(path: Path, batch: dict, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate one batch's pixels and labels; return them as uint8 ``(N, 3072)`` and int64 ``(N,)``.

    Nothing is cast before it is checked: a float pixel such as 300.7 or -1
    would wrap to another byte, a label 0.7 would truncate to 0.
    """
    if "data" not in batch or label_key not in batch:
        raise DatasetFormatError(f"{path}: expected keys b'data' and b'{label_key}', got {sorted(batch)}")
    data = np.asarray(batch["data"])
    if data.dtype == np.bool_ or not np.issubdtype(data.dtype, np.integer):
        raise DatasetFormatError(
            f"{path}: b'data' must hold integer pixel values 0..255 (uint8, as in the official files), "
            f"got dtype {data.dtype}"
        )
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DatasetFormatError(f"{path}: b'data' must have shape (N, 3072), got {data.shape}")
    if data.size and (data.min() < 0 or data.max() > 255):
        raise DatasetFormatError(
            f"{path}: b'data' pixel values must lie in 0..255, got range [{data.min()}, {data.max()}]"
        )
    labels = np.asarray(batch[label_key])
    if labels.dtype == np.bool_ or not np.issubdtype(labels.dtype, np.integer):
        what = "strings" if labels.dtype.kind in "USO" else f"dtype {labels.dtype}"
        raise DatasetFormatError(f"{path}: b'{label_key}' must be integer class indices, got {what}")
    if labels.ndim != 1:
        raise DatasetFormatError(f"{path}: b'{label_key}' must be one-dimensional, got shape {labels.shape}")
    if data.shape[0] != labels.shape[0]:
        raise DatasetFormatError(f"{path}: {data.shape[0]} images but {labels.shape[0]} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetFormatError(
            f"{path}: b'{label_key}' must lie in [0, {num_classes}), got range [{labels.min()}, {labels.max()}]"
        )
    return data.astype(np.uint8), labels.astype(np.int64)


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
            raise DatasetNotFoundError(f"downloaded {spec['url']} has md5 {digest}, expected {spec['md5']}")
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
    DatasetFormatError
        When a batch file is not a valid pickle, or its pixels are not
        integers in 0..255, or its labels are not integer classes in range;
        the message names the file.

    Notes
    -----
    The batch files are pickles; they are read with an unpickler that only
    rebuilds NumPy arrays and plain containers.

    Examples
    --------
    >>> import numpy as np, os, pickle, tempfile
    >>> batch = {b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2, 3]}
    >>> with tempfile.TemporaryDirectory() as d:
    ...     os.mkdir(os.path.join(d, "cifar-10-batches-py"))
    ...     with open(os.path.join(d, "cifar-10-batches-py", "test_batch"), "wb") as fh:
    ...         pickle.dump(batch, fh, protocol=2)
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
        data, labels = _check_batch(path, _load_cifar_batch(path), label_key, num_classes)
        xs.append(data)
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
