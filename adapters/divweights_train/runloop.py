"""One training run, whatever the framework: :func:`run` and the :class:`Backend` it drives.

:func:`run` owns everything that does not depend on the framework: the
output folder (checked and locked, :class:`~divweights_train.runfolder.RunFolder`),
resumption, the data (:func:`~divweights_train.prepare.prepare_data`), the
epochs and their example orders, the per-epoch records and weight files,
the checkpoints (:mod:`~divweights_train.checkpoint`), the progress display
(:class:`~divweights_train.progress.RunProgress`) and the summary. A backend
(:class:`divweights_train.trainer_torch.TorchBackend`,
:class:`divweights_train.trainer_jax.JaxBackend`) implements only the
framework's part: build the model and optimiser (:meth:`Backend.init`), train
one epoch (:meth:`Backend.train_epoch`), evaluate (:meth:`Backend.evaluate`)
and hand over or take back its state for the checkpoint
(:meth:`Backend.state`, :meth:`Backend.load_state`).

Reproducibility
---------------
Every random stream is derived from ``(seed, purpose, epoch)``
(:func:`divweights_train.prepare.derive_seed`): the model initialisation, the
order of the examples in each epoch (drawn here), and in the backends the
augmentation, the mixup partners and ratios, and dropout. A run killed at any
moment and resumed from its last checkpoint replays the interrupted epoch
exactly and ends with the same metrics as an uninterrupted run (on the same
device and number of threads).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import checkpoint as ckpt
from .config import MethodSpec, TrainConfig, anneal_schedule, method_spec
from .errors import CheckpointError, DiskFullError
from .metrics import (
    EpochRecord,
    MetricsWriter,
    WeightStats,
    epoch_line,
    finish_run,
    summarize,
)
from .prepare import PreparedData, epoch_permutation, prepare_data, stream_order
from .progress import RunProgress
from .runfolder import RunFolder

__all__ = [
    "Backend",
    "Epoch",
    "EpochOutput",
    "RunPlan",
    "TrainResult",
    "model_kwargs",
    "run",
    "run_method",
]


@dataclasses.dataclass
class TrainResult:
    """What :func:`run` (and each framework's ``train``) returns.

    Attributes
    ----------
    config : TrainConfig
        The resolved configuration.
    records : list of EpochRecord
        One per completed epoch (including epochs done before a resume).
    summary : dict
        :func:`divweights_train.metrics.summarize` of the records, plus
        ``completed`` (False when stopped early by ``stop_after_epochs``).
    out_dir : pathlib.Path
    """

    config: TrainConfig
    records: list
    summary: dict
    out_dir: Path


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """Sizes of a run, known once the data is prepared."""

    num_examples: int
    num_classes: int
    batch_size: int
    #: the last incomplete batch of an epoch is dropped; with ``eval_every``: the steps of a period
    steps_per_epoch: int
    burnin_steps: int
    anneal_steps: int
    #: strength factor at the end of the burn-in (:func:`~divweights_train.config.anneal_schedule`;
    #: None: the config's ``anneal_start_factor``)
    anneal_start_factor: float | None = None

    def start_factor(self, config: TrainConfig) -> float:
        """The annealing's start factor of this run."""
        if self.anneal_start_factor is None:
            return float(config.anneal_start_factor)
        return float(self.anneal_start_factor)


@dataclasses.dataclass(frozen=True)
class Epoch:
    """One epoch to train (the argument of :meth:`Backend.train_epoch`).

    Attributes
    ----------
    index : int
        0-based epoch number (seeds the epoch's random streams); with
        ``eval_every``, the number of the evaluation period.
    order : numpy.ndarray
        Permutation of the training examples (with ``eval_every``: the
        period's slice of the continuous example stream,
        :func:`~divweights_train.prepare.stream_order`); batch ``b`` is
        ``order[b * batch_size:(b + 1) * batch_size]``.
    first_step : int
        Global number of the epoch's first optimisation step.
    batches : int
        Steps to take (fewer than an epoch's when ``max_steps`` ends the run).
    """

    index: int
    order: np.ndarray
    first_step: int
    batches: int


@dataclasses.dataclass
class EpochOutput:
    """What :meth:`Backend.train_epoch` hands back.

    Attributes
    ----------
    loss_sum : float
        Sum over the batches of the (reweighted) training loss.
    batches : int
        Optimisation steps done.
    correct, seen : int
        Correct predictions against the noisy labels, and the examples
        counted (0 for plain mixup, which has no clean forward pass).
    weights : list of (numpy.ndarray, numpy.ndarray)
        Per batch: the instance weights (on the simplex) and the dataset
        indices of its examples.
    """

    loss_sum: float
    batches: int
    correct: int
    seen: int
    weights: list


def model_kwargs(config: TrainConfig) -> dict:
    """Constructor keywords of the model (either framework's ``build_model``) from ``config.width``."""
    if config.width is None:
        return {}
    if config.model == "cnn":
        return {"width": int(config.width)}
    if config.model == "mlp":
        return {"hidden": (int(config.width), int(config.width))}
    raise ValueError(f"width is not supported for model {config.model!r}")


def run_method(config: TrainConfig) -> MethodSpec:
    """The method's :class:`~divweights_train.config.MethodSpec` with the config's mixup overrides."""
    spec = method_spec(config.method)
    if config.mixup_mode is not None:
        spec = dataclasses.replace(spec, mixup=config.mixup_mode)
    if config.mixup_recompute is not None:
        spec = dataclasses.replace(spec, recompute_on_mixed=bool(config.mixup_recompute))
    return spec


class Backend:
    """The framework's part of a run; :func:`run` calls the methods in this order.

    ``__init__(config)`` gets the resolved configuration and checks the
    device (before any file is touched); :meth:`clean_model_scores` may be
    called while the data is prepared; then :meth:`init`, optionally
    :meth:`load_state`, and per epoch :meth:`train_epoch`, :meth:`evaluate`
    and :meth:`state`.

    Attributes
    ----------
    framework : str
        ``--framework`` value (recorded in the checkpoint).
    checkpoint_name : str
        File name of the checkpoint in the run folder.
    checkpoint_kind : str
        ``"torch"`` or ``"npz"`` (:func:`divweights_train.checkpoint.save_checkpoint`).
    legacy_checkpoint_names : tuple of str
        Checkpoints of earlier versions that are refused, never loaded.
    map_location : object
        Where a torch checkpoint's tensors are loaded.
    """

    framework = ""
    checkpoint_name = ""
    checkpoint_kind = ""
    legacy_checkpoint_names: tuple[str, ...] = ()
    map_location = "cpu"

    def __init__(self, config: TrainConfig):
        self.config = config
        self.method = run_method(config)

    def clean_model_scores(self, clean_train) -> np.ndarray:  # pragma: no cover - interface
        """Softmax scores ``(n, k)`` of a quick clean-label model (for instance-dependent noise)."""
        raise NotImplementedError

    def init(self, data: PreparedData, plan: RunPlan) -> None:  # pragma: no cover - interface
        """Move the data to the device; build the model, optimiser and loss."""
        raise NotImplementedError

    def train_epoch(self, epoch: Epoch, progress: RunProgress) -> EpochOutput:  # pragma: no cover - interface
        """Train on the batches of ``epoch``, calling ``progress.advance`` once per step."""
        raise NotImplementedError

    def evaluate(self, split: str) -> float:  # pragma: no cover - interface
        """Accuracy on ``"test"`` (clean) or ``"val"`` (noisy; nan without a validation split)."""
        raise NotImplementedError

    def state(self) -> dict:  # pragma: no cover - interface
        """Everything needed to continue exactly (model, optimiser, loss, random states)."""
        raise NotImplementedError

    def load_state(self, state: dict) -> None:  # pragma: no cover - interface
        """Restore :meth:`state` (after :meth:`init`)."""
        raise NotImplementedError


def _out_dir(cfg: TrainConfig) -> str | Path:
    return cfg.out if cfg.out is not None else Path("runs") / f"{cfg.dataset}-{cfg.method}-s{cfg.seed}"


def _read_checkpoint(folder: RunFolder, backend: Backend, cfg: TrainConfig, say) -> tuple[dict, dict] | None:
    """``(meta, state)`` to resume from, or None to start afresh; any problem is an error before training."""
    path = folder.path / backend.checkpoint_name
    if not path.exists():
        for name in backend.legacy_checkpoint_names:
            if (folder.path / name).exists():  # refused without being read (a pickle)
                ckpt.load_checkpoint(
                    folder.path / name,
                    kind=backend.checkpoint_kind,
                    framework=backend.framework,
                )
        if (folder.path / "config.json").is_file():
            diff = cfg.identity_diff(
                TrainConfig.from_dict(
                    json.loads((folder.path / "config.json").read_text())
                ).resolved()  # options added since the folder was written: their defaults
            )
            if diff:
                raise CheckpointError(
                    f"cannot resume {folder.path}: it holds a run with other options "
                    f"({', '.join(diff)}); use its options, --overwrite or another --out"
                )
        say(f"--resume: no checkpoint in {folder.path}; starting from scratch")
        return None
    meta, state = ckpt.load_checkpoint(
        path,
        kind=backend.checkpoint_kind,
        framework=backend.framework,
        map_location=backend.map_location,
    )
    diff = cfg.identity_diff(TrainConfig.from_dict(meta["config"]).resolved())
    if diff:
        raise CheckpointError(f"cannot resume {path}: the options differ from the checkpoint's ({', '.join(diff)})")
    return meta, state


def run(
    config: TrainConfig,
    backend_cls: Callable[[TrainConfig], Backend],
    *,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train one configuration with a framework's backend; see the module docstring.

    Parameters
    ----------
    config : TrainConfig
        The run's options (automatic fields are resolved here).
    backend_cls : callable
        ``backend_cls(resolved_config)`` gives the :class:`Backend`.
    progress : bool, optional
        Show a progress bar; default: when standard output is a terminal and
        ``config.quiet`` is False (:class:`~divweights_train.progress.RunProgress`).
    log : callable, optional
        Receives one line of text per epoch (default: print unless quiet).

    Returns
    -------
    TrainResult

    Raises
    ------
    divweights_train.errors.UsageError
        (a ValueError) for a folder, checkpoint or device that cannot be
        used, before any training.
    divweights_train.errors.DiskFullError
        (an OSError) when a file cannot be written for want of space; the
        files written before, the last checkpoint included, are intact.
    """
    cfg = config.resolved()
    backend = backend_cls(cfg)
    show = RunProgress(
        label=f"{cfg.dataset}/{cfg.method} s{cfg.seed}",
        epochs=cfg.epochs,
        show=progress,
        quiet=cfg.quiet,
        log=log,
    )
    checkpointed = [None]  # epoch of the last checkpoint in the folder (None: none yet)
    try:
        return _run_in_folder(cfg, backend, show, checkpointed)
    except OSError as err:
        if err.errno not in ckpt.FULL_DISK_ERRNOS or isinstance(err, DiskFullError):
            raise
        out = _out_dir(cfg)
        raise _disk_full(err, out, Path(out) / backend.checkpoint_name, checkpointed[0]) from err


def _disk_full(err: OSError, out, checkpoint: Path, epoch: int | None) -> DiskFullError:
    """The one-line error of a write that failed for want of space in the run folder ``out``."""
    where = f"cannot write {err.filename}" if err.filename else f"cannot write to {out}"
    if epoch:
        kept = f"its checkpoint of epoch {epoch} is intact"
    elif checkpoint.is_file():  # the disk filled before the checkpoint was read
        kept = f"its checkpoint {checkpoint.name} is intact"
    else:
        kept = "no epoch had been checkpointed yet"
    return DiskFullError(
        err.errno,
        f"{where}: {err.strerror or 'no space left'}; the run in {out} stopped and "
        f"{kept}: free some space and continue with --resume (same options)",
        err.filename,
    )


def _run_in_folder(cfg: TrainConfig, backend: Backend, show: RunProgress, checkpointed: list) -> TrainResult:
    """The body of :func:`run`; ``checkpointed[0]`` follows the epoch of the folder's checkpoint."""
    method = backend.method
    with RunFolder.open(_out_dir(cfg), resume=cfg.resume, overwrite=cfg.overwrite) as folder:
        out = folder.path
        saved = _read_checkpoint(folder, backend, cfg, show.line) if cfg.resume else None

        data = prepare_data(cfg, confusion_fn=backend.clean_model_scores)
        n = len(data.train)
        batch_size = min(cfg.batch_size, n)
        # with eval_every an "epoch" is an evaluation period of that many steps
        steps_per_epoch = cfg.eval_every or max(1, n // batch_size)
        burnin, anneal, start_factor = anneal_schedule(cfg, steps_per_epoch)
        backend.init(
            data,
            RunPlan(
                n,
                data.num_classes,
                batch_size,
                steps_per_epoch,
                burnin,
                anneal,
                start_factor,
            ),
        )

        records: list[EpochRecord] = []
        start_epoch, step, elapsed = 0, 0, 0.0
        if saved is not None:
            meta, state = saved
            backend.load_state(state)
            start_epoch, step, elapsed = (
                int(meta["epoch"]),
                int(meta["step"]),
                float(meta["elapsed"]),
            )
            records = [EpochRecord.from_dict(r) for r in meta["records"]]
            checkpointed[0] = start_epoch
            show.line(f"resuming {out} after epoch {start_epoch} (step {step})")
        folder.remove_weight_files_after(start_epoch)
        writer = MetricsWriter(out / "metrics.jsonl")
        writer.rewrite(records)
        ckpt.write_run_description(
            out,
            cfg,
            data,
            steps_per_epoch=steps_per_epoch,
            burnin_steps=burnin,
            anneal_steps=anneal,
            anneal_start_factor=start_factor,
        )

        total = (
            cfg.epochs * steps_per_epoch if cfg.max_steps is None else min(cfg.max_steps, cfg.epochs * steps_per_epoch)
        )
        show.begin(start_step=step, total_steps=total)
        completed = True
        try:
            for epoch in range(start_epoch, cfg.epochs):
                if cfg.max_steps is not None and step >= cfg.max_steps:
                    break
                if cfg.stop_after_epochs is not None and epoch >= cfg.stop_after_epochs:
                    completed = False
                    break
                t0 = time.perf_counter()
                lr = cfg.lr_at_step(epoch, step)
                batches = steps_per_epoch if cfg.max_steps is None else min(steps_per_epoch, cfg.max_steps - step)
                show.start_epoch(epoch)
                if cfg.eval_every:
                    order = stream_order(
                        cfg.seed,
                        n,
                        epoch * steps_per_epoch * batch_size,
                        batches * batch_size,
                    )
                else:
                    order = epoch_permutation(cfg.seed, epoch, n)
                res = backend.train_epoch(Epoch(epoch, order, step, batches), show)
                step += res.batches
                if not math.isfinite(res.loss_sum):
                    raise FloatingPointError(f"non-finite training loss in epoch {epoch + 1} (by step {step})")
                stats = WeightStats(n)
                for w, idx in res.weights:
                    stats.add(w, idx, data.train_flipped[idx])
                if res.batches < steps_per_epoch:
                    completed = False  # a partial epoch (smoke runs)
                test_acc, val_acc = backend.evaluate("test"), backend.evaluate("val")
                reweighting = method.oracle or ((method.instance or method.classes) and step > burnin)
                t1 = time.perf_counter()
                elapsed += t1 - t0
                rec = EpochRecord.from_epoch(
                    epoch=epoch + 1,
                    step=step,
                    lr=lr,
                    loss_sum=res.loss_sum,
                    batches=res.batches,
                    correct=res.correct,
                    seen=res.seen,
                    test_acc=test_acc,
                    val_acc=val_acc,
                    weights=stats.summary(),
                    reweighting=reweighting,
                    epoch_time=t1 - t0,
                    elapsed=elapsed,
                )
                records.append(rec)
                if cfg.save_weights:
                    ckpt.save_epoch_weights(out, epoch + 1, stats.arrays())
                meta = {
                    "framework": backend.framework,
                    "config": cfg.to_dict(),
                    "epoch": epoch + 1,
                    "step": step,
                    "elapsed": elapsed,
                    "records": [r.to_dict() for r in records],
                    "best": summarize(records),
                }
                ckpt.save_checkpoint(
                    out / backend.checkpoint_name,
                    meta,
                    backend.state(),
                    kind=backend.checkpoint_kind,
                )
                checkpointed[0] = epoch + 1
                writer.append(rec)
                show.end_epoch(epoch_line(rec, lr, cfg.epochs), epoch=epoch + 1, seconds=t1 - t0)
        finally:
            show.close()
        summary = finish_run(cfg, records, completed, out)
    return TrainResult(config=cfg, records=records, summary=summary, out_dir=out)
