"""The jitted pieces of the JAX backend: keys, augmentation, one training step, evaluation.

Everything is pure JAX (no Flax or Optax): the networks are explicit
parameter pytrees (:mod:`divweights_train.models_jax`), the optimiser is SGD
with (Nesterov) momentum and coupled weight decay written out as in
:class:`torch.optim.SGD`, and one jitted training step (:func:`train_step`)
does augmentation, the forward passes, weighted mixup, the reweighted loss
(:func:`divweights_jax.reweighted_loss`) and the update. The learning rate,
the annealed reweighting strength and the burn-in switch are traced scalars
(:func:`scheduled_strength` computes the last two with the JAX adapter's
:func:`~divweights_jax.anneal_factor` and :func:`~divweights_jax.scaled_strength`),
so the step compiles once per run. The step's static description
(:class:`~divweights_train.jax_loss.StepSpec`) and the losses it differentiates
live in :mod:`divweights_train.jax_loss` and are re-exported here.

Every random stream is a PRNG key derived from ``(seed, purpose, epoch)``
with :func:`divweights_train.prepare.derive_seed` (model initialisation, and
per epoch the augmentation, mixup and dropout keys, folded with the batch
number inside the step).
"""

from __future__ import annotations

import collections
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from .jax_loss import (
    StepSpec,
    _method_loss,
    _published_mixup,
    _tracked_rate,
    noise_posterior,
    oracle_loss,
)
from .models_jax import JaxModel
from .prepare import derive_seed

__all__ = [
    "STREAMS",
    "TRACE_COUNTS",
    "StepSpec",
    "oracle_loss",
    "random_crop_flip",
    "scheduled_strength",
    "sgd_update",
    "train_step",
]

#: How many times :func:`train_step` was traced, per :class:`StepSpec`
#: (a Python side effect that runs only while tracing).
TRACE_COUNTS: collections.Counter = collections.Counter()

#: The per-epoch random streams, in the order of the step's ``epoch_keys``.
STREAMS = ("augment", "mixup", "dropout")


# --------------------------------------------------------------------------- #
# Keys, augmentation, normalisation.
# --------------------------------------------------------------------------- #
def key_data(seed: int, tag: str, *extra: int) -> np.ndarray:
    """The two 32-bit words of a threefry key holding the 63-bit derived seed."""
    s = derive_seed(seed, tag, *extra)
    return np.array([s >> 32, s & 0xFFFFFFFF], dtype=np.uint32)


def stream_key(seed: int, tag: str, *extra: int):
    return jax.random.wrap_key_data(key_data(seed, tag, *extra), impl="threefry2x32")


def epoch_key_data(seed: int, epoch: int) -> np.ndarray:
    """Key data ``(3, 2)`` of the augmentation, mixup and dropout streams of ``epoch``."""
    return np.stack([key_data(seed, tag, epoch) for tag in STREAMS])


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


def normalize(x, mean: tuple, std: tuple):
    """``(x - mean) / std`` per channel (images) or feature, as the torch trainer does."""
    if not mean:
        return x
    m = np.asarray(mean, np.float32)
    s = np.asarray(std, np.float32)
    shape = (1, -1, 1, 1) if x.ndim == 4 else (1, -1)
    return (x - m.reshape(shape)) / s.reshape(shape)


# --------------------------------------------------------------------------- #
# The optimiser.
# --------------------------------------------------------------------------- #
def sgd_update(
    params,
    grads,
    momentum_buf,
    lr,
    *,
    momentum: float,
    nesterov: bool,
    weight_decay: float,
):
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


# --------------------------------------------------------------------------- #
# The jitted training step.
# --------------------------------------------------------------------------- #
@functools.partial(jax.jit, static_argnames=("spec",))
def train_step(
    spec: StepSpec,
    params,
    state,
    momentum_buf,
    x_all,
    y_all,
    idx,
    epoch_keys,
    batch,
    lr,
    strength,
    active,
    kept_all=None,
    noise_rate=None,
    aux=None,
):
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
    noise_rate : float32 scalar, optional
        The tracked noise rate (``0`` at the first step); needed (only) by the
        adaptive radii (``spec.tracks_noise``).
    aux : dict, optional
        Dynamic Mixup's beta mixture: ``table`` (100,), ``loss_min``,
        ``loss_max`` (:mod:`divweights_train.bmm`); with ``spec.loss ==
        "dynamic-mixup"`` the bootstrapping is on where ``active`` is True.

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
    noise_rate : float32 scalar
        Only with ``spec.tracks_noise``: the tracked noise rate after this
        step's clean batch.
    losses : float32 array, shape (B,)
        Only with ``spec.loss == "dynamic-mixup"``: the per-example
        cross-entropy of the clean pass (its per-example state).
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
        x = normalize(x, spec.mean, spec.std)

    dynamic = spec.loss == "dynamic-mixup"
    if dynamic:
        logits0, state_in = model.apply(params, state, x, train=True, key=k_drop_clean)
        logits0 = jax.lax.stop_gradient(logits0)
        logp0 = jax.nn.log_softmax(logits0.astype(jnp.float32), axis=-1)
        clean_losses = -jnp.take_along_axis(logp0, y[:, None], axis=-1)[:, 0]
        k = model.num_classes
        b = noise_posterior(clean_losses, aux["table"], aux["loss_min"], aux["loss_max"])
        b = jnp.where(active, b, 0.0)[:, None]
        onehot = jax.nn.one_hot(y, k, dtype=jnp.float32)
        boot = (1 - b) * onehot + b * jax.nn.one_hot(jnp.argmax(logits0, -1), k, dtype=jnp.float32)
        trust = 1 - b[:, 0]
        weights = jnp.where(active, trust / jnp.sum(trust), jnp.full((n,), 1.0 / n))
        inputs, targets, _ = weighted_mixup(k_mix, x, boot, weights, mode="plain", alpha=spec.mixup_alpha)
    elif spec.mixup is None:
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
            _, weights = _method_loss(spec, logits0, y, strength, active, noise_rate)
        if spec.mixup_rule == "published" and spec.mixup != "plain":
            inputs, targets, _ = _published_mixup(spec, k_mix, x, y, weights, logits0, model.num_classes)
        else:
            inputs, targets, _ = weighted_mixup(
                k_mix,
                x,
                y,
                weights,
                mode=spec.mixup,
                num_classes=model.num_classes,
                power=spec.mixup_power,
                alpha=spec.mixup_alpha,
                predictions=logits0,
                smoothing_floor=spec.smoothing_floor,
            )

    uniform_mixed = spec.mixup is not None and spec.mixup != "plain" and not spec.recompute_on_mixed and not dynamic

    def objective(p):
        logits, new_state = model.apply(p, state_in, inputs, train=True, key=k_drop)
        if spec.oracle:
            loss, w = oracle_loss(logits, targets, kept_all[idx])
        elif dynamic:
            logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
            loss = -jnp.mean(jnp.sum(targets * logp, axis=-1))
            # Arazo et al.'s regulariser KL(uniform || mean prediction), weight 1, after the warm-up
            mean_p = jnp.mean(jnp.exp(logp), axis=0)
            reg = jnp.mean(jnp.log(1.0 / model.num_classes) - jnp.log(mean_p))
            loss = loss + jnp.where(active, reg, 0.0)
            w = weights
        elif uniform_mixed:
            from divweights_jax import reweighted_loss

            loss, aux = reweighted_loss(logits, targets, instance=None)
            w = aux["weights"]
        else:
            rate = _tracked_rate(spec, logits, targets, noise_rate)
            loss, w = _method_loss(spec, logits, targets, strength, active, rate)
            return loss, (logits, new_state, w, rate)
        return loss, (logits, new_state, w, noise_rate)

    (loss, (logits, new_state, w, new_rate)), grads = jax.value_and_grad(objective, has_aux=True)(params)
    if spec.mixup is None and not dynamic:
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
    new_params, new_buf = sgd_update(
        params,
        grads,
        momentum_buf,
        lr,
        momentum=spec.momentum,
        nesterov=spec.nesterov,
        weight_decay=spec.weight_decay,
    )
    out = (
        new_params,
        new_state,
        new_buf,
        loss,
        jax.lax.stop_gradient(weights).astype(jnp.float32),
        correct,
        seen,
    )
    if spec.tracks_noise:
        out += (jnp.asarray(new_rate, jnp.float32),)
    if dynamic:
        out += (clean_losses.astype(jnp.float32),)
    return out


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
def eval_probs(model: JaxModel, params, state, xb):
    def one(_, x):
        logits, _ = model.apply(params, state, x, train=False)
        return None, jax.nn.softmax(logits, axis=-1)

    return jax.lax.scan(one, None, xb)[1]


class EvalSet:
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


@functools.partial(jax.jit, static_argnames=("form", "burnin_steps", "anneal_steps", "start_factor"))
def scheduled_strength(
    step,
    target,
    *,
    form: str | None,
    burnin_steps: int,
    anneal_steps: int,
    start_factor: float,
):
    """The instance strength at ``step`` and whether the reweighting is on: the JAX adapter's schedule.

    :func:`divweights_jax.anneal_factor` gives the switch (off for the first
    ``burnin_steps``) and the factor (``start_factor`` at the end of the
    burn-in, linearly down to 1 over ``anneal_steps``);
    :func:`divweights_jax.scaled_strength` applies the factor to ``target``
    (``delta / factor``; ``temperature`` or ``lam`` times the factor). During
    the burn-in the strength is that of the first active step (unused:
    :func:`train_step` takes the plain loss then).

    Parameters
    ----------
    step : int32 scalar
        Global optimisation step (traced).
    target : float32 scalar
        The configured strength (traced).
    form : {"delta", "temperature", "lam"} or None
        How ``target`` is applied; None: no instance reweighting (strength 0).
    burnin_steps, anneal_steps : int
    start_factor : float

    Returns
    -------
    strength : float32 scalar
    active : bool scalar

    Examples
    --------
    >>> kw = dict(form="temperature", burnin_steps=2, anneal_steps=4, start_factor=10.0)
    >>> [(round(float(s), 2), bool(a)) for s, a in (scheduled_strength(t, 0.5, **kw) for t in (0, 2, 4, 9))]
    [(5.0, False), (5.0, True), (2.75, True), (0.5, True)]
    """
    from divweights_jax import anneal_factor, scaled_strength

    factor, active = anneal_factor(
        step,
        burnin_steps=burnin_steps,
        anneal_steps=anneal_steps,
        start_factor=start_factor,
    )
    if form is None:
        return jnp.zeros((), jnp.float32), active
    return scaled_strength(factor, True, **{form: target})[form], active
