"""The PyTorch backend behind ``divweights-train --framework torch``.

:func:`train` runs one configuration end to end through the
framework-neutral loop (:func:`divweights_train.runloop.run`: output folder,
resumption, records, checkpoints, summary); :class:`TorchBackend` supplies the
PyTorch part: the method's loss (:class:`divweights_torch.ReweightedLoss`),
optional weighted mixup, SGD, evaluation, and the state of the model, the
optimiser, the loss's step counter and every random generator for the
checkpoint (tensors and plain values only, read back with
``torch.load(..., weights_only=True)``).

Within an epoch no value is read back from the device per step: running
sums stay on the device and the instance weights are collected at the end of
the epoch (the progress bar, when shown, reads the running loss and accuracy
every :data:`~divweights_train.progress.SYNC_EVERY` steps).
"""

from __future__ import annotations

import functools
import os
import random
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import runloop
from .config import TrainConfig, method_spec, parse_divergence
from .errors import UsageError
from .prepare import PreparedData, derive_seed
from .progress import RunProgress
from .runloop import TrainResult, model_kwargs

__all__ = [
    "TorchBackend",
    "TrainResult",
    "build_loss",
    "model_kwargs",
    "oracle_loss",
    "train",
]


def _torch_api():
    try:
        import divweights_torch as dwt
    except ImportError as err:  # pragma: no cover - the adapter ships with the package
        raise ImportError(
            "the torch trainer needs the divweights_torch adapter"
        ) from err
    missing = [
        n
        for n in ("ReweightedLoss", "AnnealSchedule", "weighted_mixup")
        if not hasattr(dwt, n)
    ]
    if missing:
        raise ImportError(
            f"divweights_torch lacks {', '.join(missing)}; is the adapter installed?"
        )
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
    kwargs["instance"] = (
        parse_divergence(cfg.instance_divergence) if spec.instance else None
    )
    if spec.instance:
        if kwargs["instance"] is None:
            raise ValueError(
                f"method {cfg.method!r} needs an instance divergence, got 'none'"
            )
        kwargs.update(cfg.strength())
    if spec.classes and (cfg.class_gamma == "auto" or cfg.class_gamma > 0):
        kwargs["classes"] = parse_divergence(cfg.class_divergence)
        kwargs["gamma"] = cfg.class_gamma if cfg.class_gamma == "auto" else float(cfg.class_gamma)
    if spec.instance or spec.classes:
        kwargs["schedule"] = dwt.AnnealSchedule(
            burnin_steps, anneal_steps, start_factor=cfg.anneal_start_factor
        )
    return dwt.ReweightedLoss(**kwargs)


def oracle_loss(logits: torch.Tensor, targets: torch.Tensor, kept: torch.Tensor):
    """Cross-entropy averaged over the examples with ``kept == 1`` (the perfect-filter reference).

    The adapter's uniform loss with the flipped rows set to ``ignore_index``.
    Returns ``(loss, weights)`` with ``weights = kept / sum(kept)``; a batch whose
    labels are all flipped contributes a zero loss (and zero gradient).
    """
    loss_fn = _torch_api().ReweightedLoss(None, reduction="sum")
    loss = loss_fn(
        logits,
        torch.where(kept > 0, targets, torch.full_like(targets, loss_fn.ignore_index)),
    )
    return loss, loss_fn.last_weights


class _Tensors:
    """The prepared arrays as tensors on the training device."""

    def __init__(self, data: PreparedData, augment: str, device: torch.device):
        tr = data.train
        self.mean = tr.mean
        self.std = tr.std
        self.augment = augment if tr.is_image else "none"
        x = torch.as_tensor(tr.x, device=device)
        # Without augmentation the inputs are normalised once; with it, per batch
        # (the crop pads with black pixels of the raw image).
        self.x_train = x if self.augment != "none" else self._norm(x)
        self.y_train = torch.as_tensor(tr.y, device=device)
        # 1 for the examples whose label was not flipped (the oracle filter's weights, up to normalisation)
        self.kept = torch.as_tensor(
            ~data.train_flipped, dtype=torch.float32, device=device
        )
        self.x_val = (
            None
            if data.val is None
            else self._norm(torch.as_tensor(data.val.x, device=device))
        )
        self.y_val = (
            None if data.val is None else torch.as_tensor(data.val.y, device=device)
        )
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


@torch.no_grad()
def _accuracy(model, x, y, batch_size: int) -> float:
    if x is None or len(x) == 0:
        return float("nan")
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


def _sgd(config: TrainConfig, params):
    return torch.optim.SGD(
        params,
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov and config.momentum > 0,
        weight_decay=config.weight_decay,
    )


def _rng_state() -> dict:
    """Every global generator's state as tensors and plain values (``weights_only``-loadable)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"].cpu())
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(
        (
            n["kind"],
            n["keys"].cpu().numpy().astype(np.uint32),
            n["pos"],
            n["has_gauss"],
            n["cached_gaussian"],
        )
    )
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _running(loss_acc, correct_acc, batches: int, seen: int) -> tuple[float, float]:
    """Mean loss and accuracy of the epoch so far, from the device's running sums (waits for the device)."""
    return float(loss_acc) / batches, float(correct_acc) / max(seen, 1)


class TorchBackend(runloop.Backend):
    """The PyTorch part of a run (:class:`divweights_train.runloop.Backend`)."""

    framework = "torch"
    checkpoint_name = "checkpoint.pt"
    checkpoint_kind = "torch"

    def __init__(self, config: TrainConfig):
        super().__init__(config)
        if config.threads is not None:
            torch.set_num_threads(int(config.threads))
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        if str(config.device).startswith("cuda"):
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        self.device = torch.device(config.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise UsageError(
                "--device cuda was requested but CUDA is not available; use --device cpu"
            )
        self.map_location = self.device
        self.dwt = _torch_api()

    def clean_model_scores(self, clean_train) -> np.ndarray:
        """Softmax scores of a quick clean-label model (plain cross-entropy; for instance-dependent noise)."""
        from .augment import normalize
        from .models_torch import build_model

        cfg, device = self.config, self.device
        torch.manual_seed(derive_seed(cfg.seed, "clean-model"))
        model = build_model(
            cfg.model,
            clean_train.input_shape,
            clean_train.num_classes,
            **model_kwargs(cfg),
        )
        model = model.to(device)
        opt = _sgd(cfg, model.parameters())
        x = normalize(
            torch.as_tensor(clean_train.x, device=device),
            clean_train.mean,
            clean_train.std,
        )
        y = torch.as_tensor(clean_train.y, device=device)
        for epoch in range(cfg.clean_model_epochs):
            perm = np.random.default_rng(
                derive_seed(cfg.seed, "clean-model", epoch)
            ).permutation(len(y))
            order = torch.as_tensor(perm, device=device)
            for i in range(0, len(y), cfg.batch_size):
                idx = order[i : i + cfg.batch_size]
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            probs = torch.cat(
                [
                    torch.softmax(model(x[i : i + 1000]), -1)
                    for i in range(0, len(y), 1000)
                ]
            )
        return probs.cpu().numpy()

    def init(self, data: PreparedData, plan: runloop.RunPlan) -> None:
        from .models_torch import build_model

        cfg, device = self.config, self.device
        self.plan = plan
        self.tensors = _Tensors(data, cfg.augment, device)
        torch.manual_seed(derive_seed(cfg.seed, "init"))
        self.model = build_model(
            cfg.model, data.train.input_shape, plan.num_classes, **model_kwargs(cfg)
        ).to(device)
        self.optimizer = _sgd(cfg, self.model.parameters())
        self.loss_fn = build_loss(cfg, plan.burnin_steps, plan.anneal_steps).to(device)
        # Loss of the mixed batch when the weights are not recomputed on it:
        # uniform weights over the mixed examples (soft-target cross-entropy).
        self.mixed_loss_fn = self.dwt.ReweightedLoss(None, reduction="sum").to(device)

    def _forward(self, x, y, idx, gen_mix):
        """Loss, instance weights, and the logits scored against ``y`` (None for plain mixup)."""
        spec, model, loss_fn = self.method, self.model, self.loss_fn
        if spec.oracle:
            logits = model(x)
            loss, w = oracle_loss(logits, y, self.tensors.kept[idx])
            return loss, w, logits
        if spec.mixup is None:
            logits = model(x)
            return loss_fn(logits, y), loss_fn.last_weights.detach(), logits
        if spec.mixup == "plain":
            logits0 = None
            w = torch.full((len(idx),), 1.0 / len(idx), device=self.device)
        else:
            with torch.no_grad():
                logits0 = model(x)
            w = _clean_pass_weights(loss_fn, logits0, y)
        mx, my, _ = self.dwt.weighted_mixup(
            x,
            y,
            w,
            mode=spec.mixup,
            num_classes=self.plan.num_classes,
            power=self.config.mixup_power,
            alpha=self.config.mixup_alpha,
            predictions=logits0,
            generator=gen_mix,
        )
        logits = model(mx)
        if spec.recompute_on_mixed or spec.mixup == "plain":
            return loss_fn(logits, my), w, logits0
        loss = self.mixed_loss_fn(logits, my)
        loss_fn.step = loss_fn.step + 1  # keep the schedule's clock running
        return loss, w, logits0

    def train_epoch(
        self, epoch: runloop.Epoch, progress: RunProgress
    ) -> runloop.EpochOutput:
        cfg, plan, device, e = self.config, self.plan, self.device, epoch.index
        self.model.train()
        self.loss_fn.train()
        torch.manual_seed(derive_seed(cfg.seed, "dropout", e))
        gen_aug = torch.Generator(device="cpu").manual_seed(
            derive_seed(cfg.seed, "augment", e)
        )
        gen_mix = torch.Generator(device="cpu").manual_seed(
            derive_seed(cfg.seed, "mixup", e)
        )
        order_t = torch.as_tensor(epoch.order, device=device)
        loss_acc = torch.zeros((), dtype=torch.float64, device=device)
        correct_acc = torch.zeros((), dtype=torch.int64, device=device)
        pending, seen = [], 0
        for b in range(epoch.batches):
            idx = order_t[b * plan.batch_size : (b + 1) * plan.batch_size]
            for group in self.optimizer.param_groups:
                group["lr"] = cfg.lr_at(e, epoch.first_step + b, plan.steps_per_epoch)
            x, y = self.tensors.batch(idx, gen_aug)
            loss, w, scored = self._forward(x, y, idx, gen_mix)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss_acc += loss.detach().double()
            if scored is not None:
                correct_acc += (scored.detach().argmax(-1) == y).sum()
                seen += len(idx)
            pending.append((w.detach().float(), idx))
            progress.advance(
                functools.partial(_running, loss_acc, correct_acc, b + 1, seen)
            )
        weights = [(w.cpu().numpy(), idx.cpu().numpy()) for w, idx in pending]
        return runloop.EpochOutput(
            float(loss_acc), epoch.batches, int(correct_acc), seen, weights
        )

    def evaluate(self, split: str) -> float:
        t = self.tensors
        x, y = (t.x_test, t.y_test) if split == "test" else (t.x_val, t.y_val)
        return _accuracy(self.model, x, y, self.config.eval_batch_size)

    def state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "loss": self.loss_fn.state_dict(),
            "rng": _rng_state(),
        }

    def load_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.loss_fn.load_state_dict(state["loss"])
        _set_rng_state(state["rng"])


def train(
    config: TrainConfig, *, progress: bool | None = None, log=None
) -> TrainResult:
    """Train one configuration with PyTorch: :func:`divweights_train.runloop.run` with :class:`TorchBackend`.

    ``progress`` (a bar; default: on a terminal unless quiet) and ``log`` (a
    sink for the per-epoch lines) are passed on; returns the
    :class:`~divweights_train.runloop.TrainResult`.
    """
    return runloop.run(config, TorchBackend, progress=progress, log=log)
