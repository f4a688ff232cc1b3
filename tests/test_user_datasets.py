"""The user's own data: ``.npz`` files and folders of class-named image folders (divweights_train.datasets.user)."""

from __future__ import annotations

import numpy as np
import pytest
from divweights_train.datasets import (
    DatasetFormatError,
    DatasetNotFoundError,
    is_user_dataset,
    load_user_dataset,
    user_dataset_has_test_split,
)

Image = pytest.importorskip("PIL.Image")


def _save_images(folder, images):
    folder.mkdir(parents=True, exist_ok=True)
    for i, arr in enumerate(images):
        Image.fromarray(arr).save(folder / f"img_{i}.png")


def _image_folder(root, sizes=None, rgb=False, counts=(3, 2)):
    """``root/<class>/img_i.png`` for classes cat, dog (in that order); returns the pixel arrays by class."""
    rng = np.random.default_rng(0)
    out = {}
    for name, count in zip(("cat", "dog"), counts):
        shape = (6, 5, 3) if rgb else (6, 5)
        imgs = [rng.integers(0, 256, size=shape, dtype=np.uint8) for _ in range(count)]
        _save_images(root / name, imgs)
        out[name] = imgs
    return out


# --------------------------------------------------------------------------- #
# .npz files
# --------------------------------------------------------------------------- #
def test_npz_tabular_keeps_labels_and_features(tmp_path):
    x = np.random.default_rng(0).normal(size=(7, 3))
    y = np.array([0, 2, 1, 1, 0, 2, 2])
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ds = load_user_dataset(tmp_path / "d.npz")
    assert ds.x.shape == (7, 3) and ds.x.dtype == np.float32 and np.allclose(ds.x, x)
    assert ds.y.tolist() == y.tolist() and ds.num_classes == 3 and ds.name == "d"
    assert np.allclose(ds.mean, x.mean(0)) and np.allclose(ds.std, x.std(0))


@pytest.mark.parametrize("layout", ["nchw", "nhwc", "nhw"])
def test_npz_integer_images_are_scaled_and_channels_first(tmp_path, layout):
    img = np.random.default_rng(1).integers(0, 256, size=(4, 3, 8, 9), dtype=np.uint8)
    stored = {"nchw": img, "nhwc": np.moveaxis(img, 1, -1), "nhw": img[:, 0]}[layout]
    np.savez(tmp_path / "d.npz", x=stored, y=[0, 1, 0, 1])
    ds = load_user_dataset(tmp_path / "d.npz")
    expected = img[:, :1] if layout == "nhw" else img
    assert ds.x.shape == expected.shape and np.allclose(ds.x, expected / 255.0)


def test_npz_whole_float_labels_and_class_names(tmp_path):
    np.savez(
        tmp_path / "d.npz", x=np.zeros((3, 2)), y=np.array([0.0, 2.0, 1.0]), classes=np.array(["a", "b", "c", "d"])
    )
    ds = load_user_dataset(tmp_path / "d.npz")
    assert ds.y.tolist() == [0, 2, 1] and ds.num_classes == 4 and ds.class_names == ("a", "b", "c", "d")


def test_npz_separate_test_set(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 2)), y=[0, 1, 0, 1], x_test=np.ones((2, 2)), y_test=[1, 0])
    assert user_dataset_has_test_split(tmp_path / "d.npz")
    test = load_user_dataset(tmp_path / "d.npz", "test")
    assert test.y.tolist() == [1, 0] and np.all(test.x == 1)


def test_npz_splits_share_the_class_count(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 2)), y=[0, 1, 0, 1], x_test=np.ones((2, 2)), y_test=[0, 3])
    train, test = (load_user_dataset(tmp_path / "d.npz", split) for split in ("train", "test"))
    assert train.num_classes == test.num_classes == 4


def test_npz_without_test_set(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 2)), y=[0, 1, 0, 1])
    assert not user_dataset_has_test_split(tmp_path / "d.npz")
    with pytest.raises(DatasetNotFoundError, match="no test set"):
        load_user_dataset(tmp_path / "d.npz", "test")


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"x": np.zeros((3, 2)), "y": [0, 1]}, "3 inputs but 2 labels"),
        ({"x": np.zeros((3, 2)), "y": [0, 0.5, 1]}, "whole numbers.*label 1 is 0.5"),
        ({"x": np.zeros((2, 2)), "y": np.array(["cat", "dog"])}, "got strings"),
        ({"x": np.zeros((2, 2)), "y": [True, False]}, "got dtype bool"),
        ({"x": np.zeros((2, 2)), "y": [0, -1]}, "must be >= 0"),
        ({"x": np.zeros((2, 2)), "y": [0, 0]}, "at least 2 classes"),
        ({"x": np.zeros((2, 2))}, "missing array y"),
        ({"x": np.array([[0.0, np.nan], [1, 2]]), "y": [0, 1]}, "NaN or infinite"),
        ({"x": np.full((2, 1, 2, 2), 300), "y": [0, 1]}, r"0\.\.255"),
        ({"x": np.zeros((2, 2, 2, 2, 2)), "y": [0, 1]}, "inputs must have shape"),
        ({"x": np.zeros((2, 2)), "y": [0, 3], "classes": np.array(["a", "b"])}, "out of range for 2 class names"),
    ],
    ids=["lengths", "fraction", "strings", "bool", "negative", "one-class", "no-y", "nan", "range", "ndim", "names"],
)
def test_npz_errors_name_the_file(tmp_path, arrays, match):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DatasetFormatError, match=match) as info:
        load_user_dataset(path)
    assert str(path) in str(info.value)


def test_npz_object_arrays_are_refused_without_unpickling(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, x=np.zeros((2, 2)), y=np.array([0, {"a": 1}], dtype=object))
    with pytest.raises(DatasetFormatError, match="allow_pickle") as info:
        load_user_dataset(path)
    assert str(path) in str(info.value)


def test_npz_that_is_not_a_zip(tmp_path):
    path = tmp_path / "garbage.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(DatasetFormatError, match="not a readable .npz") as info:
        load_user_dataset(path)
    assert str(path) in str(info.value)


def test_missing_path_says_what_is_accepted(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"does not exist.*\.npz file with arrays x and y.*folder"):
        load_user_dataset(tmp_path / "nope.npz")


def test_other_file_types_are_rejected(tmp_path):
    (tmp_path / "d.csv").write_text("1,2\n")
    with pytest.raises(DatasetFormatError, match="expected a .npz file"):
        load_user_dataset(tmp_path / "d.csv")


# --------------------------------------------------------------------------- #
# Image folders
# --------------------------------------------------------------------------- #
def test_grey_image_folder(tmp_path):
    imgs = _image_folder(tmp_path / "pets")
    ds = load_user_dataset(tmp_path / "pets")
    assert ds.x.shape == (5, 1, 6, 5) and ds.class_names == ("cat", "dog") and ds.num_classes == 2
    assert ds.y.tolist() == [0, 0, 0, 1, 1]
    assert np.allclose(ds.x[3, 0], imgs["dog"][0] / 255.0)
    assert ds.name == "pets" and len(ds.mean) == 1


def test_rgb_image_folder_is_channels_first(tmp_path):
    imgs = _image_folder(tmp_path / "pets", rgb=True)
    ds = load_user_dataset(tmp_path / "pets")
    assert ds.x.shape == (5, 3, 6, 5)
    assert np.allclose(ds.x[0], np.moveaxis(imgs["cat"][0], -1, 0) / 255.0)


def test_image_folder_skips_hidden_and_other_files(tmp_path):
    _image_folder(tmp_path / "pets")
    (tmp_path / "pets" / "cat" / ".DS_Store").write_bytes(b"\0")
    (tmp_path / "pets" / "cat" / "notes.txt").write_text("hello")
    (tmp_path / "pets" / "README.md").write_text("my pets")
    assert len(load_user_dataset(tmp_path / "pets")) == 5


def test_empty_class_folder_is_named(tmp_path):
    _image_folder(tmp_path / "pets")
    (tmp_path / "pets" / "emu").mkdir()
    (tmp_path / "pets" / "emu" / "notes.txt").write_text("no images yet")
    with pytest.raises(DatasetFormatError, match="empty class folder") as info:
        load_user_dataset(tmp_path / "pets")
    assert str(tmp_path / "pets" / "emu") in str(info.value)


def test_images_of_different_sizes_are_named(tmp_path):
    _image_folder(tmp_path / "pets")
    _save_images(tmp_path / "pets" / "dog2", [np.zeros((7, 5), np.uint8)])
    with pytest.raises(DatasetFormatError, match="differs from") as info:
        load_user_dataset(tmp_path / "pets")
    assert "dog2" in str(info.value)


def test_unreadable_image_is_named(tmp_path):
    _image_folder(tmp_path / "pets")
    bad = tmp_path / "pets" / "dog" / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(DatasetFormatError, match="not a readable image") as info:
        load_user_dataset(tmp_path / "pets")
    assert str(bad) in str(info.value)


def test_images_outside_class_folders_are_refused(tmp_path):
    _image_folder(tmp_path / "pets")
    _save_images(tmp_path / "pets", [np.zeros((6, 5), np.uint8)])
    with pytest.raises(DatasetFormatError, match="one sub-folder per class"):
        load_user_dataset(tmp_path / "pets")


def test_folder_needs_two_classes(tmp_path):
    _save_images(tmp_path / "pets" / "cat", [np.zeros((6, 5), np.uint8)])
    with pytest.raises(DatasetFormatError, match="at least 2"):
        load_user_dataset(tmp_path / "pets")


def test_train_test_folder_layout_numbers_classes_alike(tmp_path):
    _image_folder(tmp_path / "pets" / "train")
    _save_images(tmp_path / "pets" / "test" / "dog", [np.zeros((6, 5), np.uint8)])
    assert user_dataset_has_test_split(tmp_path / "pets")
    test = load_user_dataset(tmp_path / "pets", "test")
    assert test.y.tolist() == [1] and test.num_classes == 2 and test.class_names == ("cat", "dog")
    assert len(load_user_dataset(tmp_path / "pets", "train")) == 5


def test_test_folder_with_unknown_class(tmp_path):
    _image_folder(tmp_path / "pets" / "train")
    _save_images(tmp_path / "pets" / "test" / "emu", [np.zeros((6, 5), np.uint8)])
    with pytest.raises(DatasetFormatError, match="class 'emu' does not occur"):
        load_user_dataset(tmp_path / "pets", "test")


def test_is_user_dataset():
    assert is_user_dataset("x.npz") and is_user_dataset("data/pets") and is_user_dataset("./pets")
    assert not is_user_dataset("fashion-mnist") and not is_user_dataset("svhn")
