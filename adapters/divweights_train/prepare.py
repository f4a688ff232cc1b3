"""Framework-neutral data preparation for a training run (NumPy only).

:func:`prepare_data` turns a :class:`~divweights_train.config.TrainConfig`
into the arrays a trainer needs: a (stratified) training subset with noisy
labels and their flipped flags, a noisy validation split carved out of it, and
the clean test set. :func:`derive_seed` gives independent, reproducible seeds
for every random stream of a run (subset, noise, split, each epoch's data
order, augmentation and mixup), so that an epoch can be replayed exactly
after an interruption.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import datasets as ds_mod
from .checkpoint import atomic_write
from .config import TrainConfig

__all__ = [
    "NoiseCacheError",
    "PreparedData",
    "clean_model_recipe",
    "derive_seed",
    "epoch_permutation",
    "load_raw",
    "prepare_data",
    "stream_order",
]

_TAGS = {
    "subset": 1,
    "noise": 2,
    "split": 3,
    "moons-train": 4,
    "moons-test": 5,
    "digits-split": 6,
    "init": 7,
    "order": 8,
    "augment": 9,
    "mixup": 10,
    "dropout": 11,
    "clean-model": 12,
    "user-test": 13,
}

#: Fraction of a user dataset without its own test set that is held out as the test set.
USER_TEST_FRACTION = 0.2


class NoiseCacheError(ValueError):
    """A cached clean-model score file is unreadable or belongs to another recipe; the message names it."""


def derive_seed(seed: int, tag: str, *extra: int) -> int:
    """A 63-bit seed for the random stream ``tag`` (and e.g. an epoch number).

    Examples
    --------
    >>> derive_seed(0, "order", 3) == derive_seed(0, "order", 3)
    True
    >>> derive_seed(0, "order", 3) != derive_seed(0, "order", 4)
    True
    """
    if tag not in _TAGS:
        raise ValueError(f"unknown seed tag {tag!r}")
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, _TAGS[tag], *(int(e) for e in extra)])
    return int(ss.generate_state(1, dtype=np.uint64)[0]) & ((1 << 63) - 1)


def _rng(seed: int, tag: str, *extra: int) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, tag, *extra))


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order in which the ``n`` training examples are visited in ``epoch``.

    Examples
    --------
    >>> sorted(epoch_permutation(0, 1, 5).tolist())
    [0, 1, 2, 3, 4]
    """
    return _rng(seed, "order", epoch).permutation(int(n))


def stream_order(seed: int, n: int, start: int, count: int) -> np.ndarray:
    """Examples ``start .. start + count - 1`` of the run's continuous example stream.

    The stream is the concatenation of the passes' permutations
    ``epoch_permutation(seed, 0, n)``, ``epoch_permutation(seed, 1, n)``, ...:
    every example once per pass, a batch may straddle two passes and no
    example is dropped (the data order of ``--eval-every``, like the
    published code's repeated, shuffled dataset).

    Examples
    --------
    >>> first_two_passes = np.concatenate([epoch_permutation(0, 0, 5), epoch_permutation(0, 1, 5)])
    >>> bool(np.array_equal(stream_order(0, 5, 3, 4), first_two_passes[3:7]))
    True
    """
    n, start, count = int(n), int(start), int(count)
    if n < 1 or start < 0 or count < 0:
        raise ValueError(f"need n >= 1, start >= 0 and count >= 0; got {n}, {start}, {count}")
    first, last = start // n, (start + count - 1) // n if count else start // n
    parts = [epoch_permutation(seed, p, n) for p in range(first, last + 1)]
    stream = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    offset = start - first * n
    return stream[offset : offset + count]


@dataclasses.dataclass
class PreparedData:
    """Everything a trainer needs, as NumPy arrays.

    Attributes
    ----------
    train : ArrayDataset
        Training examples with the *noisy* labels.
    train_clean_labels, train_flipped : numpy.ndarray
        Clean labels of the training examples and whether each was flipped.
    val : ArrayDataset or None
        Noisy validation split (labels noisy, as in the paper's protocol).
    val_flipped : numpy.ndarray or None
    test : ArrayDataset
        Clean test set.
    """

    train: ds_mod.ArrayDataset
    train_clean_labels: np.ndarray
    train_flipped: np.ndarray
    val: ds_mod.ArrayDataset | None
    val_flipped: np.ndarray | None
    test: ds_mod.ArrayDataset

    @property
    def num_classes(self) -> int:
        return self.train.num_classes

    def describe(self) -> dict:
        """Sizes and realised noise rate, for logs and ``run.json``."""
        return {
            "num_train": len(self.train),
            "num_val": 0 if self.val is None else len(self.val),
            "num_test": len(self.test),
            "num_classes": self.num_classes,
            "input_shape": list(self.train.input_shape),
            "train_flip_rate": float(self.train_flipped.mean()) if len(self.train) else 0.0,
            "val_flip_rate": None if self.val_flipped is None else float(self.val_flipped.mean()),
        }


def load_raw(config: TrainConfig) -> tuple[ds_mod.ArrayDataset, ds_mod.ArrayDataset]:
    """Clean training and test sets of ``config.dataset`` (before subsetting).

    two-moons draws 2000 training points (or ``subset``) and 1000 test points
    with Gaussian jitter 0.1; digits splits scikit-learn's 1797 images into
    2/3 training and 1/3 test, stratified, with the run's seed. A user
    dataset (a ``.npz`` file or an image folder, see
    :func:`~divweights_train.datasets.load_user_dataset`) uses its own test
    set when it has one; otherwise a stratified :data:`USER_TEST_FRACTION` of
    it is held out (its labels are the user's, so as noisy as the rest).
    """
    name = config.dataset
    if name not in _BUILTIN and ds_mod.is_user_dataset(name):
        train = ds_mod.load_user_dataset(name, "train")
        if ds_mod.user_dataset_has_test_split(name):
            return train, ds_mod.load_user_dataset(name, "test")
        test_idx = ds_mod.stratified_subset(
            train.y,
            round(USER_TEST_FRACTION * len(train)),
            rng=_rng(config.seed, "user-test"),
            num_classes=train.num_classes,
        )
        mask = np.ones(len(train), dtype=bool)
        mask[test_idx] = False
        return ds_mod.subset(train, np.flatnonzero(mask)), ds_mod.subset(train, test_idx)
    if name == "fashion-mnist":
        return (
            ds_mod.load_fashion_mnist(config.data_dir, "train"),
            ds_mod.load_fashion_mnist(config.data_dir, "test"),
        )
    if name in ("cifar10", "cifar100"):
        data_dir = config.data_dir if config.data_dir is not None else "data"
        return ds_mod.load_cifar(data_dir, name, "train"), ds_mod.load_cifar(data_dir, name, "test")
    if name == "two-moons":
        n_train = config.subset if config.subset is not None else 2000
        train = ds_mod.make_two_moons(n_train, 0.1, rng=_rng(config.seed, "moons-train"))
        test = ds_mod.make_two_moons(1000, 0.1, rng=_rng(config.seed, "moons-test"))
        return train, test
    if name == "digits":
        full = ds_mod.load_digits_dataset(flatten=config.model == "mlp")
        test_idx = ds_mod.stratified_subset(
            full.y, len(full) // 3, rng=_rng(config.seed, "digits-split"), num_classes=full.num_classes
        )
        mask = np.ones(len(full), dtype=bool)
        mask[test_idx] = False
        return ds_mod.subset(full, np.flatnonzero(mask)), ds_mod.subset(full, test_idx)
    raise ValueError(f"unknown dataset {name!r}")


_BUILTIN = ("fashion-mnist", "cifar10", "cifar100", "two-moons", "digits")


def _noise_dataset_name(name: str) -> str | None:
    return {"fashion-mnist": "fashion-mnist", "cifar10": "cifar10"}.get(name)


def _framework_version(framework: str) -> str | None:
    dist = {"torch": "torch", "jax": "jax"}.get(framework)
    if dist is None:
        return None
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def clean_model_recipe(config: TrainConfig) -> dict:
    """Every setting of ``config`` that the clean model of instance-dependent noise depends on.

    The trainers' clean model (plain cross-entropy, ``clean_model_epochs``
    epochs of SGD at the constant rate ``lr``) reads exactly these; its
    scores decide which labels flip, so each of them is part of the key of
    the score cache (:func:`prepare_data`), together with a fingerprint of
    the clean training data.

    Examples
    --------
    >>> import dataclasses
    >>> from divweights_train.config import TrainConfig
    >>> a = TrainConfig(dataset="two-moons", noise="instance:0.3").resolved()
    >>> clean_model_recipe(a) == clean_model_recipe(dataclasses.replace(a, weight_decay=0.0))
    False
    """
    return {
        "framework": config.framework,
        "framework_version": _framework_version(config.framework),
        "device": str(config.device).split(":")[0],
        "model": config.model,
        "width": config.width,
        "seed": int(config.seed),
        "epochs": int(config.clean_model_epochs),
        "batch_size": int(config.batch_size),
        "lr": config.lr,
        "momentum": config.momentum,
        "nesterov": bool(config.nesterov),
        "weight_decay": config.weight_decay,
    }


def _data_fingerprint(ds: ds_mod.ArrayDataset) -> str:
    h = hashlib.sha256()
    for arr in (ds.x, ds.y):
        arr = np.ascontiguousarray(arr)
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(memoryview(arr).cast("B"))
    h.update(json.dumps([list(ds.mean), list(ds.std)]).encode())
    return h.hexdigest()


def _confusion_cache_key(config: TrainConfig, clean_train: ds_mod.ArrayDataset) -> str:
    """The cache key as canonical JSON: the clean-model recipe and the data it is trained on."""
    key = {
        "format": 2,
        "dataset": config.dataset,
        "num_examples": len(clean_train),
        "num_classes": clean_train.num_classes,
        "data_sha256": _data_fingerprint(clean_train),
        "recipe": clean_model_recipe(config),
    }
    return json.dumps(key, sort_keys=True)


def _confusion_cache_path(config: TrainConfig, key: str) -> Path:
    base = Path(config.cache_dir) if config.cache_dir else Path.home() / ".cache" / "divweights_train"
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    label = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(config.dataset).name) or "data"
    return base / f"confusion-{label}-{digest}.npz"


def _check_scores(scores, n: int, k: int, what: str) -> np.ndarray:
    scores = np.asarray(scores)
    if scores.shape != (n, k):
        raise NoiseCacheError(f"{what}: expected clean-model scores of shape ({n}, {k}), got {scores.shape}")
    if scores.dtype.kind != "f" or not np.all(np.isfinite(scores)) or (scores.size and scores.min() < 0):
        raise NoiseCacheError(f"{what}: clean-model scores must be finite nonnegative floats")
    return scores.astype(np.float64, copy=False)


def _load_cached_scores(path: Path, key: str, n: int, k: int) -> np.ndarray:
    """Scores from the cache file ``path``, after checking that it was written for ``key``."""
    advice = "delete it to recompute the clean model's scores"
    try:
        with np.load(path, allow_pickle=False) as z:
            stored_key, scores = str(z["key"][()]), z["scores"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise NoiseCacheError(
            f"noise cache {path} is corrupt or not a score cache ({type(exc).__name__}: {exc}); {advice}"
        ) from exc
    if stored_key != key:
        raise NoiseCacheError(
            f"noise cache {path} was written for another clean model or data than this run's; {advice}"
        )
    return _check_scores(scores, n, k, f"noise cache {path}")


def _save_scores(path: Path, key: str, scores: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: np.savez(fh, scores=scores, key=np.array(key)))


def _instance_scores(config: TrainConfig, train: ds_mod.ArrayDataset, confusion_fn) -> np.ndarray:
    key = _confusion_cache_key(config, train)
    path = _confusion_cache_path(config, key)
    n, k = len(train), train.num_classes
    if path.exists():
        return _load_cached_scores(path, key, n, k)
    if confusion_fn is None:
        raise ValueError("instance-dependent noise needs confusion scores from a clean model")
    scores = _check_scores(confusion_fn(train), n, k, "confusion_fn")
    _save_scores(path, key, scores)
    return scores


def prepare_data(
    config: TrainConfig,
    *,
    confusion_fn: Callable[[ds_mod.ArrayDataset], np.ndarray] | None = None,
) -> PreparedData:
    """Load, subset, corrupt and split the data of a run.

    Order of operations: load the clean training set; take a stratified
    subset of ``config.subset`` examples (if given); corrupt the labels with
    ``config.noise``; split off ``config.val_fraction`` of the (noisy)
    examples as the validation set. Each step has its own seed derived from
    ``config.seed``.

    Parameters
    ----------
    config : TrainConfig
        A resolved config.
    confusion_fn : callable, optional
        ``confusion_fn(clean_train) -> (n, k)`` class probabilities of a model
        trained on clean labels; needed only for ``instance`` noise. The
        result is cached on disk (``config.cache_dir``, default
        ``~/.cache/divweights_train``), keyed by a fingerprint of the clean
        training data and every setting the clean model depends on
        (:func:`clean_model_recipe`: framework, model, optimiser, epochs,
        seed, ...). The key is stored in the file and checked on load; a
        corrupt file or a key mismatch raises :class:`NoiseCacheError`
        naming the file. The file holds only arrays and is read without
        pickle.

    Returns
    -------
    PreparedData
    """
    from .noise import apply_noise, parse_noise_spec

    train, test = load_raw(config)
    if config.subset is not None and config.dataset != "two-moons":
        if config.subset > len(train):
            raise ValueError(f"subset {config.subset} exceeds the {len(train)} training examples")
        idx = ds_mod.stratified_subset(
            train.y, config.subset, rng=_rng(config.seed, "subset"), num_classes=train.num_classes
        )
        train = ds_mod.subset(train, idx)
    spec = parse_noise_spec(config.noise)
    scores = _instance_scores(config, train, confusion_fn) if spec.kind == "instance" else None
    exact = True if config.exact_noise is None else bool(config.exact_noise)
    noisy, flipped = apply_noise(
        spec,
        train.y,
        train.num_classes,
        rng=_rng(config.seed, "noise"),
        dataset=_noise_dataset_name(config.dataset),
        confusion_scores=scores,
        exact=exact,
    )
    clean_labels = train.y.copy()
    noisy_train = train.with_labels(noisy)
    if config.val_fraction > 0:
        tr_idx, va_idx = ds_mod.train_val_split(len(train), config.val_fraction, rng=_rng(config.seed, "split"))
        val = ds_mod.subset(noisy_train, va_idx)
        val_flipped = flipped[va_idx]
    else:
        tr_idx = np.arange(len(train))
        val, val_flipped = None, None
    return PreparedData(
        train=ds_mod.subset(noisy_train, tr_idx),
        train_clean_labels=clean_labels[tr_idx],
        train_flipped=flipped[tr_idx],
        val=val,
        val_flipped=val_flipped,
        test=test,
    )
