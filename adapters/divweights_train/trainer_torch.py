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

The loss modules (the method's, the robust baselines', the oracle's) are built
in :mod:`divweights_train.torch_loss` and re-exported here.
"""

from __future__ import annotations

import functools
import math
import os
import random

import numpy as np
import torch
import torch.nn.functional as F

from . import runloop
from .config import BASELINE_LOSSES, TrainConfig, smoothing_floor
from .errors import UsageError
from .prepare import PreparedData, derive_seed
from .progress import RunProgress
from .runloop import TrainResult, model_kwargs
from .torch_loss import (
    _clean_pass_weights,
    _torch_api,
    build_baseline_loss,
    build_loss,
    noise_posterior,
    oracle_loss,
)

__all__ = [
    "TorchBackend",
    "TrainResult",
    "build_baseline_loss",
    "build_loss",
    "model_kwargs",
    "oracle_loss",
    "train",
]


class _Tensors:
    """The prepared arrays as tensors on the training device."""

    def __init__(
        self,
        data: PreparedData,
        augment: str,
        device: torch.device,
        crop_pad: int | None = None,
    ):
        tr = data.train
        self.crop_pad = crop_pad
        self.mean = tr.mean
        self.std = tr.std
        self.augment = augment if tr.is_image else "none"
        x = torch.as_tensor(tr.x, device=device)
        # Without augmentation the inputs are normalised once; with it, per batch
        # (the crop pads with black pixels of the raw image).
        self.x_train = x if self.augment != "none" else self._norm(x)
        self.y_train = torch.as_tensor(tr.y, device=device)
        # 1 for the examples whose label was not flipped (the oracle filter's weights, up to normalisation)
        self.kept = torch.as_tensor(~data.train_flipped, dtype=torch.float32, device=device)
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

            pad = self.crop_pad
            if pad is None:
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
            raise UsageError("--device cuda was requested but CUDA is not available; use --device cpu")
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
            perm = np.random.default_rng(derive_seed(cfg.seed, "clean-model", epoch)).permutation(len(y))
            order = torch.as_tensor(perm, device=device)
            for i in range(0, len(y), cfg.batch_size):
                idx = order[i : i + cfg.batch_size]
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            probs = torch.cat([torch.softmax(model(x[i : i + 1000]), -1) for i in range(0, len(y), 1000)])
        return probs.cpu().numpy()

    def init(self, data: PreparedData, plan: runloop.RunPlan) -> None:
        from .models_torch import build_model

        cfg, device = self.config, self.device
        self.plan = plan
        self.tensors = _Tensors(data, cfg.augment, device, cfg.crop_pad)
        torch.manual_seed(derive_seed(cfg.seed, "init"))
        self.model = build_model(cfg.model, data.train.input_shape, plan.num_classes, **model_kwargs(cfg)).to(device)
        self.optimizer = _sgd(cfg, self.model.parameters())
        if self.method.loss in BASELINE_LOSSES:
            self.loss_fn = build_baseline_loss(cfg).to(device)
        else:
            self.loss_fn = build_loss(cfg, plan.burnin_steps, plan.anneal_steps, plan.start_factor(cfg)).to(device)
        # Loss of the mixed batch when the weights are not recomputed on it:
        # uniform weights over the mixed examples (soft-target cross-entropy).
        self.mixed_loss_fn = self.dwt.ReweightedLoss(None, reduction="sum").to(device)
        self.published_mixup = cfg.mixup_rule == "published"
        if self.method.loss == "dynamic-mixup":
            from .bmm import uniform_fit

            # Dynamic Mixup's per-example state: the latest clean-pass loss of every
            # training example (and whether it was seen), and the epoch's beta mixture.
            self.dm_losses = np.zeros(plan.num_examples, np.float32)
            self.dm_seen = np.zeros(plan.num_examples, bool)
            self._set_fit(uniform_fit(), fitted=False)

    def _set_fit(self, fit, *, fitted: bool) -> None:
        self.dm_fit, self.dm_fitted = fit, fitted
        self.dm_table = torch.as_tensor(fit.table, device=self.device)

    def _mix(self, x, y, w, mode, logits0, gen_mix):
        r"""Weighted mixup of ``(x, y)``: the adapter's rule, or the published one (``mixup_rule``).

        The adapter's weight ratio (modes ``weight``, ``sample_weight``) is the weighted Beta draw
        :math:`\mathrm{Beta}(2\alpha\rho, 2\alpha(1-\rho))`, :math:`\rho = w_i / (w_i + w_j)`; the published
        rule keeps the deterministic :math:`\rho` of :math:`w^m` (:func:`divweights.mixup.weighted_beta_parameters`).
        """
        cfg, k = self.config, self.plan.num_classes
        if self.published_mixup and mode != "plain":
            from .protocol import mixing_weights, published_smoothing

            mw = mixing_weights(w.float(), cfg.mixup_power)
            if mode == "label_smoothing":
                s = published_smoothing(mw)[:, None]
                onehot = F.one_hot(y, k).float()
                pred = F.one_hot(logits0.argmax(-1), k).float()
                soft = s * onehot + (1 - s) * pred
                return self.dwt.weighted_mixup(
                    x,
                    soft,
                    None,
                    mode="plain",
                    alpha=cfg.mixup_alpha,
                    generator=gen_mix,
                )[:2]
            # the published ratio: r_i = mw_i / (mw_i + mw_j), deterministic
            return self.dwt.weighted_mixup(
                x,
                y,
                mw,
                mode=mode,
                num_classes=k,
                power=1.0,
                alpha=cfg.mixup_alpha,
                generator=gen_mix,
                weight_ratio="deterministic",
            )[:2]
        return self.dwt.weighted_mixup(
            x,
            y,
            w,
            mode=mode,
            num_classes=k,
            power=cfg.mixup_power,
            alpha=cfg.mixup_alpha,
            predictions=logits0,
            generator=gen_mix,
            # CIW-M: every label keeps the share that stops a wrong prediction from feeding itself
            smoothing_floor=(
                smoothing_floor(cfg.noise, cfg.dataset, cfg.mixup_rule, k) if mode == "label_smoothing" else 0.0
            ),
        )[:2]

    def _forward(self, x, y, idx, gen_mix, step: int):
        """Loss, instance weights, the logits scored against ``y`` (None for plain mixup), and the
        per-example clean losses (Dynamic Mixup only, else None)."""
        spec, model, loss_fn = self.method, self.model, self.loss_fn
        n = len(idx)
        if spec.oracle:
            logits = model(x)
            loss, w = oracle_loss(logits, y, self.tensors.kept[idx])
            return loss, w, logits, None
        if spec.loss in BASELINE_LOSSES:
            logits = model(x)
            w = torch.full((n,), 1.0 / n, device=self.device)
            return loss_fn(logits, y), w, logits, None
        if spec.loss == "dynamic-mixup":
            return self._dynamic_mixup(x, y, gen_mix, step)
        if spec.mixup is None:
            logits = model(x)
            return loss_fn(logits, y), loss_fn.last_weights.detach(), logits, None
        mode = spec.mixup
        if self.published_mixup and mode != "plain" and step < self.plan.burnin_steps:
            # the published burn-in: plain mixup, or none for label smoothing (CIW-M)
            if mode == "label_smoothing":
                logits = model(x)
                return loss_fn(logits, y), loss_fn.last_weights.detach(), logits, None
            mode = "plain"
        if mode == "plain":
            logits0 = None
            w = torch.full((n,), 1.0 / n, device=self.device)
        else:
            with torch.no_grad():
                logits0 = model(x)
            w = _clean_pass_weights(loss_fn, logits0, y)
        mx, my = self._mix(x, y, w, mode, logits0, gen_mix)
        logits = model(mx)
        if spec.recompute_on_mixed or mode == "plain":
            return loss_fn(logits, my), w, logits0, None
        loss = self.mixed_loss_fn(logits, my)
        loss_fn.step = loss_fn.step + 1  # keep the schedule's clock running
        return loss, w, logits0, None

    def _dynamic_mixup(self, x, y, gen_mix, step: int):
        """Dynamic hard bootstrapping with mixup (M-DYR-H; :mod:`divweights_train.bmm`)."""
        cfg, model, k = self.config, self.model, self.plan.num_classes
        n = len(y)
        with torch.no_grad():
            logits0 = model(x)
        losses = F.cross_entropy(logits0.float(), y, reduction="none")
        target = F.one_hot(y, k).float()
        active = self.dm_fitted and step >= self.plan.burnin_steps
        if active:
            b = noise_posterior(losses, self.dm_table, self.dm_fit.loss_min, self.dm_fit.loss_max)[:, None]
            target = (1 - b) * target + b * F.one_hot(logits0.argmax(-1), k).float()
            trust = 1 - b[:, 0]
            w = trust / trust.sum()
        else:
            w = torch.full((n,), 1.0 / n, device=self.device)
        mx, my, _ = self.dwt.weighted_mixup(x, target, None, mode="plain", alpha=cfg.mixup_alpha, generator=gen_mix)
        logits = model(mx)
        logp = F.log_softmax(logits.float(), -1)
        loss = -(my * logp).sum(-1).mean()
        if active:  # Arazo et al.'s regulariser: KL(uniform || mean prediction), weight 1
            mean_p = logp.exp().mean(0)
            loss = loss + (math.log(1.0 / k) - mean_p.log()).mean()
        return loss, w, logits0, losses.detach()

    def _refit(self, pending_losses) -> None:
        """Record the epoch's clean-pass losses and fit the beta mixture on every example seen so far."""
        from .bmm import fit_loss_mixture

        for losses, idx in pending_losses:
            self.dm_losses[idx] = losses
            self.dm_seen[idx] = True
        if int(self.dm_seen.sum()) >= 2:
            self._set_fit(fit_loss_mixture(self.dm_losses[self.dm_seen]), fitted=True)

    def train_epoch(self, epoch: runloop.Epoch, progress: RunProgress) -> runloop.EpochOutput:
        cfg, plan, device, e = self.config, self.plan, self.device, epoch.index
        self.model.train()
        self.loss_fn.train()
        torch.manual_seed(derive_seed(cfg.seed, "dropout", e))
        gen_aug = torch.Generator(device="cpu").manual_seed(derive_seed(cfg.seed, "augment", e))
        gen_mix = torch.Generator(device="cpu").manual_seed(derive_seed(cfg.seed, "mixup", e))
        order_t = torch.as_tensor(epoch.order, device=device)
        loss_acc = torch.zeros((), dtype=torch.float64, device=device)
        correct_acc = torch.zeros((), dtype=torch.int64, device=device)
        pending, pending_losses, seen = [], [], 0
        for b in range(epoch.batches):
            idx = order_t[b * plan.batch_size : (b + 1) * plan.batch_size]
            step = epoch.first_step + b
            for group in self.optimizer.param_groups:
                group["lr"] = cfg.lr_at(e, step, plan.steps_per_epoch)
            x, y = self.tensors.batch(idx, gen_aug)
            loss, w, scored, clean_losses = self._forward(x, y, idx, gen_mix, step)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss_acc += loss.detach().double()
            if scored is not None:
                correct_acc += (scored.detach().argmax(-1) == y).sum()
                seen += len(idx)
            pending.append((w.detach().float(), idx))
            if clean_losses is not None:
                pending_losses.append((clean_losses, idx))
            progress.advance(functools.partial(_running, loss_acc, correct_acc, b + 1, seen))
        weights = [(w.cpu().numpy(), idx.cpu().numpy()) for w, idx in pending]
        if self.method.loss == "dynamic-mixup":
            self._refit([(v.cpu().numpy(), i.cpu().numpy()) for v, i in pending_losses])
        return runloop.EpochOutput(float(loss_acc), epoch.batches, int(correct_acc), seen, weights)

    def evaluate(self, split: str) -> float:
        t = self.tensors
        x, y = (t.x_test, t.y_test) if split == "test" else (t.x_val, t.y_val)
        return _accuracy(self.model, x, y, self.config.eval_batch_size)

    def state(self) -> dict:
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "loss": self.loss_fn.state_dict(),
            "rng": _rng_state(),
        }
        if self.method.loss == "dynamic-mixup":
            fit = self.dm_fit
            state["dynamic_mixup"] = {
                "losses": torch.from_numpy(self.dm_losses.copy()),
                "seen": torch.from_numpy(self.dm_seen.copy()),
                "table": torch.from_numpy(fit.table.copy()),
                "params": [
                    fit.loss_min,
                    fit.loss_max,
                    *fit.alphas,
                    *fit.betas,
                    *fit.weights,
                ],
                "fitted": bool(self.dm_fitted),
            }
        return state

    def load_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.loss_fn.load_state_dict(state["loss"])
        _set_rng_state(state["rng"])
        if self.method.loss == "dynamic-mixup":
            from .bmm import BetaMixtureFit

            dm = state["dynamic_mixup"]
            self.dm_losses = dm["losses"].cpu().numpy().astype(np.float32)
            self.dm_seen = dm["seen"].cpu().numpy().astype(bool)
            lo, hi, a0, a1, b0, b1, w0, w1 = (float(v) for v in dm["params"])
            fit = BetaMixtureFit(
                dm["table"].cpu().numpy().astype(np.float32),
                lo,
                hi,
                (a0, a1),
                (b0, b1),
                (w0, w1),
            )
            self._set_fit(fit, fitted=bool(dm["fitted"]))


def train(config: TrainConfig, *, progress: bool | None = None, log=None) -> TrainResult:
    """Train one configuration with PyTorch: :func:`divweights_train.runloop.run` with :class:`TorchBackend`.

    ``progress`` (a bar; default: on a terminal unless quiet) and ``log`` (a
    sink for the per-epoch lines) are passed on; returns the
    :class:`~divweights_train.runloop.TrainResult`.
    """
    return runloop.run(config, TorchBackend, progress=progress, log=log)
