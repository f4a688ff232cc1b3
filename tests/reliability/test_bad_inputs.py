"""The bad-input table of issue 14, with the crafted checkpoints of issue 16, as a user meets them.

Each row is one bad input named in the issues (its id starts with the item,
``14.4`` is issue 14 item 4) and what must happen instead of a crash or a
silently wrong result. Five tables:

* ``CORE``: a call of the core library raises an error that names the
  problem, or returns the right answer where it used to return a wrong one;
* ``OPTIONS``: a ``divweights-train`` command line is refused before anything
  runs: exit status 2, one line naming the option and why, no output folder;
* ``FOLDERS``: an output folder in a bad state (in use, holding a run, a
  damaged or crafted checkpoint, a file in its place) is refused in one line
  before any training; every file is left as it was and nothing from the
  folder runs;
* ``REPAIRS``: folder states the program handles (leftover temporaries,
  ``--overwrite``, non-finite metrics in JSON);
* ``FILES``: a damaged input file (CIFAR batch, noise cache) raises an error
  naming the file.

The items' focused regression tests stay beside the code's other tests
(tests/test_validation.py, test_numerics.py, test_mixup_core.py,
test_jax_checked.py, test_torch_edges.py, test_train_cli.py,
test_train_options.py, test_runfolder.py, test_checkpoint_safety.py,
test_datasets.py, test_prepare.py); this module reuses their helpers and runs
the whole table end to end.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil

import numpy as np
import pytest
import torch.nn.functional as F

torch = pytest.importorskip("torch")

from _runs import folder_bytes
from divweights_train import cli
from divweights_train.datasets import DatasetFormatError, load_cifar
from divweights_train.metrics import read_metrics
from divweights_train.prepare import NoiseCacheError, prepare_data
from divweights_train.runfolder import RunFolder
from test_checkpoint_safety import _Payload
from test_datasets import _cifar100_test_batch
from test_prepare import FakeCleanModel, _cache_files, _config
from train_helpers import MOONS, MOONS_JAX, forbid_training, refused

import divweights as dw
from divweights.mixup import mixup_ratio, partner_probabilities

pytestmark = pytest.mark.reliability


# --------------------------------------------------------------------------- #
# CORE: (call, expected) -- expected is (exception, message regex) or a check of the result.
# --------------------------------------------------------------------------- #
def _equals(expected):
    return lambda got: np.array_equal(np.asarray(got), expected)


_LOSSES = np.arange(6.0).reshape(2, 3)


def _tv(targets, gamma, losses=_LOSSES):
    return dw.class_weights(losses, targets, dw.TotalVariation(), gamma=gamma)


def _jax_checked_error(bad_label=None, **strength) -> str | None:
    """The checkify error of the JAX adapter's ``checked=True`` loss under ``jit`` (tests/test_jax_checked.py)."""
    pytest.importorskip("jax")
    from test_jax_checked import LABELS, LOGITS, checked_loss, error_of

    labels = LABELS if bad_label is None else LABELS.at[2].set(bad_label)
    return error_of(checked_loss(), LOGITS, labels, strength)


def _jax_jit_weights(losses, **strength):
    jax = pytest.importorskip("jax")
    return jax.jit(lambda l, s: dw.instance_weights(l, dw.KL(), **{k: s for k in strength}))(losses, *strength.values())


def _reverse_kl_soft_targets(dtype, n=1024, k=2):
    """ReverseKL class weights of label-smoothed (0.01) soft targets at gamma = 1, and the targets."""
    rng = np.random.default_rng(0)
    losses = rng.exponential(size=(n, k)).astype(dtype)
    y = (np.eye(k)[rng.integers(0, k, n)] * 0.99 + 0.01 / k).astype(dtype)
    return dw.class_weights(losses, y, dw.ReverseKL(), gamma=1.0), y


def _reweighted_loss(module, *args, **kwargs):
    pytest.importorskip("divweights_torch")
    from divweights_torch import ReweightedLoss

    return getattr(ReweightedLoss(*args, **kwargs), module)


_ONE_HOT_0_255 = np.eye(300)[[0, 255]]
_MASS_ON_THE_MINIMUM = np.array([1.0, 0.0, 0.0])
_LOGITS, _LABELS = (
    torch.randn(4, 3, generator=torch.Generator().manual_seed(0)),
    torch.tensor([0, 1, 2, 0]),
)
#: bfloat16 thirds: each 0.33398..., rows sum to 1.00195 (softmax outputs cast to bfloat16 are off as much).
_BF16_THIRDS = torch.full((2, 3), 1 / 3).to(torch.bfloat16)

CORE = [
    pytest.param(
        lambda: _tv(np.array([0, 255], np.uint8), 0.0, np.ones((2, 300))),
        _equals(_ONE_HOT_0_255),
        id="14.4-uint8-labels-300-classes-numpy",
    ),
    pytest.param(
        lambda: _tv(torch.tensor([0, 255], dtype=torch.uint8), 0.0, torch.ones(2, 300)),
        _equals(_ONE_HOT_0_255),
        id="14.4-uint8-labels-300-classes-torch",
    ),
    pytest.param(
        lambda: dw.class_weights(torch.ones(2, 3), _BF16_THIRDS, dw.ReverseKL(), gamma=0.1),
        lambda v: torch.allclose(v.float().sum(-1), torch.ones(2), atol=1e-2),
        id="14.12-bfloat16-soft-targets-accepted",
    ),
    pytest.param(
        lambda: _jax_checked_error(bad_label=5, lam=1.0),
        lambda err: err.startswith("integer targets must lie in [0, 3) for 3 classes"),
        id="14.7-jax-checked-label-5-of-3-classes-under-jit",
    ),
    pytest.param(
        lambda: _jax_checked_error(lam=-1.0),
        lambda err: err.startswith("lam must be > 0"),
        id="14.7-jax-checked-traced-lam-minus-1",
    ),
    pytest.param(
        lambda: dw.instance_weights(np.array([1, 2, 3], np.float32), dw.KL(), lam=1e-300),
        _equals(_MASS_ON_THE_MINIMUM),
        id="14.10-float32-lam-1e-300",
    ),
    pytest.param(
        lambda: dw.instance_weights(np.array([1, 2, 3], np.float16), dw.KL(), temperature=1e-46),
        _equals(_MASS_ON_THE_MINIMUM),
        id="14.10-float16-temperature-1e-46",
    ),
    pytest.param(
        lambda: _jax_jit_weights(np.array([1.0, 2.0, 3.0]), lam=0.0),
        _equals(_MASS_ON_THE_MINIMUM),
        id="14.10-traced-lam-0-under-jit",
    ),
    pytest.param(
        lambda: _reverse_kl_soft_targets(np.float16),
        lambda vy: not np.any((vy[0] == 0) & (vy[1] > 0)),
        id="14.11-reverse-kl-float16-soft-targets-keep-their-classes",
    ),
    pytest.param(
        lambda: _reweighted_loss("forward", None, weight=torch.zeros(3), reduction="mean")(_LOGITS, _LABELS),
        lambda loss: torch.isnan(loss) and torch.isnan(F.cross_entropy(_LOGITS, _LABELS, weight=torch.zeros(3))),
        id="14.14-mean-with-all-class-weights-0-is-nan-as-in-torch",
    ),
    pytest.param(
        lambda: _reweighted_loss("load_state_dict")({"steps": torch.tensor(-5)}, strict=False),
        (ValueError, "must be >= 0"),
        id="14.14-load-state-dict-steps-minus-5",
    ),
    pytest.param(
        lambda: partner_probabilities(np.array([0.2, np.inf, 0.5])),
        (ValueError, "weights must be finite"),
        id="14.13-partner-probabilities-inf-weight",
    ),
    pytest.param(
        lambda: partner_probabilities(np.array([0.2, np.nan, 0.5])),
        (ValueError, "weights must not contain NaN"),
        id="14.13-partner-probabilities-nan-weight",
    ),
    pytest.param(
        lambda: partner_probabilities(np.array([0.2, 0.3]), power=np.inf),
        (ValueError, "power must be finite"),
        id="14.13-partner-probabilities-power-inf",
    ),
    pytest.param(
        lambda: mixup_ratio(np.array(1.0), np.array(-0.5)),
        (ValueError, "w_j must be >= 0"),
        id="14.13-mixup-ratio-negative-weight",
    ),
    pytest.param(
        lambda: _tv(torch.tensor([0, 1]), 0.1),
        (TypeError, "class_losses is a numpy array but targets is a torch array"),
        id="14.16-numpy-losses-torch-labels",
    ),
    pytest.param(
        lambda: _tv(np.array([0, 1]), 0.1, torch.ones(2, 3)),
        (TypeError, "class_losses is a torch array but targets is a numpy array"),
        id="14.16-torch-losses-numpy-labels",
    ),
    pytest.param(
        lambda: _tv(np.array([2, 0]), 1.5),
        _equals(_tv(np.array([2, 0]), 1.0)),
        id="15.6-total-variation-gamma-above-1-acts-as-1",
    ),
]


@pytest.mark.parametrize("call, expected", CORE)
def test_core(call, expected):
    if isinstance(expected, tuple):
        error, message = expected
        with pytest.raises(error, match=message):
            call()
    else:
        assert expected(call())


# --------------------------------------------------------------------------- #
# OPTIONS: (reason, command-line options); the message names the last option given, then the reason.
# --------------------------------------------------------------------------- #
def _option(item, reason, *args):
    words = "_".join(a.lstrip("-") or "empty" for a in args)
    return pytest.param(reason, args, id=f"{item}-{words}")


FINITE, SEED = "must be a finite number", "must be an integer in [0, 4294967295]"
OPTIONS = [
    _option("14.6", FINITE, "--warmup-epochs", "inf"),
    _option("14.6", FINITE, "--weight-decay", "nan"),
    _option("14.8", SEED, "--seed", "4294967296"),
    _option("14.8", SEED, "--seed", "-1"),
    _option("14.15", FINITE, "--burnin-epochs", "inf"),
    _option("14.15", FINITE, "--anneal-epochs", "inf"),
    _option("14.15", "alpha:A needs -100 <= A <= 100", "--divergence", "alpha:1e308"),
    _option("14.15", FINITE, "--lr", "1e308"),
    _option("14.15", FINITE, "--lr", "inf"),
    _option("14.15", "cuda was requested", "--device", "cuda"),
    _option("14.17", "must not be empty", "--out", ""),
    _option("15.6", "has no effect", "--method", "ce", "--class-divergence", "tv"),
]


@pytest.mark.parametrize("reason, args", OPTIONS)
def test_option(tmp_path, capsys, monkeypatch, reason, args):
    forbid_training(monkeypatch)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as without a GPU
    err = refused([*MOONS, "--out", str(tmp_path / "run"), *args], capsys)
    flag = [a for a in args if a.startswith("--")][-1]
    assert f"argument {flag}" in err and reason in err, err
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- #
# FOLDERS: (prepare, message fragments); prepare(out, stack) damages a copy of a stopped run in ``out``
# (one epoch of two) and returns the options to add (--resume, another --out); command: MOONS or MOONS_JAX.
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("stopped") / "run"
    assert cli.main([*MOONS, "--stop-after-epochs", "1", "--out", str(out)]) == 0
    return out


def _held_by_another_writer(out, stack):
    stack.enter_context(RunFolder.open(out, resume=True, overwrite=False))
    return ["--resume"]


def _checkpoint(content: bytes | None = None, cut=None, folder=False):
    def prepare(out, stack):
        ckpt = out / "checkpoint.pt"
        if folder:
            ckpt.unlink()
            ckpt.mkdir()
        else:
            ckpt.write_bytes(content if cut is None else ckpt.read_bytes()[:cut])
        return ["--resume"]

    return prepare


def _out_is_a_file(out, stack):
    (out.parent / "file").write_text("mine")
    return ["--out", str(out.parent / "file")]


def _out_under_a_file(out, stack):
    (out.parent / "file").write_text("mine")
    return ["--out", str(out.parent / "file" / "run")]


def _crafted_torch(out, stack):
    torch.save({"format": _Payload(out.parent / "PWNED")}, out / "checkpoint.pt")
    return ["--resume"]


def _crafted_jax(out, stack):
    with open(out / "checkpoint_jax.npz", "wb") as fh:
        np.savez(fh, meta=np.array([_Payload(out.parent / "PWNED")], dtype=object))
    return ["--resume"]


def _folder(name, prepare, *fragments, command=MOONS):
    return pytest.param(prepare, fragments, command, id=name)


def _as_it_is(out, stack):
    return []


PID, RUNS_CODE, NOT_A_CHECKPOINT = os.getpid(), "could run code", "is not a checkpoint"
FOLDERS = [
    _folder("14.1-second-writer", _held_by_another_writer, f"in use by process {PID}"),
    _folder("14.2-rerun-without-resume", _as_it_is, "holds a run", "--overwrite"),
    _folder("14.15-empty-checkpoint", _checkpoint(b""), "checkpoint.pt is empty"),
    _folder("14.15-truncated-checkpoint", _checkpoint(cut=500), NOT_A_CHECKPOINT),
    _folder("14.15-garbage-checkpoint", _checkpoint(b"x" * 99), NOT_A_CHECKPOINT),
    _folder("14.15-checkpoint-is-a-folder", _checkpoint(folder=True), "is not a file"),
    _folder("14.15-out-is-a-file", _out_is_a_file, "file is a file, not a folder"),
    _folder("14.15-out-under-a-file", _out_under_a_file, "which is a file"),
    _folder("16-crafted-torch-checkpoint", _crafted_torch, "pt was not", RUNS_CODE),
    _folder(
        "16-crafted-jax-checkpoint",
        _crafted_jax,
        "npz was not",
        RUNS_CODE,
        command=MOONS_JAX,
    ),
]


@pytest.mark.parametrize("prepare, fragments, command", FOLDERS)
def test_folder(tmp_path, capsys, monkeypatch, stopped_run, prepare, fragments, command):
    out = tmp_path / "run"
    shutil.copytree(stopped_run, out)
    with contextlib.ExitStack() as stack:
        args = prepare(out, stack)
        before = folder_bytes(tmp_path)
        forbid_training(monkeypatch)
        err = refused([*command, "--out", str(out), *args], capsys)
    assert all(f in err for f in fragments), err
    # Nothing written, nothing deleted, nothing run (no PWNED):
    assert folder_bytes(tmp_path) == before


# --------------------------------------------------------------------------- #
# REPAIRS: (prepare, check); the command must succeed and check(out) hold.
# --------------------------------------------------------------------------- #
_LEFTOVERS = (
    "checkpoint.pt.x1y2.tmp",
    "metrics.jsonl.tmp",
    "weights/epoch_002.npz.ab.tmp",
)


def _leftover_temporaries(out):
    for name in _LEFTOVERS:
        (out / name).write_bytes(b"partial")
    return ["--resume"]


def _stale_weight_file(out):
    (out / "weights" / "epoch_009.npz").write_bytes(b"stale")
    return ["--overwrite"]


def _strict_json(path):
    def reject(constant):
        raise ValueError(f"{path.name} holds the non-standard JSON constant {constant}")

    return json.loads(path.read_text(), parse_constant=reject)


def _json_is_standard(out):
    summary = _strict_json(out / "summary.json")
    _strict_json(out / "data.json")
    return summary["best_val_acc"] is None and summary["final_auroc"] is None  # nan, as null


REPAIRS = [
    pytest.param(
        _leftover_temporaries,
        lambda out: not any((out / name).exists() for name in _LEFTOVERS),
        id="14.18-temporaries-of-killed-writes-removed-on-resume",
    ),
    pytest.param(
        _stale_weight_file,
        lambda out: (
            sorted(p.name for p in (out / "weights").iterdir()) == ["epoch_001.npz", "epoch_002.npz"]
            and [r.epoch for r in read_metrics(out / "metrics.jsonl")] == [1, 2]
        ),
        id="14.2-overwrite-starts-afresh",
    ),
    pytest.param(
        lambda out: ["--noise", "none", "--val-fraction", "0", "--overwrite"],
        _json_is_standard,
        id="14.9-nan-written-as-null",
    ),
]


@pytest.mark.parametrize("prepare, check", REPAIRS)
def test_repair(tmp_path, stopped_run, prepare, check):
    out = tmp_path / "run"
    shutil.copytree(stopped_run, out)
    assert cli.main([*MOONS, "--out", str(out), *prepare(out)]) == 0
    assert check(out)


# --------------------------------------------------------------------------- #
# FILES: make(tmp_path) writes a damaged file; returns it, the call that reads it and the error it raises.
# --------------------------------------------------------------------------- #
def _cifar(pixel=0, labels=(0, 1)):
    def make(tmp_path):
        data = np.zeros((len(labels), 3072), np.uint8 if pixel == 0 else type(pixel))
        data[-1, 5] = pixel
        path = _cifar100_test_batch(tmp_path, data, list(labels))
        read = functools.partial(load_cifar, tmp_path, "cifar100", "test")
        return path, read, DatasetFormatError

    return make


def _noise_cache(damage):
    def make(tmp_path):
        prepare_data(_config(tmp_path), confusion_fn=FakeCleanModel())
        (path,) = _cache_files(tmp_path)
        damage(tmp_path, path)

        def read():
            return prepare_data(_config(tmp_path), confusion_fn=FakeCleanModel())

        return path, read, NoiseCacheError

    return make


def _garbage(tmp_path, path):
    path.write_bytes(b"garbage")


def _other_recipe(tmp_path, path):
    prepare_data(_config(tmp_path, weight_decay=0.0), confusion_fn=FakeCleanModel())
    (other,) = set(_cache_files(tmp_path)) - {path}
    path.write_bytes(other.read_bytes())


def _object_arrays(tmp_path, path):
    payload = np.array([_Payload(tmp_path / "PWNED")], dtype=object)
    with open(path, "wb") as fh:
        np.savez(fh, scores=payload, key=payload)


def _file(name, make, message):
    return pytest.param(make, message, id=name)


FILES = [
    _file("14.5-cifar-pixel-300.7", _cifar(pixel=300.7), "pixel"),
    _file("14.5-cifar-pixel-minus-1", _cifar(pixel=-1.0), "pixel"),
    _file("14.5-cifar-label-0.7", _cifar(labels=(0, 0.7)), "integer class indices"),
    _file("14.17-cifar-label-100", _cifar(labels=(0, 100)), r"must lie in \[0, 100\)"),
    _file("14.17-cifar-string-labels", _cifar(labels=("3", "4")), "got strings"),
    _file("14.17-corrupt-noise-cache", _noise_cache(_garbage), "corrupt"),
    _file("14.3-cache-of-another-recipe", _noise_cache(_other_recipe), "another clean"),
    _file("16-cache-with-pickled-objects", _noise_cache(_object_arrays), "corrupt"),
]


@pytest.mark.parametrize("make, message", FILES)
def test_file(tmp_path, make, message):
    path, read, error = make(tmp_path)
    with pytest.raises(error, match=message) as info:
        read()
    assert str(path) in str(info.value)
    assert not (tmp_path / "PWNED").exists()


def test_every_item_of_the_table_has_a_row():
    """The items of issues 14 and 16 that this branch implements, each with at least one row."""
    rows = [p.id.split("-")[0] for table in (CORE, OPTIONS, FOLDERS, REPAIRS, FILES) for p in table]
    implemented = {f"14.{i}" for i in range(1, 19)} | {"16"}
    assert implemented <= set(rows), sorted(implemented - set(rows))
