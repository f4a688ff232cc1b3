"""Tests for divweights_train.datasets (NumPy-only data layer)."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest
from _writers import write_cifar_like, write_idx
from divweights_train import datasets as D
from divweights_train.datasets import (
    ArrayDataset,
    DatasetNotFoundError,
    IdxFormatError,
    load_cifar,
    load_digits_dataset,
    load_fashion_mnist,
    make_two_moons,
    read_idx,
    stratified_subset,
    subset,
    train_val_split,
)
from helpers import python_output


# --------------------------------------------------------------------------- #
# ArrayDataset
# --------------------------------------------------------------------------- #
def test_array_dataset_casts_dtypes():
    ds = ArrayDataset(np.zeros((3, 2), np.float64), np.array([0, 1, 1], np.int32), 2, "t")
    assert ds.x.dtype == np.float32 and ds.y.dtype == np.int64


def test_array_dataset_is_frozen():
    ds = ArrayDataset(np.zeros((3, 2), np.float32), np.array([0, 1, 1]), 2, "t")
    with pytest.raises(AttributeError):
        ds.name = "other"


def test_array_dataset_rejects_length_mismatch():
    with pytest.raises(ValueError, match="number of examples"):
        ArrayDataset(np.zeros((3, 2), np.float32), np.array([0, 1]), 2, "t")


def test_array_dataset_rejects_out_of_range_labels():
    with pytest.raises(ValueError, match="labels must lie"):
        ArrayDataset(np.zeros((2, 2), np.float32), np.array([0, 2]), 2, "t")


def test_array_dataset_with_labels_keeps_inputs():
    ds = ArrayDataset(np.ones((2, 1, 2, 2), np.float32), np.array([0, 1]), 2, "t", (0.5,), (0.5,))
    noisy = ds.with_labels(np.array([1, 1]))
    assert noisy.x is ds.x and noisy.y.tolist() == [1, 1] and noisy.mean == (0.5,)


# --------------------------------------------------------------------------- #
# idx reader
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_roundtrip_images(tmp_path, suffix):
    arr = np.random.default_rng(0).integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
    path = write_idx(tmp_path / f"img-idx3-ubyte{suffix}", arr)
    out = read_idx(path)
    assert out.dtype == np.uint8 and np.array_equal(out, arr)


def test_idx_reader_handles_big_endian_int32(tmp_path):
    arr = np.array([1, -2, 70000], dtype=np.int32)
    path = tmp_path / "x-idx1-int"
    path.write_bytes(bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 3) + struct.pack(">3i", 1, -2, 70000))
    assert read_idx(path).tolist() == arr.tolist()


def test_idx_reader_detects_gzip_by_content(tmp_path):
    arr = np.arange(4, dtype=np.uint8)
    raw = bytes([0, 0, 8, 1]) + struct.pack(">I", 4) + arr.tobytes()
    path = tmp_path / "no-suffix"
    path.write_bytes(gzip.compress(raw))
    assert read_idx(path).tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize(
    "name, raw, match",
    [
        pytest.param("bad", bytes([1, 2, 8, 1]) + struct.pack(">I", 1) + b"\x00", "magic", id="bad-magic"),
        pytest.param("bad", bytes([0, 0, 0x42, 1]) + struct.pack(">I", 1) + b"\x00", "element type", id="unknown-type"),
        pytest.param(
            "short.gz",
            gzip.compress(bytes([0, 0, 8, 2]) + struct.pack(">II", 3, 3) + b"\x00" * 5),
            "truncated",
            id="truncated-data",
        ),
        pytest.param("short", bytes([0, 0, 8, 3]) + b"\x00\x00", "truncated idx header", id="truncated-header"),
        pytest.param(
            "long", bytes([0, 0, 8, 1]) + struct.pack(">I", 2) + b"\x01\x02\x03", "trailing", id="trailing-bytes"
        ),
    ],
)
def test_idx_reader_rejects_malformed_files(tmp_path, name, raw, match):
    path = tmp_path / name
    path.write_bytes(raw)
    with pytest.raises(IdxFormatError, match=match):
        read_idx(path)


def _write_fake_fmnist(folder, n_train=12, n_test=6, gz=True):
    rng = np.random.default_rng(1)
    suffix = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(
            folder / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        )
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", (np.arange(n) % 10).astype(np.uint8))


@pytest.mark.parametrize("gz", [True, False])
def test_load_fashion_mnist_from_generated_files(tmp_path, gz):
    _write_fake_fmnist(tmp_path, gz=gz)
    ds = load_fashion_mnist(tmp_path, split="test")
    assert ds.x.shape == (6, 1, 28, 28) and ds.x.dtype == np.float32
    assert 0.0 <= ds.x.min() and ds.x.max() <= 1.0
    assert ds.y.tolist() == [0, 1, 2, 3, 4, 5] and ds.num_classes == 10


def test_load_fashion_mnist_count_mismatch(tmp_path):
    _write_fake_fmnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    with pytest.raises(IdxFormatError, match="labels"):
        load_fashion_mnist(tmp_path, split="train")


@pytest.mark.parametrize(
    "which, array, match",
    [
        ("images", np.full((6, 28, 28), 300.7), "unsigned bytes"),
        ("images", np.full((6, 28, 28), -1, np.int16), "unsigned bytes"),
        ("labels", np.full(6, 0.7, np.float32), "labels must be integers"),
    ],
    ids=["float-pixels", "signed-pixels", "float-labels"],
)
def test_load_fashion_mnist_rejects_values_it_would_misread(tmp_path, which, array, match):
    # Before: float images were divided by 255 and float labels truncated, with no error.
    _write_fake_fmnist(tmp_path)
    path = write_idx(tmp_path / f"t10k-{which}-idx{3 if which == 'images' else 1}-ubyte.gz", array)
    with pytest.raises(IdxFormatError, match=match) as info:
        load_fashion_mnist(tmp_path, split="test")
    assert str(path) in str(info.value)


def test_load_fashion_mnist_missing_gives_instructions(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_fashion_mnist(tmp_path)
    msg = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in msg and "--data-dir" in msg
    assert isinstance(info.value, FileNotFoundError)


def test_load_fashion_mnist_rejects_bad_split(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist(tmp_path, split="val")


_REAL_FMNIST = D.DEFAULT_FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz"


@pytest.mark.skipif(
    not _REAL_FMNIST.exists() and not _REAL_FMNIST.with_suffix("").exists(),
    reason="Fashion-MNIST not installed (sudo apt-get install dataset-fashion-mnist)",
)
def test_real_fashion_mnist_shapes():
    train = load_fashion_mnist(split="train")
    test = load_fashion_mnist(split="test")
    assert train.x.shape == (60000, 1, 28, 28) and test.x.shape == (10000, 1, 28, 28)
    assert np.bincount(train.y).tolist() == [6000] * 10
    assert np.bincount(test.y).tolist() == [1000] * 10
    assert abs(float(train.x.mean()) - D.FASHION_MNIST_MEAN[0]) < 1e-3


# --------------------------------------------------------------------------- #
# CIFAR
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("point_at", ["parent", "folder"])
@pytest.mark.parametrize(
    "name, num_classes, mean", [("cifar10", 10, D.CIFAR10_MEAN), ("cifar100", 100, D.CIFAR100_MEAN)]
)
def test_cifar_reader_both_layouts(tmp_path, point_at, name, num_classes, mean):
    folder = write_cifar_like(tmp_path, name, num_train=23, num_test=7, rng=0)
    root = tmp_path if point_at == "parent" else folder
    train = load_cifar(root, name, "train")
    test = load_cifar(root, name, "test")
    assert train.x.shape == (23, 3, 32, 32) and test.x.shape == (7, 3, 32, 32)
    assert train.num_classes == num_classes and train.mean == mean


def test_cifar10_reader_reproduces_pixels_and_labels(tmp_path):
    folder = write_cifar_like(tmp_path, "cifar10", num_train=10, num_test=4, rng=0)
    with open(folder / "test_batch", "rb") as fh:
        raw = pickle.load(fh, encoding="bytes")
    ds = load_cifar(tmp_path, "cifar10", "test")
    # Row layout is 1024 red, 1024 green, 1024 blue values, each row-major 32x32.
    expected = raw[b"data"].reshape(-1, 3, 32, 32) / 255.0
    assert np.allclose(ds.x, expected) and ds.y.tolist() == raw[b"labels"]


def test_cifar10_train_concatenates_five_batches(tmp_path):
    folder = write_cifar_like(tmp_path, "cifar10", num_train=10, num_test=2, rng=0)
    assert sorted(p.name for p in folder.glob("data_batch_*")) == [f"data_batch_{i}" for i in range(1, 6)]
    labels = []
    for i in range(1, 6):
        with open(folder / f"data_batch_{i}", "rb") as fh:
            labels += pickle.load(fh, encoding="bytes")[b"labels"]
    assert load_cifar(tmp_path, "cifar10", "train").y.tolist() == labels


def test_cifar100_coarse_labels(tmp_path):
    folder = write_cifar_like(tmp_path, "cifar100", num_train=30, num_test=9, rng=1)
    with open(folder / "train", "rb") as fh:
        raw = pickle.load(fh, encoding="bytes")
    ds = load_cifar(tmp_path, "cifar100", "train", label_type="coarse")
    assert ds.num_classes == 20 and ds.y.tolist() == raw[b"coarse_labels"]


def test_cifar_reader_accepts_str_keys(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    data = np.zeros((2, 3072), np.uint8)
    for split in ("train", "test"):
        with open(folder / split, "wb") as fh:
            pickle.dump({"data": data, "fine_labels": [3, 4], "coarse_labels": [0, 0]}, fh)
    assert load_cifar(folder, "cifar-100", "test").y.tolist() == [3, 4]


def test_cifar_reader_refuses_arbitrary_pickled_objects(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for split in ("train", "test"):
        with open(folder / split, "wb") as fh:
            pickle.dump({"data": np.zeros((1, 3072), np.uint8), "fine_labels": [0], "evil": print}, fh)
    with pytest.raises(ValueError, match="refusing"):
        load_cifar(tmp_path, "cifar100", "train")


def _cifar100_test_batch(tmp_path, data, fine_labels):
    """A CIFAR-100 folder whose test file holds ``data`` and ``fine_labels``; returns the file."""
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    path = folder / "test"
    with open(path, "wb") as fh:
        pickle.dump({b"data": data, b"fine_labels": fine_labels, b"coarse_labels": [0] * len(fine_labels)}, fh)
    return path


@pytest.mark.parametrize(
    "pixel, dtype",
    [(300.7, np.float64), (-1.0, np.float64), (0.5, np.float32), (300, np.int64), (-1, np.int16)],
    ids=["float-over", "float-negative", "float-in-range", "int-over", "int-negative"],
)
def test_cifar_reader_rejects_pixels_it_would_wrap(tmp_path, pixel, dtype):
    # Regression (issue 14): 300.7 became 44 and -1 became 255 (astype(uint8)) with no error.
    data = np.zeros((2, 3072), dtype)
    data[1, 5] = pixel
    path = _cifar100_test_batch(tmp_path, data, [0, 1])
    with pytest.raises(D.DatasetFormatError, match=r"pixel|uint8") as info:
        load_cifar(tmp_path, "cifar100", "test")
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "labels, match",
    [
        ([0, 0.7], "integer class indices, got dtype float64"),
        (["3", "4"], "integer class indices, got strings"),
        ([b"3", b"4"], "integer class indices, got strings"),
        ([0, 100], r"must lie in \[0, 100\), got range \[0, 100\]"),
        ([-1, 2], r"must lie in \[0, 100\)"),
        ([True, False], "integer class indices, got dtype bool"),
    ],
    ids=["fraction", "str", "bytes", "too-large", "negative", "bool"],
)
def test_cifar_reader_rejects_bad_labels_naming_the_file(tmp_path, labels, match):
    # Regression (issue 14): label 0.7 became 0; out-of-range labels failed without naming the file.
    path = _cifar100_test_batch(tmp_path, np.zeros((2, 3072), np.uint8), labels)
    with pytest.raises(D.DatasetFormatError, match=match) as info:
        load_cifar(tmp_path, "cifar100", "test")
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "payload",
    [b"", b"garbage bytes", pickle.dumps({b"data": np.zeros((1, 3072), np.uint8)})[:-9], b"\x80\x02}q\x00(U"],
    ids=["empty", "garbage", "truncated", "truncated-header"],
)
def test_cifar_reader_names_a_corrupt_file(tmp_path, payload):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    (folder / "test").write_bytes(payload)
    with pytest.raises(D.DatasetFormatError, match="not a valid CIFAR pickle batch") as info:
        load_cifar(tmp_path, "cifar100", "test")
    assert str(folder / "test") in str(info.value)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_missing_gives_instructions(tmp_path, name):
    with pytest.raises(DatasetNotFoundError) as info:
        load_cifar(tmp_path, name, "train")
    msg = str(info.value)
    assert "--data-dir" in msg and "python.tar.gz" in msg and "Download" in msg


def test_cifar_missing_split_file(tmp_path):
    folder = write_cifar_like(tmp_path, "cifar10", num_train=10, num_test=2, rng=0)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DatasetNotFoundError, match="data_batch_3"):
        load_cifar(tmp_path, "cifar10", "train")


def test_cifar_rejects_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="cifar10"):
        load_cifar(tmp_path, "svhn")


def test_write_cifar_like_requires_rng(tmp_path):
    with pytest.raises(TypeError, match="rng"):
        write_cifar_like(tmp_path, "cifar10", 5, 5)


# --------------------------------------------------------------------------- #
# Two moons and digits
# --------------------------------------------------------------------------- #
def test_two_moons_shapes_and_balance():
    ds = make_two_moons(101, 0.1, rng=np.random.default_rng(0))
    assert ds.x.shape == (101, 2) and ds.x.dtype == np.float32
    assert np.bincount(ds.y).tolist() == [51, 50] and ds.num_classes == 2


def test_two_moons_is_deterministic():
    a = make_two_moons(50, rng=np.random.default_rng(3))
    b = make_two_moons(50, rng=np.random.default_rng(3))
    c = make_two_moons(50, rng=np.random.default_rng(4))
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.x, c.x)


def test_two_moons_without_jitter_lies_on_half_circles():
    ds = make_two_moons(200, 0.0, rng=0)
    pts = ds.x.astype(np.float64) + np.array([0.5, 0.25])
    upper, lower = pts[ds.y == 0], pts[ds.y == 1]
    assert np.allclose(np.hypot(*upper.T), 1.0, atol=1e-5) and (upper[:, 1] >= -1e-6).all()
    centred = lower - np.array([1.0, 0.5])
    assert np.allclose(np.hypot(*centred.T), 1.0, atol=1e-5) and (centred[:, 1] <= 1e-6).all()


def test_two_moons_rejects_negative_noise():
    with pytest.raises(ValueError, match="noise_rate"):
        make_two_moons(10, -0.1, rng=0)


def test_two_moons_rejects_bad_rng():
    with pytest.raises(TypeError, match="rng"):
        make_two_moons(10, rng="seed")


def test_digits_dataset_shapes():
    ds = load_digits_dataset()
    assert ds.x.shape == (1797, 1, 8, 8) and ds.num_classes == 10
    assert 0.0 <= ds.x.min() and ds.x.max() <= 1.0
    assert load_digits_dataset(flatten=True).x.shape == (1797, 64)


# --------------------------------------------------------------------------- #
# Splits and subsets
# --------------------------------------------------------------------------- #
def test_train_val_split_partitions_indices():
    tr, va = train_val_split(100, 0.1, rng=np.random.default_rng(0))
    assert len(va) == 10 and len(tr) == 90
    assert np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(100))


def test_train_val_split_is_deterministic():
    a = train_val_split(50, 0.2, rng=7)
    b = train_val_split(50, 0.2, rng=7)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("frac", [-0.1, 1.0])
def test_train_val_split_rejects_bad_fraction(frac):
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split(10, frac, rng=0)


def test_subset_keeps_metadata():
    ds = make_two_moons(20, rng=0)
    sub = subset(ds, np.array([3, 1]))
    assert np.array_equal(sub.x, ds.x[[3, 1]]) and sub.name == ds.name and sub.num_classes == 2


def test_subset_rejects_boolean_mask():
    ds = make_two_moons(4, rng=0)
    with pytest.raises(TypeError, match="boolean"):
        subset(ds, np.array([True, False, True, False]))


def test_stratified_subset_is_balanced():
    y = np.random.default_rng(0).integers(0, 10, size=5000)
    idx = stratified_subset(y, 1000, rng=np.random.default_rng(1))
    assert len(np.unique(idx)) == 1000
    assert np.bincount(y[idx], minlength=10).tolist() == [100] * 10


def test_stratified_subset_remainder_differs_by_at_most_one():
    y = np.repeat(np.arange(4), 100)
    counts = np.bincount(y[stratified_subset(y, 10, rng=0)], minlength=4)
    assert counts.sum() == 10 and counts.max() - counts.min() <= 1


def test_stratified_subset_redistributes_short_classes():
    y = np.repeat(np.arange(3), [2, 50, 50])
    counts = np.bincount(y[stratified_subset(y, 30, rng=0)], minlength=3)
    assert counts.tolist() == [2, 14, 14]


def test_stratified_subset_rejects_too_large():
    with pytest.raises(ValueError, match="size"):
        stratified_subset(np.array([0, 1]), 3, rng=0)


# --------------------------------------------------------------------------- #
# The package layout
# --------------------------------------------------------------------------- #
OLD_PUBLIC_NAMES = [
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
]


def test_public_names_still_come_from_the_package():
    assert set(OLD_PUBLIC_NAMES) <= set(D.__all__)
    assert all(hasattr(D, name) for name in D.__all__)


@pytest.mark.parametrize("name", ["write_idx", "write_cifar_like"])
def test_test_only_writers_left_the_package(name):
    with pytest.raises(AttributeError, match="tests/_writers.py"):
        getattr(D, name)


def test_package_is_framework_free():
    code = "import sys, divweights_train.datasets; print(sorted({'torch', 'jax', 'PIL'} & set(sys.modules)))"
    assert python_output(code) == "[]"
