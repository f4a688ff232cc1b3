"""The user's own data: a ``.npz`` file of arrays, or a folder of class-named image folders.

Both are meant for data whose labels are already noisy: nothing here changes a
label, and the training program injects synthetic noise only when ``--noise``
asks for it.

``.npz`` file
    Arrays ``x`` (inputs) and ``y`` (labels), optionally ``x_test`` and
    ``y_test`` (a separate test set) and ``classes`` (class names, a string
    array indexed by label). ``x`` is ``(N, D)`` features, ``(N, H, W)``
    grey images, or ``(N, C, H, W)`` / ``(N, H, W, C)`` images with ``C`` in
    1, 3, 4 (channels-last is recognised when the last axis is one of those
    and the second is not). Integer images must lie in ``0..255`` and are
    scaled to ``[0, 1]``; float inputs are used as they are. ``y`` holds
    integer class indices from 0 (a float array is accepted when every value
    is a whole number). The file is read with ``allow_pickle=False``.

Image folder
    One sub-folder per class, named after the class; classes are numbered in
    the sorted order of the names. Every image (``.png``, ``.jpg``, ...,
    anything Pillow reads) must have the same size; if all are grey the
    images get one channel, otherwise three (RGB). Hidden files and files
    with other extensions are skipped. A folder whose only sub-folders are
    ``train`` and ``test``, each laid out as above, gives a separate test
    set.

Errors name the path at fault: a missing path (:class:`DatasetNotFoundError`),
an empty class folder, inputs and labels of different lengths, non-integer
or negative labels, a file that is not an image (:class:`DatasetFormatError`).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from .base import ArrayDataset, DatasetFormatError, DatasetNotFoundError

__all__ = ["IMAGE_EXTENSIONS", "is_user_dataset", "load_user_dataset", "user_dataset_has_test_split"]

#: File name extensions read as images in a class folder (case-insensitive).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")

_GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


def is_user_dataset(name: str | os.PathLike) -> bool:
    """Whether ``name`` names user data (a ``.npz`` file or a folder) rather than a built-in dataset.

    Only the form is checked, not that the path exists, so that a missing
    path gets the loader's message.

    Examples
    --------
    >>> is_user_dataset("my_data.npz"), is_user_dataset("fashion-mnist")
    (True, False)
    """
    text = os.fspath(name)
    return text.lower().endswith(".npz") or os.sep in text or "/" in text or Path(text).is_dir()


def user_dataset_has_test_split(path: str | os.PathLike) -> bool:
    """Whether the data at ``path`` carries its own test set (``x_test``/``y_test``, or ``train/`` + ``test/``)."""
    path = _existing(path)
    if path.is_dir():
        return _split_layout(path)
    with _open_npz(path) as z:
        return "x_test" in z.files or "y_test" in z.files


def load_user_dataset(path: str | os.PathLike, split: str = "train") -> ArrayDataset:
    """Load a ``.npz`` file or a folder of class-named image folders (see the module notes).

    Parameters
    ----------
    path : str or path-like
        The ``.npz`` file or the folder.
    split : {"train", "test"}
        ``"train"``: ``x``/``y`` of the file, or the folder (its ``train/``
        part in the train/test layout). ``"test"``: ``x_test``/``y_test``, or
        the ``test/`` part; an error if the data has no test set
        (:func:`user_dataset_has_test_split`).

    Returns
    -------
    ArrayDataset
        ``float32`` inputs, ``int64`` labels exactly as given, per-channel
        (images) or per-feature mean and standard deviation of the loaded
        examples, and the class names when known.

    Raises
    ------
    DatasetNotFoundError
        When ``path`` does not exist, or ``split="test"`` and there is no
        test set.
    DatasetFormatError
        When the contents are not as described above; the message names the
        file or folder.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "toy.npz")
    ...     np.savez(path, x=np.zeros((4, 3)), y=np.array([0, 1, 2, 1]))
    ...     ds = load_user_dataset(path)
    >>> ds.x.shape, ds.num_classes, ds.y.tolist()
    ((4, 3), 3, [0, 1, 2, 1])
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    path = _existing(path)
    if path.is_dir():
        return _load_folder(path, split)
    return _load_npz(path, split)


# --------------------------------------------------------------------------- #
# Shared checks.
# --------------------------------------------------------------------------- #
def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise DatasetNotFoundError(
            f"dataset path {path} does not exist; --dataset takes a built-in name, a .npz file with arrays "
            "x and y, or a folder holding one sub-folder of images per class"
        )
    if not path.is_dir() and path.suffix.lower() != ".npz":
        raise DatasetFormatError(
            f"{path}: expected a .npz file (arrays x and y) or a folder of class-named image folders"
        )
    return path


def _labels(y, where: str) -> np.ndarray:
    """Integer class indices from ``y``, as ``int64``."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise DatasetFormatError(f"{where}: labels must be one-dimensional, got shape {y.shape}")
    if y.dtype == np.bool_ or y.dtype.kind not in "iuf":
        what = "strings" if y.dtype.kind in "USO" else f"dtype {y.dtype}"
        raise DatasetFormatError(
            f"{where}: labels must be integer class indices 0..k-1, got {what} (number the classes first)"
        )
    if y.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))
        if bad.size:
            raise DatasetFormatError(
                f"{where}: labels must be whole numbers (class indices), but label {bad[0]} is {y[bad[0]].item()!r}"
            )
    if y.size and y.min() < 0:
        raise DatasetFormatError(f"{where}: labels must be >= 0, found {y.min().item()!r}")
    return y.astype(np.int64)


def _num_classes(where: str, names: tuple[str, ...], *label_sets: np.ndarray) -> int:
    """The number of classes: the class names' count, or one more than the largest label of any split."""
    top = max((int(y.max()) for y in label_sets if y.size), default=-1)
    if names:
        if top >= len(names):
            raise DatasetFormatError(f"{where}: label {top} is out of range for {len(names)} class names")
        return len(names)
    if top < 1:
        raise DatasetFormatError(f"{where}: need at least 2 classes, found labels in [0, {max(top, 0)}]")
    return top + 1


def _stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (images) or per-feature mean and standard deviation (0 replaced by 1)."""
    axes = (0, 2, 3) if x.ndim == 4 else (0,)
    mean = x.mean(axis=axes, dtype=np.float64)
    std = x.std(axis=axes, dtype=np.float64)
    std = np.where(std > 0, std, 1.0)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def _dataset(x: np.ndarray, y: np.ndarray, k: int, name: str, classes: tuple[str, ...]) -> ArrayDataset:
    mean, std = _stats(x)
    return ArrayDataset(x=x, y=y, num_classes=k, name=name, mean=mean, std=std, class_names=classes)


# --------------------------------------------------------------------------- #
# .npz files.
# --------------------------------------------------------------------------- #
def _open_npz(path: Path):
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DatasetFormatError(f"{path}: not a readable .npz file ({exc})") from exc


def _inputs(x, where: str) -> np.ndarray:
    """``float32`` inputs ``(N, D)`` or ``(N, C, H, W)`` from a user array."""
    x = np.asarray(x)
    if x.dtype == np.bool_ or x.dtype.kind not in "iuf":
        raise DatasetFormatError(f"{where}: inputs must be real numbers, got dtype {x.dtype}")
    if x.ndim == 3:
        x = x[:, None, :, :]
    elif x.ndim == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        x = np.moveaxis(x, -1, 1)  # channels-last
    elif x.ndim not in (2, 4):
        raise DatasetFormatError(
            f"{where}: inputs must have shape (N, D), (N, H, W), (N, C, H, W) or (N, H, W, C); got {x.shape}"
        )
    if x.shape[0] == 0:
        raise DatasetFormatError(f"{where}: holds no examples")
    if x.dtype.kind in "iu":
        if x.ndim == 4:
            if x.min() < 0 or x.max() > 255:
                raise DatasetFormatError(
                    f"{where}: integer images must lie in 0..255, got range [{x.min()}, {x.max()}]"
                )
            return x.astype(np.float32) / np.float32(255.0)
        return x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise DatasetFormatError(f"{where}: inputs contain NaN or infinite values")
    return x.astype(np.float32)


def _load_npz(path: Path, split: str) -> ArrayDataset:
    x_key, y_key = ("x", "y") if split == "train" else ("x_test", "y_test")
    with _open_npz(path) as z:
        files = set(z.files)
        if split == "test" and not ({x_key, y_key} & files):
            raise DatasetNotFoundError(f"{path}: no test set (arrays x_test and y_test)")
        missing = [k for k in (x_key, y_key) if k not in files]
        if missing:
            raise DatasetFormatError(
                f"{path}: missing array {' and '.join(missing)} (the file holds {', '.join(sorted(files)) or 'nothing'})"
            )
        other_key = "y_test" if split == "train" else "y"
        try:
            x_raw, y_raw = z[x_key], z[y_key]
            names = z["classes"] if "classes" in files else None
            other = z[other_key] if other_key in files else None
        except ValueError as exc:  # object arrays need pickle, which is refused
            raise DatasetFormatError(f"{path}: {exc} (store plain numeric and string arrays)") from exc
    classes: tuple[str, ...] = ()
    if names is not None:
        names = np.asarray(names)
        if names.ndim != 1 or names.dtype.kind not in "US":
            raise DatasetFormatError(f"{path}: 'classes' must be a 1-D array of class names")
        classes = tuple(str(c) for c in names)
    where = f"{path} [{x_key}, {y_key}]"
    if np.asarray(x_raw).ndim == 0 or np.asarray(y_raw).ndim == 0:
        raise DatasetFormatError(f"{where}: x and y must be arrays with one entry per example")
    if len(x_raw) != len(y_raw):
        raise DatasetFormatError(f"{where}: {len(x_raw)} inputs but {len(y_raw)} labels")
    x = _inputs(x_raw, where)
    y = _labels(y_raw, where)
    # Both splits share the class numbering, so the count covers the labels of both.
    others = () if other is None else (_labels(other, f"{path} [{other_key}]"),)
    k = _num_classes(where, classes, y, *others)
    return _dataset(x, y, k, path.stem, classes)


# --------------------------------------------------------------------------- #
# Image folders.
# --------------------------------------------------------------------------- #
def _visible(entries):
    return sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)


def _split_layout(path: Path) -> bool:
    subdirs = {e.name for e in _visible(path.iterdir()) if e.is_dir()}
    return subdirs == {"train", "test"}


def _class_folders(folder: Path, minimum: int = 2) -> list[Path]:
    entries = _visible(folder.iterdir())
    stray = [e for e in entries if e.is_file() and e.suffix.lower() in IMAGE_EXTENSIONS]
    if stray:
        raise DatasetFormatError(
            f"{stray[0]}: images must be inside one sub-folder per class (named after the class), "
            f"not directly in {folder}"
        )
    classes = [e for e in entries if e.is_dir()]
    if len(classes) < minimum:
        raise DatasetFormatError(
            f"{folder}: expected one sub-folder of images per class (at least {minimum}), found {len(classes)}"
        )
    return classes


def _read_image(file: Path):
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - Pillow comes with matplotlib (the 'train' extra)
        raise ImportError("reading an image folder needs Pillow: `pip install pillow`") from exc
    try:
        with Image.open(file) as img:
            img.load()
            return img.copy()
    except Exception as exc:  # Pillow raises many types for a bad file
        raise DatasetFormatError(f"{file}: not a readable image ({type(exc).__name__}: {exc})") from exc


def _load_folder(path: Path, split: str) -> ArrayDataset:
    if _split_layout(path):
        folder = path / split
    elif split == "test":
        raise DatasetNotFoundError(f"{path}: no test set (a folder whose only sub-folders are train/ and test/)")
    else:
        folder = path
    classes = _class_folders(folder, minimum=1 if split == "test" else 2)
    names = tuple(c.name for c in classes)
    if split == "test":  # number the classes as the training part does
        train_names = tuple(c.name for c in _class_folders(path / "train"))
        unknown = [n for n in names if n not in train_names]
        if unknown:
            raise DatasetFormatError(f"{folder / unknown[0]}: class {unknown[0]!r} does not occur in {path / 'train'}")
        index = {n: i for i, n in enumerate(train_names)}
        names = train_names
    else:
        index = {n: i for i, n in enumerate(names)}
    images, labels = [], []
    for cls in classes:
        files = [f for f in _visible(cls.iterdir()) if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS]
        if not files:
            raise DatasetFormatError(
                f"{cls}: empty class folder (no image files with extensions {', '.join(IMAGE_EXTENSIONS)})"
            )
        for f in files:
            images.append((f, _read_image(f)))
            labels.append(index[cls.name])
    first_file, first = images[0]
    for f, img in images[1:]:
        if img.size != first.size:
            raise DatasetFormatError(
                f"{f}: image size {img.size[0]}x{img.size[1]} differs from {first.size[0]}x{first.size[1]} "
                f"of {first_file}; all images must have the same size"
            )
    grey = all(img.mode in _GREY_MODES for _, img in images)
    mode, channels = ("L", 1) if grey else ("RGB", 3)
    w, h = first.size
    x = np.empty((len(images), channels, h, w), np.float32)
    for i, (_, img) in enumerate(images):
        arr = np.asarray(img.convert(mode), dtype=np.float32) / np.float32(255.0)
        x[i] = arr[None] if grey else np.moveaxis(arr, -1, 0)
    y = np.asarray(labels, dtype=np.int64)
    return _dataset(x, y, len(names), path.name, names)
