"""The JAX backend behind ``divweights-train --framework jax``.

:func:`train` has the signature and the outputs of
:func:`divweights_train.trainer_torch.train`: both run the framework-neutral
loop (:func:`divweights_train.runloop.run`), which owns the data
preparation, the per-epoch example orders, the records, ``config.json``,
``data.json``, the weight files, ``summary.json``, the plots and the
checkpoint after every epoch. :class:`JaxBackend` supplies the JAX part:
the model (:mod:`divweights_train.models_jax`), the jitted training step
(:func:`~divweights_train.jax_step.train_step`, with the JAX adapter's burn-in
and annealing schedule), evaluation, and the state for the checkpoint
(``checkpoint_jax.npz``: NumPy arrays and JSON, read without pickle).

Reproducibility
---------------
Every random stream is a PRNG key derived from ``(seed, purpose, epoch)``
with :func:`divweights_train.prepare.derive_seed`. A resumed run therefore
replays the remaining epochs exactly and ends with the same metrics as an
uninterrupted run on the same device. The checkpoint also stores the next
epoch's keys and checks them on resumption.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from . import runloop
from .checkpoint import JAX_CHECKPOINT_NAME as CHECKPOINT_NAME
from .config import TrainConfig, parse_divergence, smoothing_floor
from .errors import CheckpointError, UsageError
from .jax_step import (
    STREAMS,
    TRACE_COUNTS,
    EvalSet,
    StepSpec,
    epoch_key_data,
    eval_probs,
    key_data,
    normalize,
    oracle_loss,
    random_crop_flip,
    scheduled_strength,
    sgd_update,
    stream_key,
    train_step,
)
from .models_jax import JaxModel, build_model
from .prepare import PreparedData, derive_seed
from .progress import RunProgress
from .runloop import TrainResult, model_kwargs

__all__ = [
    "CHECKPOINT_NAME",
    "TRACE_COUNTS",
    "JaxBackend",
    "StepSpec",
    "TrainResult",
    "load_checkpoint",
    "model_kwargs",
    "oracle_loss",
    "random_crop_flip",
    "sgd_update",
    "train",
    "train_step",
]


def _jax_device(config: TrainConfig):
    if config.device == "cpu":
        return jax.devices("cpu")[0]
    try:
        gpus = jax.devices("gpu")
    except RuntimeError:
        gpus = []
    if not gpus:
        raise UsageError(
            "--device cuda was requested but JAX has no GPU backend (install a CUDA build of jax, or use --device cpu)"
        )
    index = int(str(config.device).split(":", 1)[1]) if ":" in str(config.device) else 0
    if index >= len(gpus):
        raise UsageError(f"--device {config.device}: JAX sees only {len(gpus)} GPU(s)")
    return gpus[index]


def _step_spec(cfg: TrainConfig, model: JaxModel, data: PreparedData, spec) -> StepSpec:
    instance = None
    form = None
    if spec.instance:
        if parse_divergence(cfg.instance_divergence) is None:
            raise ValueError(f"method {cfg.method!r} needs an instance divergence, got 'none'")
        instance = cfg.instance_divergence
        form = next(iter(cfg.strength()))
    classes = None
    gamma = 0.0
    adaptive_classes = False
    if spec.classes and (cfg.class_gamma == "auto" or cfg.class_gamma > 0):
        classes = cfg.class_divergence
        adaptive_classes = cfg.class_gamma == "auto"
        gamma = 0.0 if adaptive_classes else float(cfg.class_gamma)
    tr = data.train
    augment = cfg.augment if tr.is_image else "none"
    crop = augment in ("crop", "crop-flip")
    flip = augment in ("flip", "crop-flip")
    auto_pad = 4 if tr.input_shape[-1] >= 32 else 2
    pad = (auto_pad if cfg.crop_pad is None else int(cfg.crop_pad)) if crop else 0
    aug = crop or flip
    loss_params: tuple = ()
    if spec.loss == "bi-tempered":
        loss_params = (("t1", float(cfg.t1)), ("t2", float(cfg.t2)))
    elif spec.loss in ("nce-rce", "sce"):
        loss_params = (
            ("alpha", float(cfg.loss_alpha)),
            ("beta", float(cfg.loss_beta)),
        )
    elif spec.loss == "gce":
        loss_params = (("q", float(cfg.q)),)
    return StepSpec(
        model=model,
        instance=instance,
        strength_form=form,
        classes=classes,
        gamma=gamma,
        balance_classes=bool(classes is not None and cfg.balance_classes),
        mixup=spec.mixup,
        recompute_on_mixed=bool(spec.recompute_on_mixed),
        mixup_alpha=float(cfg.mixup_alpha),
        mixup_power=float(cfg.mixup_power),
        smoothing_floor=(
            smoothing_floor(cfg.noise, cfg.dataset, cfg.mixup_rule, model.num_classes)
            if spec.mixup == "label_smoothing"
            else 0.0
        ),
        crop_pad=pad,
        flip=flip,
        mean=tuple(tr.mean) if aug else (),
        std=tuple(tr.std) if aug else (),
        weight_decay=float(cfg.weight_decay),
        momentum=float(cfg.momentum),
        nesterov=bool(cfg.nesterov and cfg.momentum > 0),
        adaptive=instance is not None and cfg.strength().get("delta") == "auto",
        adaptive_classes=adaptive_classes,
        oracle=bool(spec.oracle),
        loss=spec.loss,
        loss_params=loss_params,
        mixup_rule=str(cfg.mixup_rule or "divweights"),
    )


def _burnin_spec(spec: StepSpec) -> StepSpec | None:
    """The published burn-in's step (plain mixup; none for label smoothing), or None when it is the same."""
    if spec.mixup_rule != "published" or spec.mixup in (None, "plain"):
        return None
    return dataclasses.replace(spec, mixup=None if spec.mixup == "label_smoothing" else "plain")


def _to_numpy(tree):
    return jax.tree.map(lambda a: np.asarray(a), jax.device_get(tree))


def _to_device(tree, device):
    return jax.tree.map(lambda a: jax.device_put(np.asarray(a), device), tree)


def _running(outputs) -> tuple[float, float]:
    """Mean loss and accuracy over the steps of ``outputs`` so far (waits for them)."""
    loss, correct, seen = jax.device_get(([o[1] for o in outputs], [o[3] for o in outputs], [o[4] for o in outputs]))
    return float(np.sum(loss)) / len(outputs), float(np.sum(correct)) / max(int(np.sum(seen)), 1)


def load_checkpoint(path) -> dict:
    """Read a JAX checkpoint (``checkpoint_jax.npz``) without pickle: its description and arrays in one dict.

    Raises
    ------
    divweights_train.errors.CheckpointError
        The file is damaged, of another format, or would need pickle.
    """
    from .checkpoint import load_checkpoint as load

    meta, state = load(path, kind="npz", framework="jax")
    return {**meta, **state}


class JaxBackend(runloop.Backend):
    """The JAX part of a run (:class:`divweights_train.runloop.Backend`)."""

    framework = "jax"
    checkpoint_name = CHECKPOINT_NAME
    checkpoint_kind = "npz"
    legacy_checkpoint_names = ("checkpoint_jax.pkl",)

    def __init__(self, config: TrainConfig):
        super().__init__(config)
        self.device = _jax_device(config)

    def clean_model_scores(self, clean_train) -> np.ndarray:
        """Softmax scores of a quick clean-label model (plain cross-entropy; for instance-dependent noise)."""
        cfg, device = self.config, self.device
        model = build_model(
            cfg.model,
            clean_train.input_shape,
            clean_train.num_classes,
            **model_kwargs(cfg),
        )
        spec = StepSpec(
            model=model,
            weight_decay=float(cfg.weight_decay),
            momentum=float(cfg.momentum),
            nesterov=bool(cfg.nesterov and cfg.momentum > 0),
        )
        x_np = np.asarray(normalize(clean_train.x, clean_train.mean, clean_train.std), np.float32)
        x = jax.device_put(x_np, device)
        y = jax.device_put(clean_train.y.astype(np.int32), device)
        params, state = model.init(stream_key(cfg.seed, "clean-model"))
        buf = jax.tree.map(jnp.zeros_like, params)
        n = len(clean_train.y)
        bs = min(cfg.batch_size, n)
        lr = np.float32(cfg.lr)
        plain = (
            np.float32(0.0),
            np.bool_(False),
        )  # strength and switch: no reweighting
        for epoch in range(cfg.clean_model_epochs):
            order = np.random.default_rng(derive_seed(cfg.seed, "clean-model", epoch)).permutation(n)
            keys = jax.random.wrap_key_data(
                np.stack([key_data(cfg.seed, "clean-model", epoch, j) for j in range(len(STREAMS))]),
                impl="threefry2x32",
            )
            # every example, as the torch trainer does (the last batch may be short)
            for b, i in enumerate(range(0, n, bs)):
                idx = jax.device_put(order[i : i + bs].astype(np.int32), device)
                args = (x, y, idx, keys, np.int32(b), lr, *plain)
                params, state, buf, *_ = train_step(spec, params, state, buf, *args)
        ev = EvalSet(x_np, clean_train.y, 1000, device)
        probs = np.asarray(eval_probs(model, params, state, ev.xb))
        return probs.reshape(-1, probs.shape[-1])[:n].astype(np.float64)

    def init(self, data: PreparedData, plan: runloop.RunPlan) -> None:
        cfg, device, tr = self.config, self.device, data.train
        self.plan = plan
        self.model = build_model(cfg.model, tr.input_shape, plan.num_classes, **model_kwargs(cfg))
        self.spec = spec = _step_spec(cfg, self.model, data, self.method)
        # Without augmentation the inputs are normalised once; with it, per batch.
        x_train = tr.x if spec.augments else normalize(tr.x, tr.mean, tr.std)
        self.x_train = jax.device_put(np.asarray(x_train, np.float32), device)
        self.y_train = jax.device_put(tr.y.astype(np.int32), device)
        self.kept = jax.device_put((~data.train_flipped).astype(np.float32), device) if spec.oracle else None
        norm = lambda a: np.asarray(normalize(a, tr.mean, tr.std), np.float32)
        self.eval_sets = {
            "test": EvalSet(norm(data.test.x), data.test.y, cfg.eval_batch_size, device),
            "val": None if data.val is None else EvalSet(norm(data.val.x), data.val.y, cfg.eval_batch_size, device),
        }
        params, state = self.model.init(stream_key(cfg.seed, "init"))
        momentum = jax.tree.map(jnp.zeros_like, params)
        self.params, self.model_state, self.momentum = (_to_device(t, device) for t in (params, state, momentum))
        target = next(iter(cfg.strength().values())) if spec.instance is not None else 0.0
        self.target = np.float32(0.0 if target == "auto" else target)
        self.noise_rate = np.float32(0.0)  # the adaptive radii's tracked noise rate (spec.tracks_noise)
        self.schedule = {
            "form": spec.strength_form,
            "burnin_steps": plan.burnin_steps,
            "anneal_steps": plan.anneal_steps,
            "start_factor": plan.start_factor(cfg),
        }
        self.saved_keys = None
        self.burnin_spec = _burnin_spec(spec)
        self.dynamic = spec.loss == "dynamic-mixup"
        if self.dynamic:
            from .bmm import uniform_fit

            # Dynamic Mixup's per-example state (host memory): the latest clean-pass loss of
            # every training example, whether it was seen, and the epoch's beta mixture.
            self.dm_losses = np.zeros(plan.num_examples, np.float32)
            self.dm_seen = np.zeros(plan.num_examples, bool)
            self._set_fit(uniform_fit(), fitted=False)

    def _set_fit(self, fit, *, fitted: bool) -> None:
        self.dm_fit, self.dm_fitted = fit, fitted
        self.dm_aux = {
            "table": jax.device_put(np.asarray(fit.table, np.float32), self.device),
            "loss_min": np.float32(fit.loss_min),
            "loss_max": np.float32(fit.loss_max),
        }

    def train_epoch(self, epoch: runloop.Epoch, progress: RunProgress) -> runloop.EpochOutput:
        cfg, plan, spec, device = self.config, self.plan, self.spec, self.device
        e = epoch.index
        keys = epoch_key_data(cfg.seed, e)
        if self.saved_keys is not None and not np.array_equal(self.saved_keys, keys):
            raise CheckpointError(
                "cannot resume: the checkpoint's PRNG keys do not match this version's key "
                "derivation; start the run again with --overwrite"
            )
        self.saved_keys = None
        epoch_keys = jax.device_put(jax.random.wrap_key_data(keys, impl="threefry2x32"), device)
        outputs = []
        for b in range(epoch.batches):
            step = epoch.first_step + b
            idx = epoch.order[b * plan.batch_size : (b + 1) * plan.batch_size]
            step_spec, aux = spec, None
            if spec.reweights:
                strength, active = scheduled_strength(np.int32(step), self.target, **self.schedule)
            elif self.dynamic:
                strength = np.float32(0.0)
                active = np.bool_(self.dm_fitted and step >= plan.burnin_steps)
                aux = self.dm_aux
            else:
                strength, active = np.float32(0.0), np.bool_(False)
            if self.burnin_spec is not None and step < plan.burnin_steps:
                step_spec = self.burnin_spec
            result = train_step(
                step_spec,
                self.params,
                self.model_state,
                self.momentum,
                self.x_train,
                self.y_train,
                jax.device_put(idx.astype(np.int32), device),
                epoch_keys,
                np.int32(b),
                np.float32(cfg.lr_at(e, step, plan.steps_per_epoch)),
                strength,
                active,
                self.kept,
                self.noise_rate if spec.tracks_noise else None,
                aux,
            )
            clean_losses = None
            if self.dynamic:
                *result, clean_losses = result
            if spec.tracks_noise:
                *result, self.noise_rate = result
            self.params, self.model_state, self.momentum, loss, w, correct, seen = result
            outputs.append((idx, loss, w, correct, seen, clean_losses))
            progress.advance(lambda: _running(outputs))
        self.next_epoch = e + 1
        host = jax.device_get([o[1:] for o in outputs])
        loss_sum = 0.0
        for loss_v, *_ in host:
            loss_sum += float(loss_v)
        weights = [(np.asarray(w_v, np.float32), o[0]) for o, (_, w_v, _, _, _) in zip(outputs, host)]
        if self.dynamic:
            from .bmm import fit_loss_mixture

            for o, h in zip(outputs, host):
                self.dm_losses[o[0]] = np.asarray(h[4], np.float32)
                self.dm_seen[o[0]] = True
            if int(self.dm_seen.sum()) >= 2:
                self._set_fit(fit_loss_mixture(self.dm_losses[self.dm_seen]), fitted=True)
        return runloop.EpochOutput(
            loss_sum,
            len(outputs),
            sum(int(h[2]) for h in host),
            sum(int(h[3]) for h in host),
            weights,
        )

    def evaluate(self, split: str) -> float:
        ev = self.eval_sets[split]
        return float("nan") if ev is None else ev.accuracy(self.model, self.params, self.model_state)

    def state(self) -> dict:
        state = {
            "params": _to_numpy(self.params),
            "model_state": _to_numpy(self.model_state),
            "momentum": _to_numpy(self.momentum),
            "rng": {"next_epoch_keys": epoch_key_data(self.config.seed, self.next_epoch)},
            "noise_rate": np.asarray(self.noise_rate, np.float32),
        }
        if self.dynamic:
            fit = self.dm_fit
            state["dynamic_mixup"] = {
                "losses": self.dm_losses.copy(),
                "seen": self.dm_seen.copy(),
                "table": np.asarray(fit.table, np.float32).copy(),
                "params": np.asarray(
                    [fit.loss_min, fit.loss_max, *fit.alphas, *fit.betas, *fit.weights],
                    np.float64,
                ),
                "fitted": np.asarray(bool(self.dm_fitted)),
            }
        return state

    def load_state(self, state: dict) -> None:
        self.params = _to_device(state["params"], self.device)
        self.model_state = _to_device(state["model_state"], self.device)
        self.momentum = _to_device(state["momentum"], self.device)
        self.saved_keys = np.asarray(state["rng"]["next_epoch_keys"])
        if "noise_rate" in state:  # absent in checkpoints of runs without adaptive radii before it existed
            self.noise_rate = np.float32(state["noise_rate"])
        if self.dynamic:
            from .bmm import BetaMixtureFit

            dm = state["dynamic_mixup"]
            self.dm_losses = np.asarray(dm["losses"], np.float32).copy()
            self.dm_seen = np.asarray(dm["seen"], bool).copy()
            lo, hi, a0, a1, b0, b1, w0, w1 = (float(v) for v in np.asarray(dm["params"]))
            fit = BetaMixtureFit(
                np.asarray(dm["table"], np.float32).copy(),
                lo,
                hi,
                (a0, a1),
                (b0, b1),
                (w0, w1),
            )
            self._set_fit(fit, fitted=bool(np.asarray(dm["fitted"])))


def train(config: TrainConfig, *, progress: bool | None = None, log=None) -> TrainResult:
    """Train one configuration with JAX: :func:`divweights_train.runloop.run` with :class:`JaxBackend`.

    Same signature, files and return value as :func:`divweights_train.trainer_torch.train`.
    ``config.threads`` is not applied (XLA's CPU thread pool is fixed when
    JAX starts; set ``XLA_FLAGS`` before launching instead).

    Examples
    --------
    >>> import tempfile
    >>> from divweights_train.config import TrainConfig
    >>> with tempfile.TemporaryDirectory() as d:
    ...     res = train(TrainConfig(dataset="two-moons", subset=200, method="ciw", epochs=1, framework="jax",
    ...                             noise="symmetric:0.3", out=d, quiet=True, plots=False))
    >>> res.records[0].epoch, 0.0 <= res.records[0].test_acc <= 1.0
    (1, True)
    """
    return runloop.run(config, JaxBackend, progress=progress, log=log)
