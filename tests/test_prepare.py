"""Data preparation of a run (divweights_train.prepare): the instance-noise score cache and user datasets."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from divweights_train.config import TrainConfig
from divweights_train.prepare import (
    NoiseCacheError,
    clean_model_recipe,
    load_raw,
    prepare_data,
)


class FakeCleanModel:
    """A stand-in for the trainers' clean model: deterministic scores, counts its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, clean_train):
        self.calls += 1
        rng = np.random.default_rng(len(clean_train) + 1000 * self.calls)
        return rng.dirichlet(np.ones(clean_train.num_classes), size=len(clean_train))


def _config(tmp_path, **changes):
    base = {"dataset": "two-moons", "subset": 200, "noise": "instance:0.3", "cache_dir": str(tmp_path / "cache")}
    return TrainConfig(**{**base, **changes}).resolved()


def _cache_files(tmp_path):
    return sorted((tmp_path / "cache").glob("confusion-*.npz"))


# --------------------------------------------------------------------------- #
# The instance-noise cache
# --------------------------------------------------------------------------- #
def test_cache_is_reused_for_the_same_recipe(tmp_path):
    fn = FakeCleanModel()
    a = prepare_data(_config(tmp_path), confusion_fn=fn)
    b = prepare_data(_config(tmp_path, out="elsewhere", quiet=True), confusion_fn=fn)
    assert fn.calls == 1 and len(_cache_files(tmp_path)) == 1
    assert np.array_equal(a.train.y, b.train.y) and np.array_equal(a.train_flipped, b.train_flipped)


@pytest.mark.parametrize(
    "change",
    [
        {"weight_decay": 0.0},
        {"momentum": 0.5},
        {"nesterov": False},
        {"framework": "jax"},
        {"lr": 0.01},
        {"clean_model_epochs": 3},
        {"batch_size": 64},
        {"width": 16},
    ],
    ids=lambda c: next(iter(c)),
)
def test_cache_key_covers_every_input_of_the_clean_model(tmp_path, change):
    # Regression (issue 14): weight decay, momentum and framework were not in the key, so a run could
    # silently reuse flips computed by another clean model.
    fn = FakeCleanModel()
    prepare_data(_config(tmp_path), confusion_fn=fn)
    prepare_data(_config(tmp_path, **change), confusion_fn=fn)
    assert fn.calls == 2 and len(_cache_files(tmp_path)) == 2


def test_cache_key_covers_the_data(tmp_path):
    fn = FakeCleanModel()
    prepare_data(_config(tmp_path), confusion_fn=fn)
    prepare_data(_config(tmp_path, subset=150), confusion_fn=fn)
    assert fn.calls == 2


def test_cache_file_stores_its_key_and_holds_only_arrays(tmp_path):
    cfg = _config(tmp_path)
    prepare_data(cfg, confusion_fn=FakeCleanModel())
    (path,) = _cache_files(tmp_path)
    with np.load(path, allow_pickle=False) as z:
        key = json.loads(str(z["key"][()]))
        assert z["scores"].shape == (200, 2) and z["scores"].dtype == np.float64
    assert key["recipe"] == json.loads(json.dumps(clean_model_recipe(cfg)))
    assert key["num_examples"] == 200 and len(key["data_sha256"]) == 64


def test_cache_written_for_another_recipe_is_refused(tmp_path):
    fn = FakeCleanModel()
    prepare_data(_config(tmp_path), confusion_fn=fn)
    prepare_data(_config(tmp_path, weight_decay=0.0), confusion_fn=fn)
    first, second = _cache_files(tmp_path)
    first.write_bytes(second.read_bytes())  # a file under the wrong name: its stored key disagrees
    with pytest.raises(NoiseCacheError, match="another clean model or data") as info:
        for cfg in (_config(tmp_path), _config(tmp_path, weight_decay=0.0)):
            prepare_data(cfg, confusion_fn=fn)
    assert str(first) in str(info.value) and "delete it" in str(info.value)


@pytest.mark.parametrize("content", [b"", b"garbage", b"PK\x03\x04 truncated zip"], ids=["empty", "garbage", "zip"])
def test_corrupt_cache_names_the_file(tmp_path, content):
    # Regression (issue 14): a corrupt cache crashed with a bare NumPy traceback.
    prepare_data(_config(tmp_path), confusion_fn=FakeCleanModel())
    (path,) = _cache_files(tmp_path)
    path.write_bytes(content)
    with pytest.raises(NoiseCacheError, match="corrupt") as info:
        prepare_data(_config(tmp_path), confusion_fn=FakeCleanModel())
    assert str(path) in str(info.value)


def test_cache_with_pickled_objects_is_refused_without_unpickling(tmp_path):
    # Regression (issue 16): the cache was read with np.load; an object array must not be unpickled.
    prepare_data(_config(tmp_path), confusion_fn=FakeCleanModel())
    (path,) = _cache_files(tmp_path)
    marker = tmp_path / "PWNED"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    np.savez(path, scores=np.array([Payload()], dtype=object), key=np.array([Payload()], dtype=object))
    marker.unlink(missing_ok=True)
    with pytest.raises(NoiseCacheError, match="corrupt"):
        prepare_data(_config(tmp_path), confusion_fn=FakeCleanModel())
    assert not marker.exists()


def test_clean_model_scores_of_the_wrong_shape_are_refused(tmp_path):
    with pytest.raises(NoiseCacheError, match=r"shape \(200, 2\)"):
        prepare_data(_config(tmp_path), confusion_fn=lambda ds: np.ones((len(ds), 3)) / 3)
    assert _cache_files(tmp_path) == []


def test_instance_noise_without_a_clean_model(tmp_path):
    with pytest.raises(ValueError, match="needs confusion scores"):
        prepare_data(_config(tmp_path))


# --------------------------------------------------------------------------- #
# User datasets
# --------------------------------------------------------------------------- #
def _npz(tmp_path, n=50, **extra):
    rng = np.random.default_rng(0)
    y = np.arange(n) % 3
    path = tmp_path / "mine.npz"
    np.savez(path, x=rng.normal(size=(n, 4)) + y[:, None], y=y, **extra)
    return path, y


def test_config_accepts_a_user_dataset_path(tmp_path):
    path, _ = _npz(tmp_path)
    assert TrainConfig(dataset=str(path)).dataset == str(path)
    with pytest.raises(ValueError, match=r"must be one of .*\.npz file.*got 'svhn'"):
        TrainConfig(dataset="svhn")


def test_user_dataset_keeps_its_labels_without_noise(tmp_path):
    path, y = _npz(tmp_path)
    cfg = TrainConfig(dataset=str(path), model="mlp", val_fraction=0.0).resolved()
    data = prepare_data(cfg)
    assert not data.train_flipped.any() and np.array_equal(data.train.y, data.train_clean_labels)
    assert len(data.train) + len(data.test) == len(y) and len(data.test) == 10  # a stratified fifth
    assert np.bincount(data.test.y).tolist() == [4, 3, 3] or sorted(np.bincount(data.test.y)) == [3, 3, 4]
    both = np.concatenate([data.train.x, data.test.x])
    assert np.unique(both, axis=0).shape[0] == len(y)  # the split is a partition


def test_user_dataset_holdout_depends_on_the_seed_only(tmp_path):
    path, _ = _npz(tmp_path)
    a, _ = load_raw(TrainConfig(dataset=str(path), seed=1))
    b, _ = load_raw(TrainConfig(dataset=str(path), seed=1))
    c, _ = load_raw(TrainConfig(dataset=str(path), seed=2))
    assert np.array_equal(a.x, b.x) and not np.array_equal(a.x, c.x)


def test_user_dataset_with_its_own_test_set(tmp_path):
    path, y = _npz(tmp_path, x_test=np.zeros((5, 4)), y_test=[0, 1, 2, 0, 1])
    train, test = load_raw(TrainConfig(dataset=str(path)))
    assert len(train) == len(y) and test.y.tolist() == [0, 1, 2, 0, 1]


def test_user_dataset_noise_only_when_asked(tmp_path):
    path, _ = _npz(tmp_path, n=300)
    cfg = TrainConfig(dataset=str(path), model="mlp", noise="symmetric:0.2", val_fraction=0.0).resolved()
    data = prepare_data(cfg)
    assert data.train_flipped.mean() == pytest.approx(0.2, abs=0.01)


def test_missing_user_dataset_is_a_clear_error(tmp_path):
    cfg = dataclasses.replace(TrainConfig(), dataset=str(tmp_path / "gone.npz"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_raw(cfg)
