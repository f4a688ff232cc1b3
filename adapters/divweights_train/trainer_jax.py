"""The JAX trainer behind ``divweights-train --framework jax``.

:func:`train` has the signature and the outputs of
:func:`divweights_train.trainer_torch.train`: the same data preparation
(:func:`~divweights_train.prepare.prepare_data`, per-epoch example orders from
the seed), the same methods (:func:`~divweights_train.config.method_spec`),
the same per-epoch ``metrics.jsonl`` records, ``config.json``, ``data.json``,
per-epoch weight files, ``summary.json`` and plots, and an atomic checkpoint
after every epoch from which ``resume=True`` continues.

Everything is pure JAX (no Flax or Optax): the networks are explicit
parameter pytrees (:mod:`divweights_train.models_jax`), the optimiser is SGD
with (Nesterov) momentum and coupled weight decay written out as in
:class:`torch.optim.SGD`, and one jitted training step
(:func:`train_step`) does augmentation, the forward passes, weighted mixup,
the reweighted loss (:func:`divweights_jax.reweighted_loss`) and the update.
The learning rate, the annealed reweighting strength and the burn-in switch
are traced scalars, so the step compiles once per run.

Reproducibility
---------------
Every random stream is a PRNG key derived from ``(seed, purpose, epoch)``
with :func:`divweights_train.prepare.derive_seed` (model initialisation, and
per epoch the augmentation, mixup and dropout keys, folded with the batch
number inside the step). A resumed run therefore replays the remaining epochs
exactly and ends with the same metrics as an uninterrupted run on the same
device. The checkpoint also stores the next epoch's keys and checks them on
resumption.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
import pickle
import sys
import time
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from . import checkpoint as ckpt
from .config import TrainConfig, method_spec, parse_divergence, schedule_steps
from .metrics import EpochRecord, MetricsWriter, WeightStats, epoch_line, finish_run, summarize
from .models_jax import JaxModel, build_model
from .prepare import PreparedData, derive_seed, epoch_permutation, prepare_data

__all__ = [
    "CHECKPOINT_NAME",
    "StepSpec",
    "TRACE_COUNTS",
    "TrainResult",
    "load_checkpoint",
    "random_crop_flip",
    "sgd_update",
    "train",
    "train_step",
]

CHECKPOINT_FORMAT = 1
#: File name of the JAX trainer's checkpoint inside the output folder (a
#: pickle of NumPy arrays and plain Python values; distinct from the torch
#: trainer's ``checkpoint.pt`` so the two can never be confused).
CHECKPOINT_NAME = "checkpoint_jax.pkl"

#: How many times :func:`train_step` was traced, per :class:`StepSpec`
#: (a Python side effect that runs only while tracing).
TRACE_COUNTS: collections.Counter = collections.Counter()

_STREAMS = ("augment", "mixup", "dropout")


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns (as :class:`divweights_train.trainer_torch.TrainResult`).

    Attributes
    ----------
    config : TrainConfig
        The resolved configuration.
    records : list of EpochRecord
        One per completed epoch (including epochs done before a resume).
    summary : dict
        :func:`divweights_train.metrics.summarize` of the records, plus
        ``completed``.
    out_dir : pathlib.Path
    """

    config: TrainConfig
    records: list
    summary: dict
    out_dir: Path


# --------------------------------------------------------------------------- #
# Keys, augmentation, normalisation.
# --------------------------------------------------------------------------- #
def _key_data(seed: int, tag: str, *extra: int) -> np.ndarray:
    """The two 32-bit words of a threefry key holding the 63-bit derived seed."""
    s = derive_seed(seed, tag, *extra)
    return np.array([s >> 32, s & 0xFFFFFFFF], dtype=np.uint32)


def _stream_key(seed: int, tag: str, *extra: int):
    return jax.random.wrap_key_data(_key_data(seed, tag, *extra), impl="threefry2x32")


def _epoch_key_data(seed: int, epoch: int) -> np.ndarray:
    """Key data ``(3, 2)`` of the augmentation, mixup and dropout streams of ``epoch``."""
    return np.stack([_key_data(seed, tag, epoch) for tag in _STREAMS])


@functools.partial(jax.jit, static_argnames=("pad", "flip"))
def random_crop_flip(key, x, pad: int = 4, *, flip: bool = True):
    """Random crop after zero padding, then random horizontal flip, per image.

    The JAX counterpart of :func:`divweights_train.augment.random_crop_flip`:
    each image ``(C, H, W)`` is padded with ``pad`` zeros on every side, a
    window of the original size is cut at a uniform offset in
    ``[0, 2 * pad]`` along each axis, and with probability 1/2 the window is
    mirrored left-right.

    Parameters
    ----------
    key : jax PRNG key
    x : array, shape (N, C, H, W)
        Raw images (normalise afterwards so that the padding is black).
    pad : int, default 4
        Padding in pixels; ``0`` disables cropping. Static.
    flip : bool, default True
        Whether to flip. Static.

    Returns
    -------
    array
        Augmented images, same shape and dtype.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.arange(2 * 1 * 4 * 4, dtype=jnp.float32).reshape(2, 1, 4, 4)
    >>> random_crop_flip(jax.random.key(0), x, 1).shape
    (2, 1, 4, 4)
    >>> bool(jnp.all(random_crop_flip(jax.random.key(0), x, 0, flip=False) == x))
    True
    """
    if x.ndim != 4:
        raise ValueError(f"x must have shape (N, C, H, W), got {x.shape}")
    if pad < 0:
        raise ValueError(f"pad must be non-negative, got {pad}")
    n, c, h, w = x.shape
    k_crop, k_flip = jax.random.split(key)
    if pad > 0:
        offsets = jax.random.randint(k_crop, (n, 2), 0, 2 * pad + 1)
        padded = jnp.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        x = jax.vmap(lambda img, o: jax.lax.dynamic_slice(img, (0, o[0], o[1]), (c, h, w)))(padded, offsets)
    if flip:
        flips = jax.random.bernoulli(k_flip, 0.5, (n,))
        x = jnp.where(flips[:, None, None, None], x[..., ::-1], x)
    return x


def _normalize(x, mean: tuple, std: tuple):
    """``(x - mean) / std`` per channel (images) or feature, as the torch trainer does."""
    if not mean:
        return x
    m = np.asarray(mean, np.float32)
    s = np.asarray(std, np.float32)
    shape = (1, -1, 1, 1) if x.ndim == 4 else (1, -1)
    return (x - m.reshape(shape)) / s.reshape(shape)


# --------------------------------------------------------------------------- #
# The jitted training step.
# --------------------------------------------------------------------------- #
@dataclasses.dataclass(frozen=True)
class StepSpec:
    """Everything static about a training step (hashable: a ``jax.jit`` static argument).

    Attributes
    ----------
    model : JaxModel
    instance : str or None
        Instance divergence name (:func:`~divweights_train.config.parse_divergence`),
        None for uniform weights.
    strength_form : str or None
        ``"delta"``, ``"temperature"`` or ``"lam"``: how the traced strength
        is passed to the loss.
    classes : str or None
        Class divergence name, None for no class reweighting.
    gamma : float
        Class radius.
    mixup : str or None
        Weighted mixup mode, None for no mixup.
    recompute_on_mixed : bool
        With mixup: the loss of the mixed batch is the method's reweighted
        loss (weights recomputed on it); otherwise plain (soft-target)
        cross-entropy. Plain mixup always uses the method's loss (uniform).
    mixup_alpha, mixup_power : float
    crop_pad : int
        Crop padding (0: no crop); only for image data.
    flip : bool
    mean, std : tuple of float
        Normalisation applied after augmentation (empty when the inputs are
        normalised once up front).
    weight_decay, momentum : float
    nesterov : bool
    oracle : bool
        The perfect-filter reference: cross-entropy averaged over the batch's
        examples whose labels were not flipped (``kept_all`` of :func:`train_step`).
    """

    model: JaxModel
    instance: str | None = None
    strength_form: str | None = None
    classes: str | None = None
    gamma: float = 0.0
    mixup: str | None = None
    recompute_on_mixed: bool = True
    mixup_alpha: float = 1.0
    mixup_power: float = 1.0
    crop_pad: int = 0
    flip: bool = False
    mean: tuple = ()
    std: tuple = ()
    weight_decay: float = 0.0
    momentum: float = 0.0
    nesterov: bool = False
    oracle: bool = False

    @property
    def reweights(self) -> bool:
        return self.instance is not None or self.classes is not None

    @property
    def augments(self) -> bool:
        return self.crop_pad > 0 or self.flip


def sgd_update(params, grads, momentum_buf, lr, *, momentum: float, nesterov: bool, weight_decay: float):
    """One step of :class:`torch.optim.SGD` (dampening 0, coupled weight decay).

    ``d = g + weight_decay * p``; ``b = momentum * b + d``; the step is
    ``d + momentum * b`` with Nesterov, ``b`` otherwise; ``p <- p - lr * step``.
    With ``momentum = 0`` this is plain SGD.

    Returns
    -------
    (new_params, new_momentum_buf)

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> p, b = sgd_update({"w": jnp.ones(2)}, {"w": jnp.ones(2)}, {"w": jnp.zeros(2)}, 0.1,
    ...                   momentum=0.9, nesterov=True, weight_decay=0.0)
    >>> [round(float(v), 3) for v in p["w"]], [round(float(v), 3) for v in b["w"]]
    ([0.81, 0.81], [1.0, 1.0])
    """
    d = grads if weight_decay == 0 else jax.tree.map(lambda g, p: g + weight_decay * p, grads, params)
    new_buf = jax.tree.map(lambda b, g: momentum * b + g, momentum_buf, d)
    if nesterov and momentum > 0:
        step = jax.tree.map(lambda g, b: g + momentum * b, d, new_buf)
    else:
        step = new_buf
    new_params = jax.tree.map(lambda p, s: p - lr * s, params, step)
    return new_params, new_buf


def oracle_loss(logits, targets, kept):
    """Cross-entropy averaged over the examples with ``kept == 1`` (the perfect-filter reference).

    The adapter's uniform loss with the flipped rows masked out. Returns
    ``(loss, weights)`` with ``weights = kept / sum(kept)``; a batch whose labels
    are all flipped contributes a zero loss (and zero gradient).
    """
    from divweights_jax import reweighted_loss

    loss, aux = reweighted_loss(logits, targets, instance=None, mask=kept > 0)
    return loss, aux["weights"]


def _method_loss(spec: StepSpec, logits, targets, strength, active):
    """The method's loss and instance weights; plain cross-entropy while ``active`` is False."""
    from divweights_jax import reweighted_loss

    plain, aux_plain = reweighted_loss(logits, targets, instance=None)
    if not spec.reweights:
        return plain, aux_plain["weights"]
    kwargs: dict[str, Any] = {"instance": None}
    if spec.instance is not None:
        kwargs["instance"] = parse_divergence(spec.instance)
        kwargs[spec.strength_form] = strength
    if spec.classes is not None:
        kwargs["classes"] = parse_divergence(spec.classes)
        kwargs["gamma"] = spec.gamma
    loss, aux = reweighted_loss(logits, targets, **kwargs)
    return jnp.where(active, loss, plain), jnp.where(active, aux["weights"], aux_plain["weights"])


@functools.partial(jax.jit, static_argnames=("spec",))
def train_step(spec: StepSpec, params, state, momentum_buf, x_all, y_all, idx, epoch_keys, batch, lr,
               strength, active, kept_all=None):
    """One optimisation step on the mini-batch ``idx`` of ``(x_all, y_all)``.

    Parameters
    ----------
    spec : StepSpec
        Static description of the method, model and optimiser.
    params, state, momentum_buf : pytrees
        Model parameters, batch-norm statistics, SGD momentum buffers.
    x_all, y_all : arrays
        Training inputs (raw when ``spec`` augments, normalised otherwise)
        and int32 noisy labels.
    idx : int32 array, shape (B,)
        Indices of the batch.
    epoch_keys : PRNG key array, shape (3,)
        Augmentation, mixup and dropout keys of the epoch; each is folded
        with ``batch``.
    batch : int32 scalar
        Batch number within the epoch.
    lr, strength : float32 scalars
        Learning rate and annealed instance strength (traced).
    active : bool scalar
        Reweighting on (False during burn-in: uniform weights, no class
        reweighting).
    kept_all : float32 array, optional
        1 for the training examples whose labels were not flipped; needed
        (only) by the oracle reference (``spec.oracle``).

    Returns
    -------
    params, state, momentum_buf : pytrees
        Updated.
    loss : float32 scalar
        The (reweighted) loss of the batch the gradient was taken on.
    weights : float32 array, shape (B,)
        Instance weights of the clean batch (uniform for ``ce``/``mixup``).
    correct, seen : int32 scalars
        Correct predictions against the noisy labels on the clean batch and
        the number of examples counted (0 for plain mixup, which has no
        clean forward pass).
    """
    TRACE_COUNTS[spec] += 1
    from divweights_jax import weighted_mixup

    model = spec.model
    k_aug, k_mix, k_drop = (jax.random.fold_in(epoch_keys[i], batch) for i in range(3))
    k_drop_clean, k_drop = jax.random.split(k_drop)
    x = x_all[idx]
    y = y_all[idx]
    n = x.shape[0]
    if spec.augments:
        x = random_crop_flip(k_aug, x, spec.crop_pad, flip=spec.flip)
        x = _normalize(x, spec.mean, spec.std)

    if spec.mixup is None:
        inputs, targets, state_in = x, y, state
        weights = None
        logits0 = None
    else:
        if spec.mixup == "plain":
            logits0 = None
            weights = jnp.full((n,), 1.0 / n, jnp.float32)
            state_in = state
        else:
            logits0, state_in = model.apply(params, state, x, train=True, key=k_drop_clean)
            logits0 = jax.lax.stop_gradient(logits0)
            _, weights = _method_loss(spec, logits0, y, strength, active)
        inputs, targets, _ = weighted_mixup(
            k_mix, x, y, weights, mode=spec.mixup, num_classes=model.num_classes,
            power=spec.mixup_power, alpha=spec.mixup_alpha, predictions=logits0)

    uniform_mixed = spec.mixup is not None and spec.mixup != "plain" and not spec.recompute_on_mixed

    def objective(p):
        logits, new_state = model.apply(p, state_in, inputs, train=True, key=k_drop)
        if spec.oracle:
            loss, w = oracle_loss(logits, targets, kept_all[idx])
        elif uniform_mixed:
            from divweights_jax import reweighted_loss

            loss, aux = reweighted_loss(logits, targets, instance=None)
            w = aux["weights"]
        else:
            loss, w = _method_loss(spec, logits, targets, strength, active)
        return loss, (logits, new_state, w)

    (loss, (logits, new_state, w)), grads = jax.value_and_grad(objective, has_aux=True)(params)
    if spec.mixup is None:
        weights = w
        scored = logits
    else:
        scored = logits0
    if scored is None:
        correct = jnp.zeros((), jnp.int32)
        seen = jnp.zeros((), jnp.int32)
    else:
        correct = jnp.sum(jnp.argmax(scored, axis=-1) == y).astype(jnp.int32)
        seen = jnp.asarray(n, jnp.int32)
    new_params, new_buf = sgd_update(params, grads, momentum_buf, lr, momentum=spec.momentum,
                                     nesterov=spec.nesterov, weight_decay=spec.weight_decay)
    return new_params, new_state, new_buf, loss, jax.lax.stop_gradient(weights).astype(jnp.float32), correct, seen


@functools.partial(jax.jit, static_argnames=("model",))
def _eval_correct(model: JaxModel, params, state, xb, yb, vb):
    """Correct predictions over stacked batches ``(nb, bs, ...)`` (evaluation mode)."""

    def one(carry, batch):
        x, y, v = batch
        logits, _ = model.apply(params, state, x, train=False)
        return carry + jnp.sum((jnp.argmax(logits, axis=-1) == y) & v).astype(jnp.int32), None

    total, _ = jax.lax.scan(one, jnp.zeros((), jnp.int32), (xb, yb, vb))
    return total


@functools.partial(jax.jit, static_argnames=("model",))
def _eval_probs(model: JaxModel, params, state, xb):
    def one(_, x):
        logits, _ = model.apply(params, state, x, train=False)
        return None, jax.nn.softmax(logits, axis=-1)

    return jax.lax.scan(one, None, xb)[1]


class _EvalSet:
    """A normalised evaluation set stacked into equal batches on the device."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, device):
        self.n = len(y)
        bs = max(1, min(int(batch_size), self.n))
        nb = -(-self.n // bs)
        pad = nb * bs - self.n
        xp = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)]) if pad else x
        yp = np.concatenate([y, np.zeros(pad, y.dtype)]) if pad else y
        valid = np.arange(nb * bs) < self.n
        self.xb = jax.device_put(xp.reshape((nb, bs) + x.shape[1:]), device)
        self.yb = jax.device_put(yp.astype(np.int32).reshape(nb, bs), device)
        self.vb = jax.device_put(valid.reshape(nb, bs), device)

    def accuracy(self, model, params, state) -> float:
        if self.n == 0:
            return math.nan
        return int(_eval_correct(model, params, state, self.xb, self.yb, self.vb)) / self.n


# --------------------------------------------------------------------------- #
# Run helpers.
# --------------------------------------------------------------------------- #
def model_kwargs(config: TrainConfig) -> dict:
    """:func:`~divweights_train.models_jax.build_model` keywords from ``config.width``."""
    if config.width is None:
        return {}
    if config.model == "cnn":
        return {"width": int(config.width)}
    if config.model == "mlp":
        return {"hidden": (int(config.width), int(config.width))}
    raise ValueError(f"width is not supported for model {config.model!r}")


def _jax_device(config: TrainConfig):
    if config.device == "cpu":
        return jax.devices("cpu")[0]
    try:
        gpus = jax.devices("gpu")
    except RuntimeError:
        gpus = []
    if not gpus:
        raise RuntimeError("--device cuda was requested but JAX has no GPU backend (install a CUDA build of jax)")
    index = int(str(config.device).split(":", 1)[1]) if ":" in str(config.device) else 0
    if index >= len(gpus):
        raise RuntimeError(f"--device {config.device}: JAX sees only {len(gpus)} GPU(s)")
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
    if spec.classes and cfg.class_gamma > 0:
        classes = cfg.class_divergence
        gamma = float(cfg.class_gamma)
    tr = data.train
    augment = cfg.augment if tr.is_image else "none"
    crop = augment in ("crop", "crop-flip")
    flip = augment in ("flip", "crop-flip")
    pad = (4 if tr.input_shape[-1] >= 32 else 2) if crop else 0
    aug = crop or flip
    return StepSpec(
        model=model, instance=instance, strength_form=form, classes=classes, gamma=gamma,
        mixup=spec.mixup, recompute_on_mixed=bool(spec.recompute_on_mixed),
        mixup_alpha=float(cfg.mixup_alpha), mixup_power=float(cfg.mixup_power),
        crop_pad=pad, flip=flip,
        mean=tuple(tr.mean) if aug else (), std=tuple(tr.std) if aug else (),
        weight_decay=float(cfg.weight_decay), momentum=float(cfg.momentum),
        nesterov=bool(cfg.nesterov and cfg.momentum > 0), oracle=bool(spec.oracle),
    )


def _schedule_factor(step: int, burnin: int, anneal: int, start: float) -> float | None:
    """The torch adapter's ``AnnealSchedule.factor``: None during burn-in."""
    if step < burnin:
        return None
    t = step - burnin
    if t >= anneal:
        return 1.0
    return start + (1.0 - start) * (t / anneal)


def _strength_at(cfg: TrainConfig, factor: float | None) -> float:
    if factor is None:
        factor = 1.0  # unused (inactive), but a valid value
    form, value = next(iter(cfg.strength().items()))
    return value / factor if form == "delta" else value * factor


def _to_numpy(tree):
    return jax.tree.map(lambda a: np.asarray(a), jax.device_get(tree))


def _to_device(tree, device):
    return jax.tree.map(lambda a: jax.device_put(np.asarray(a), device), tree)


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by :func:`train` (a trusted, local pickle)."""
    with open(path, "rb") as fh:
        state = pickle.load(fh)
    if not isinstance(state, dict) or state.get("framework") != "jax":
        raise ValueError(f"{path} is not a checkpoint of the JAX trainer")
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: unsupported checkpoint format {state.get('format')!r}")
    return state


def _progress(config: TrainConfig, progress, total: int, desc: str):
    enabled = progress if progress is not None else (not config.quiet and sys.stderr.isatty())
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


def _confusion_scores_fn(config: TrainConfig, device) -> Callable:
    """Train a quick clean-label model (plain cross-entropy) and return its softmax scores."""

    def fn(clean_train):
        model = build_model(config.model, clean_train.input_shape, clean_train.num_classes, **model_kwargs(config))
        spec = StepSpec(model=model, weight_decay=float(config.weight_decay), momentum=float(config.momentum),
                        nesterov=bool(config.nesterov and config.momentum > 0))
        x_np = np.asarray(_normalize(clean_train.x, clean_train.mean, clean_train.std), np.float32)
        x = jax.device_put(x_np, device)
        y = jax.device_put(clean_train.y.astype(np.int32), device)
        params, state = model.init(_stream_key(config.seed, "clean-model"))
        buf = jax.tree.map(jnp.zeros_like, params)
        n = len(clean_train.y)
        bs = min(config.batch_size, n)
        lr = np.float32(config.lr)
        for epoch in range(config.clean_model_epochs):
            order = np.random.default_rng(derive_seed(config.seed, "clean-model", epoch)).permutation(n)
            keys = jax.random.wrap_key_data(
                np.stack([_key_data(config.seed, "clean-model", epoch, j) for j in range(len(_STREAMS))]),
                impl="threefry2x32")
            for b, i in enumerate(range(0, n, bs)):  # every example, as the torch trainer does
                idx = jax.device_put(order[i : i + bs].astype(np.int32), device)
                params, state, buf, *_ = train_step(spec, params, state, buf, x, y, idx, keys, np.int32(b), lr,
                                                    np.float32(0.0), np.bool_(False))
        ev = _EvalSet(x_np, clean_train.y, 1000, device)
        probs = np.asarray(_eval_probs(model, params, state, ev.xb))
        return probs.reshape(-1, probs.shape[-1])[:n].astype(np.float64)

    return fn


# --------------------------------------------------------------------------- #
# The trainer.
# --------------------------------------------------------------------------- #
def train(config: TrainConfig, *, progress: bool | None = None,
          log: Callable[[str], None] | None = None) -> TrainResult:
    """Train one configuration with JAX; see the module docstring.

    Same signature, files and return value as
    :func:`divweights_train.trainer_torch.train`.

    Parameters
    ----------
    config : TrainConfig
        The run's options (automatic fields are resolved here).
        ``config.threads`` is not applied (XLA's CPU thread pool is fixed when
        JAX starts; set ``XLA_FLAGS`` before launching instead).
    progress : bool, optional
        Show a tqdm bar per epoch; default: when stderr is a terminal and
        ``config.quiet`` is False.
    log : callable, optional
        Receives one line of text per epoch (default: print unless quiet).

    Returns
    -------
    TrainResult

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
    cfg = config.resolved()
    if log is None:
        log = (lambda s: None) if cfg.quiet else (lambda s: print(s, flush=True))
    device = _jax_device(cfg)
    spec = method_spec(cfg.method)
    if cfg.mixup_mode is not None:
        spec = dataclasses.replace(spec, mixup=cfg.mixup_mode)
    if cfg.mixup_recompute is not None:
        spec = dataclasses.replace(spec, recompute_on_mixed=bool(cfg.mixup_recompute))

    out = Path(cfg.out) if cfg.out else Path("runs") / f"{cfg.dataset}-{cfg.method}-s{cfg.seed}"
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT_NAME
    writer = MetricsWriter(out / "metrics.jsonl")

    data = prepare_data(cfg, confusion_fn=_confusion_scores_fn(cfg, device))
    tr = data.train
    k = data.num_classes
    n = len(tr)
    batch_size = min(cfg.batch_size, n)
    steps_per_epoch = max(1, n // batch_size)  # the last incomplete batch is dropped
    burnin, anneal = schedule_steps(cfg, steps_per_epoch)

    model = build_model(cfg.model, tr.input_shape, k, **model_kwargs(cfg))
    step_spec = _step_spec(cfg, model, data, spec)
    # Without augmentation the inputs are normalised once; with it, per batch.
    x_train = tr.x if step_spec.augments else _normalize(tr.x, tr.mean, tr.std)
    x_train = jax.device_put(np.asarray(x_train, np.float32), device)
    y_train = jax.device_put(tr.y.astype(np.int32), device)
    flipped = data.train_flipped.copy()
    kept = jax.device_put((~flipped).astype(np.float32), device) if step_spec.oracle else None
    norm = (lambda a: np.asarray(_normalize(a, tr.mean, tr.std), np.float32))
    test_set = _EvalSet(norm(data.test.x), data.test.y, cfg.eval_batch_size, device)
    val_set = None if data.val is None else _EvalSet(norm(data.val.x), data.val.y, cfg.eval_batch_size, device)

    params, state = model.init(_stream_key(cfg.seed, "init"))
    momentum_buf = jax.tree.map(jnp.zeros_like, params)
    params, state, momentum_buf = (_to_device(t, device) for t in (params, state, momentum_buf))

    records: list[EpochRecord] = []
    start_epoch, step, elapsed = 0, 0, 0.0
    if cfg.resume and ckpt_path.is_file():
        saved_state = load_checkpoint(ckpt_path)
        saved = TrainConfig.from_dict(saved_state["config"])
        diff = cfg.identity_diff(saved)
        if diff:
            raise ValueError(f"cannot resume {ckpt_path}: the options differ from the checkpoint's ({', '.join(diff)})")
        start_epoch, step, elapsed = int(saved_state["epoch"]), int(saved_state["step"]), float(saved_state["elapsed"])
        if not np.array_equal(saved_state["rng"]["next_epoch_keys"], _epoch_key_data(cfg.seed, start_epoch)):
            raise ValueError(f"cannot resume {ckpt_path}: its PRNG keys do not match this version's key derivation")
        params = _to_device(saved_state["params"], device)
        state = _to_device(saved_state["model_state"], device)
        momentum_buf = _to_device(saved_state["momentum"], device)
        records = [EpochRecord.from_dict(r) for r in saved_state["records"]]
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
        epoch_keys = jax.device_put(
            jax.random.wrap_key_data(_epoch_key_data(cfg.seed, epoch), impl="threefry2x32"), device)
        order = epoch_permutation(cfg.seed, epoch, n)
        stats = WeightStats(n)
        outputs = []
        bar = _progress(cfg, progress, steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}")
        step0 = step
        for b in range(steps_per_epoch):
            if cfg.max_steps is not None and step >= cfg.max_steps:
                break
            idx = order[b * batch_size : (b + 1) * batch_size]
            factor = _schedule_factor(step, burnin, anneal, cfg.anneal_start_factor) if step_spec.reweights else None
            strength = _strength_at(cfg, factor) if step_spec.instance is not None else 0.0
            params, state, momentum_buf, loss, w, correct, seen = train_step(
                step_spec, params, state, momentum_buf, x_train, y_train,
                jax.device_put(idx.astype(np.int32), device), epoch_keys, np.int32(b),
                np.float32(cfg.lr_at(epoch, step, steps_per_epoch)), np.float32(strength),
                np.bool_(factor is not None), kept)
            outputs.append((idx, loss, w, correct, seen))
            step += 1
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        batches = len(outputs)
        host = jax.device_get([(o[1], o[2], o[3], o[4]) for o in outputs])
        loss_sum, correct_sum, seen_sum = 0.0, 0, 0
        for i, ((idx, *_), (loss_v, w_v, c_v, s_v)) in enumerate(zip(outputs, host)):
            loss_val = float(loss_v)
            if not math.isfinite(loss_val):
                raise FloatingPointError(f"non-finite training loss {loss_val} at step {step0 + i + 1}")
            loss_sum += loss_val
            correct_sum += int(c_v)
            seen_sum += int(s_v)
            stats.add(np.asarray(w_v, np.float32), idx, flipped[idx])
        if cfg.max_steps is not None and step >= cfg.max_steps and batches < steps_per_epoch:
            completed = False  # a partial epoch (smoke runs)
        test_acc = test_set.accuracy(model, params, state)
        val_acc = math.nan if val_set is None else val_set.accuracy(model, params, state)
        ws = stats.summary()
        reweighting = spec.oracle or ((spec.instance or spec.classes) and step > burnin)
        t1 = time.perf_counter()
        elapsed += t1 - t0
        rec = EpochRecord.from_epoch(
            epoch=epoch + 1, step=step, lr=lr, loss_sum=loss_sum, batches=batches, correct=correct_sum,
            seen=seen_sum, test_acc=test_acc, val_acc=val_acc, weights=ws, reweighting=reweighting,
            epoch_time=t1 - t0, elapsed=elapsed,
        )
        records.append(rec)
        if cfg.save_weights:
            ckpt.save_epoch_weights(out, epoch + 1, stats.arrays())
        saved_state = {
            "format": CHECKPOINT_FORMAT,
            "framework": "jax",
            "config": cfg.to_dict(),
            "epoch": epoch + 1,
            "step": step,
            "elapsed": elapsed,
            "params": _to_numpy(params),
            "model_state": _to_numpy(state),
            "momentum": _to_numpy(momentum_buf),
            "rng": {"streams": _STREAMS, "next_epoch_keys": _epoch_key_data(cfg.seed, epoch + 1)},
            "records": [r.to_dict() for r in records],
            "best": summarize(records),
        }
        ckpt.atomic_write(ckpt_path, lambda fh: pickle.dump(saved_state, fh, protocol=pickle.HIGHEST_PROTOCOL))
        writer.append(rec)
        log(epoch_line(rec, lr))

    summary = finish_run(cfg, records, completed, out)
    return TrainResult(config=cfg, records=records, summary=summary, out_dir=out)
