"""The PyTorch trainer behind ``divweights-train --framework torch``.

:func:`train` runs one configuration end to end: data preparation, the
method's loss (:class:`divweights_torch.ReweightedLoss`), optional weighted
mixup, per-epoch evaluation on the clean test set and the noisy validation
split, JSON-lines metrics, an atomic checkpoint after every epoch and plots.

Reproducibility
---------------
Every random stream is derived from ``(seed, purpose, epoch)``
(:func:`divweights_train.prepare.derive_seed`): the model initialisation, the
order of the examples in each epoch, the augmentation, the mixup partners and
ratios, and dropout. A run that is killed in the middle of an epoch and
resumed from its last checkpoint replays that epoch exactly, and therefore
ends with the same metrics as an uninterrupted run (on the same device and
number of threads).
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from . import checkpoint as ckpt
from .config import TrainConfig, method_spec, parse_divergence, schedule_steps
from .metrics import EpochRecord, MetricsWriter, WeightStats, epoch_line, finish_run, summarize
from .prepare import PreparedData, derive_seed, epoch_permutation, prepare_data

__all__ = ["TrainResult", "build_loss", "train"]

CHECKPOINT_FORMAT = 1


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns.

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


#: steps between progress-bar loss updates (each one reads a value from the device)
_SYNC_EVERY = 50

def _torch_api():
    try:
        import divweights_torch as dwt
    except ImportError as err:  # pragma: no cover - the adapter ships with the package
        raise ImportError("the torch trainer needs the divweights_torch adapter") from err
    missing = [n for n in ("ReweightedLoss", "AnnealSchedule", "weighted_mixup") if not hasattr(dwt, n)]
    if missing:
        raise ImportError(f"divweights_torch lacks {', '.join(missing)}; is the adapter installed?")
    return dwt


def build_loss(config: TrainConfig, burnin_steps: int, anneal_steps: int):
    """The loss module of ``config.method`` (a ``divweights_torch.ReweightedLoss``).

    ``ce`` and ``mixup`` use uniform instance weights and no class
    reweighting; ``bootstrap`` uses class reweighting only (total variation
    by default: hard bootstrapping); the CIW methods add instance weights.
    The reweighting (instance and class) is off for ``burnin_steps`` and its
    strength is annealed over ``anneal_steps``.
    """
    dwt = _torch_api()
    spec = method_spec(config.method)
    cfg = config.resolved()
    kwargs: dict[str, Any] = {"reduction": "sum"}
    kwargs["instance"] = parse_divergence(cfg.instance_divergence) if spec.instance else None
    if spec.instance:
        if kwargs["instance"] is None:
            raise ValueError(f"method {cfg.method!r} needs an instance divergence, got 'none'")
        kwargs.update(cfg.strength())
    if spec.classes and cfg.class_gamma > 0:
        kwargs["classes"] = parse_divergence(cfg.class_divergence)
        kwargs["gamma"] = float(cfg.class_gamma)
    if spec.instance or spec.classes:
        kwargs["schedule"] = dwt.AnnealSchedule(burnin_steps, anneal_steps, start_factor=cfg.anneal_start_factor)
    return dwt.ReweightedLoss(**kwargs)


def model_kwargs(config: TrainConfig) -> dict:
    """Constructor keywords of the model from ``config.width``."""
    if config.width is None:
        return {}
    if config.model == "cnn":
        return {"width": int(config.width)}
    if config.model == "mlp":
        return {"hidden": (int(config.width), int(config.width))}
    raise ValueError(f"width is not supported for model {config.model!r}")


def _set_determinism(config: TrainConfig) -> None:
    if config.threads is not None:
        torch.set_num_threads(int(config.threads))
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    if str(config.device).startswith("cuda"):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)


def _device(config: TrainConfig) -> torch.device:
    dev = torch.device(config.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was requested but CUDA is not available")
    return dev


class _Tensors:
    """The prepared arrays as tensors on the training device."""

    def __init__(self, data: PreparedData, augment: str, device: torch.device):
        tr = data.train
        self.mean = tr.mean
        self.std = tr.std
        self.augment = augment if tr.is_image else "none"
        self.device = device
        x = torch.as_tensor(tr.x, device=device)
        # Without augmentation the inputs are normalised once; with it, per batch
        # (the crop pads with black pixels of the raw image).
        self.x_train = x if self.augment != "none" else self._norm(x)
        self.y_train = torch.as_tensor(tr.y, device=device)
        self.flipped = data.train_flipped.copy()
        # 1 for the examples whose label was not flipped (the oracle filter's weights, up to normalisation)
        self.kept = torch.as_tensor(~self.flipped, dtype=torch.float32, device=device)
        self.n = len(tr)
        self.x_val = None if data.val is None else self._norm(torch.as_tensor(data.val.x, device=device))
        self.y_val = None if data.val is None else torch.as_tensor(data.val.y, device=device)
        self.x_test = self._norm(torch.as_tensor(data.test.x, device=device))
        self.y_test = torch.as_tensor(data.test.y, device=device)

    def _norm(self, x):
        from .augment import normalize

        return normalize(x, self.mean, self.std)

    def batch(self, idx: torch.Tensor, generator: torch.Generator | None):
        x = self.x_train[idx]
        if self.augment != "none":
            from .augment import random_crop_flip

            pad = 4 if x.shape[-1] >= 32 else 2
            crop = self.augment in ("crop", "crop-flip")
            flip = self.augment in ("flip", "crop-flip")
            x = random_crop_flip(x, pad if crop else 0, generator=generator, flip=flip)
            x = self._norm(x)
        return x, self.y_train[idx]


def oracle_loss(logits: torch.Tensor, targets: torch.Tensor, kept: torch.Tensor):
    """Cross-entropy averaged over the examples with ``kept == 1`` (the perfect-filter reference).

    The adapter's uniform loss with the flipped rows set to ``ignore_index``.
    Returns ``(loss, weights)`` with ``weights = kept / sum(kept)``; a batch whose
    labels are all flipped contributes a zero loss (and zero gradient).
    """
    loss_fn = _torch_api().ReweightedLoss(None, reduction="sum")
    loss = loss_fn(logits, torch.where(kept > 0, targets, torch.full_like(targets, loss_fn.ignore_index)))
    return loss, loss_fn.last_weights


@torch.no_grad()
def _accuracy(model, x, y, batch_size: int) -> float:
    if x is None or len(x) == 0:
        return math.nan
    was_training = model.training
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        logits = model(x[i : i + batch_size])
        correct += int((logits.argmax(-1) == y[i : i + batch_size]).sum())
    model.train(was_training)
    return correct / len(x)


def _clean_pass_weights(loss_fn, logits, targets):
    """Weights of the clean batch, without advancing the loss's step counter."""
    if hasattr(loss_fn, "weights"):
        return loss_fn.weights(logits, targets).detach()
    saved = {k: v.clone() for k, v in loss_fn.state_dict().items()}
    with torch.no_grad():
        loss_fn(logits, targets)
    loss_fn.load_state_dict(saved)
    return loss_fn.last_weights.detach()


def _progress(config: TrainConfig, progress, total: int, desc: str):
    enabled = progress if progress is not None else (not config.quiet and sys.stderr.isatty())
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


def _confusion_scores_fn(config: TrainConfig, device: torch.device) -> Callable:
    """Train a quick clean-label model and return its softmax scores (instance noise)."""

    def fn(clean_train):
        from .models_torch import build_model
        from .augment import normalize

        torch.manual_seed(derive_seed(config.seed, "clean-model"))
        model = build_model(config.model, clean_train.input_shape, clean_train.num_classes, **model_kwargs(config)).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                              nesterov=config.nesterov and config.momentum > 0,
                              weight_decay=config.weight_decay)
        x = normalize(torch.as_tensor(clean_train.x, device=device), clean_train.mean, clean_train.std)
        y = torch.as_tensor(clean_train.y, device=device)
        for epoch in range(config.clean_model_epochs):
            order = torch.as_tensor(np.random.default_rng(derive_seed(config.seed, "clean-model", epoch))
                                    .permutation(len(y)), device=device)
            for i in range(0, len(y), config.batch_size):
                idx = order[i : i + config.batch_size]
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            probs = torch.cat([torch.softmax(model(x[i : i + 1000]), -1) for i in range(0, len(y), 1000)])
        return probs.cpu().numpy()

    return fn


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def train(config: TrainConfig, *, progress: bool | None = None, log: Callable[[str], None] | None = None) -> TrainResult:
    """Train one configuration; see the module docstring.

    Parameters
    ----------
    config : TrainConfig
        The run's options (automatic fields are resolved here).
    progress : bool, optional
        Show a tqdm bar per epoch; default: when stderr is a terminal and
        ``config.quiet`` is False.
    log : callable, optional
        Receives one line of text per epoch (default: print unless quiet).

    Returns
    -------
    TrainResult
    """
    cfg = config.resolved()
    if log is None:
        log = (lambda s: None) if cfg.quiet else (lambda s: print(s, flush=True))
    _set_determinism(cfg)
    device = _device(cfg)
    spec = method_spec(cfg.method)
    if cfg.mixup_mode is not None:
        spec = dataclasses.replace(spec, mixup=cfg.mixup_mode)
    if cfg.mixup_recompute is not None:
        spec = dataclasses.replace(spec, recompute_on_mixed=bool(cfg.mixup_recompute))
    dwt = _torch_api()

    out = Path(cfg.out) if cfg.out else Path("runs") / f"{cfg.dataset}-{cfg.method}-s{cfg.seed}"
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / ckpt.CHECKPOINT_NAME
    writer = MetricsWriter(out / "metrics.jsonl")

    data = prepare_data(cfg, confusion_fn=_confusion_scores_fn(cfg, device))
    tensors = _Tensors(data, cfg.augment, device)
    k = data.num_classes
    n = tensors.n
    batch_size = min(cfg.batch_size, n)
    steps_per_epoch = max(1, n // batch_size)  # the last incomplete batch is dropped
    burnin, anneal = schedule_steps(cfg, steps_per_epoch)

    from .models_torch import build_model

    torch.manual_seed(derive_seed(cfg.seed, "init"))
    model = build_model(cfg.model, data.train.input_shape, k, **model_kwargs(cfg)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                nesterov=cfg.nesterov and cfg.momentum > 0, weight_decay=cfg.weight_decay)
    loss_fn = build_loss(cfg, burnin, anneal).to(device)
    # Loss of the mixed batch when the weights are not recomputed on it:
    # uniform weights over the mixed examples (soft-target cross-entropy).
    mixed_loss_fn = dwt.ReweightedLoss(None, reduction="sum").to(device)

    records: list[EpochRecord] = []
    start_epoch, step, elapsed = 0, 0, 0.0
    if cfg.resume and ckpt_path.is_file():
        state = ckpt.load_torch(ckpt_path, map_location=device)
        saved = TrainConfig.from_dict(state["config"])
        diff = cfg.identity_diff(saved)
        if diff:
            raise ValueError(f"cannot resume {ckpt_path}: the options differ from the checkpoint's ({', '.join(diff)})")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        loss_fn.load_state_dict(state["loss"])
        _set_rng_state(state["rng"])
        start_epoch, step, elapsed = int(state["epoch"]), int(state["step"]), float(state["elapsed"])
        records = [EpochRecord.from_dict(r) for r in state["records"]]
        log(f"resuming {out} after epoch {start_epoch} (step {step})")
    elif cfg.resume:
        log(f"--resume: no checkpoint in {out}; starting from scratch")
    writer.rewrite(records)
    ckpt.write_run_description(out, cfg, data, steps_per_epoch=steps_per_epoch, burnin_steps=burnin,
                               anneal_steps=anneal)

    completed = True
    for epoch in range(start_epoch, cfg.epochs):
        if cfg.max_steps is not None and step >= cfg.max_steps:
            break
        if cfg.stop_after_epochs is not None and epoch >= cfg.stop_after_epochs:
            completed = False
            break
        t0 = time.perf_counter()
        lr = cfg.lr_at_epoch(epoch)
        model.train()
        loss_fn.train()
        torch.manual_seed(derive_seed(cfg.seed, "dropout", epoch))
        gen_aug = torch.Generator(device="cpu").manual_seed(derive_seed(cfg.seed, "augment", epoch))
        gen_mix = torch.Generator(device="cpu").manual_seed(derive_seed(cfg.seed, "mixup", epoch))
        order = torch.as_tensor(epoch_permutation(cfg.seed, epoch, n), device=device)
        stats = WeightStats(n)
        # Running sums stay on the device and per-batch weights are kept as device
        # tensors until the end of the epoch: no host synchronisation per step
        # (the progress bar reads the loss every `_SYNC_EVERY` steps).
        loss_acc = torch.zeros((), dtype=torch.float64, device=device)
        correct_acc = torch.zeros((), dtype=torch.int64, device=device)
        pending = []
        seen, batches = 0, 0
        bar = _progress(cfg, progress, steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}")
        for b in range(steps_per_epoch):
            if cfg.max_steps is not None and step >= cfg.max_steps:
                break
            idx = order[b * batch_size : (b + 1) * batch_size]
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr_at(epoch, step, steps_per_epoch)
            x, y = tensors.batch(idx, gen_aug)
            if spec.oracle:
                logits = model(x)
                loss, w = oracle_loss(logits, y, tensors.kept[idx])
            elif spec.mixup is None:
                logits = model(x)
                loss = loss_fn(logits, y)
                w = loss_fn.last_weights.detach()
            else:
                if spec.mixup == "plain":
                    logits0 = None
                    w = torch.full((len(idx),), 1.0 / len(idx), device=device)
                else:
                    with torch.no_grad():
                        logits0 = model(x)
                    w = _clean_pass_weights(loss_fn, logits0, y)
                mx, my, _ = dwt.weighted_mixup(
                    x, y, w, mode=spec.mixup, num_classes=k, power=cfg.mixup_power, alpha=cfg.mixup_alpha,
                    predictions=logits0, generator=gen_mix)
                logits = model(mx)
                if spec.recompute_on_mixed or spec.mixup == "plain":
                    loss = loss_fn(logits, my)
                else:
                    loss = mixed_loss_fn(logits, my)
                    loss_fn.step = loss_fn.step + 1  # keep the schedule's clock running
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            batches += 1
            loss_acc += loss.detach().double()
            if spec.mixup is None:
                correct_acc += (logits.detach().argmax(-1) == y).sum()
                seen += len(idx)
            elif logits0 is not None:
                correct_acc += (logits0.argmax(-1) == y).sum()
                seen += len(idx)
            pending.append((w.detach().float(), idx))
            if bar is not None:
                bar.update(1)
                if batches % _SYNC_EVERY == 0:
                    bar.set_postfix(loss=f"{float(loss_acc) / batches:.3f}")
        loss_sum = float(loss_acc)
        correct = int(correct_acc)
        if not math.isfinite(loss_sum):
            raise FloatingPointError(f"non-finite training loss in epoch {epoch + 1} (step {step})")
        for w_b, idx_b in pending:
            idx_np = idx_b.cpu().numpy()
            stats.add(w_b.cpu().numpy(), idx_np, tensors.flipped[idx_np])
        if bar is not None:
            bar.close()
        if cfg.max_steps is not None and step >= cfg.max_steps and batches < steps_per_epoch:
            completed = False  # a partial epoch (smoke runs)
        test_acc = _accuracy(model, tensors.x_test, tensors.y_test, cfg.eval_batch_size)
        val_acc = _accuracy(model, tensors.x_val, tensors.y_val, cfg.eval_batch_size)
        ws = stats.summary()
        reweighting = spec.oracle or ((spec.instance or spec.classes) and step > burnin)
        t1 = time.perf_counter()
        elapsed += t1 - t0
        rec = EpochRecord.from_epoch(
            epoch=epoch + 1, step=step, lr=lr, loss_sum=loss_sum, batches=batches, correct=correct, seen=seen,
            test_acc=test_acc, val_acc=val_acc, weights=ws, reweighting=reweighting,
            epoch_time=t1 - t0, elapsed=elapsed,
        )
        records.append(rec)
        if cfg.save_weights:
            ckpt.save_epoch_weights(out, epoch + 1, stats.arrays())
        state = {
            "format": CHECKPOINT_FORMAT,
            "config": cfg.to_dict(),
            "epoch": epoch + 1,
            "step": step,
            "elapsed": elapsed,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "loss": loss_fn.state_dict(),
            "rng": _rng_state(),
            "records": [r.to_dict() for r in records],
            "best": summarize(records),
        }
        ckpt.save_torch(ckpt_path, state)
        writer.append(rec)
        log(epoch_line(rec, lr))

    summary = finish_run(cfg, records, completed, out)
    return TrainResult(config=cfg, records=records, summary=summary, out_dir=out)
