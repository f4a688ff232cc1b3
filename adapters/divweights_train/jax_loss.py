"""The method's loss of one JAX training step, and the static description of that step.

:class:`StepSpec` holds everything static about a step (a ``jax.jit`` static
argument of :func:`divweights_train.jax_step.train_step`); the functions here
compute the loss the step differentiates: the method's reweighted loss and
its instance weights (:func:`divweights_jax.reweighted_loss`, with the
adaptive radius of the tracked noise rate), the robust baseline losses
(:mod:`divweights_jax.baselines`), the oracle filter's loss, Dynamic Mixup's
noise posterior (:mod:`divweights_train.bmm`) and weighted mixup with the
published rule (:mod:`divweights_train.protocol`). All are pure JAX and run
inside the jitted step.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from .config import parse_divergence
from .models_jax import JaxModel

__all__ = ["StepSpec", "noise_posterior", "oracle_loss"]


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
    balance_classes : bool
        Balance the class-weight shift of each batch
        (:func:`divweights.mixup.balance_class_shift`; ``--balance-classes``).
    mixup : str or None
        Weighted mixup mode, None for no mixup.
    recompute_on_mixed : bool
        With mixup: the loss of the mixed batch is the method's reweighted
        loss (weights recomputed on it); otherwise plain (soft-target)
        cross-entropy. Plain mixup always uses the method's loss (uniform).
    mixup_alpha, mixup_power : float
    smoothing_floor : float
        CIW-M's least kept share of each label (:func:`~divweights_train.config.smoothing_floor`).
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
        examples whose labels were not flipped (``kept_all`` of :func:`~divweights_train.jax_step.train_step`).
    adaptive, adaptive_classes : bool
        ``delta="auto"`` / ``gamma="auto"``: the instance / class radius is
        :func:`divweights.noise_radius` of the tracked noise rate
        (``noise_rate`` of :func:`~divweights_train.jax_step.train_step`, updated every step with
        :func:`divweights.track_noise_rate` on the batch the loss is taken on, before its radius is
        computed, as :class:`divweights_torch.ReweightedLoss` does).
    loss : str
        ``"reweighted"``, a robust loss (``"bi-tempered"``, ``"nce-rce"``,
        ``"gce"``, ``"sce"``; :mod:`divweights_jax.baselines`, averaged over
        the batch) or ``"dynamic-mixup"``.
    loss_params : tuple of (str, float)
        Keyword arguments of the robust loss.
    mixup_rule : str
        ``"divweights"`` or ``"published"`` (:mod:`divweights_train.protocol`:
        mixing weights :math:`w^m`, the published CIW-M smoothing). The
        published burn-in (plain mixup, none for label smoothing) is a
        separate spec that the backend uses for the burn-in steps.
    """

    model: JaxModel
    instance: str | None = None
    strength_form: str | None = None
    classes: str | None = None
    gamma: float = 0.0
    balance_classes: bool = False
    mixup: str | None = None
    recompute_on_mixed: bool = True
    mixup_alpha: float = 1.0
    mixup_power: float = 1.0
    smoothing_floor: float = 0.0
    crop_pad: int = 0
    flip: bool = False
    mean: tuple = ()
    std: tuple = ()
    weight_decay: float = 0.0
    momentum: float = 0.0
    nesterov: bool = False
    oracle: bool = False
    adaptive: bool = False
    adaptive_classes: bool = False
    loss: str = "reweighted"
    loss_params: tuple = ()
    mixup_rule: str = "divweights"

    @property
    def tracks_noise(self) -> bool:
        return self.adaptive or self.adaptive_classes

    @property
    def reweights(self) -> bool:
        return self.instance is not None or self.classes is not None

    @property
    def augments(self) -> bool:
        return self.crop_pad > 0 or self.flip


def oracle_loss(logits, targets, kept):
    """Cross-entropy averaged over the examples with ``kept == 1`` (the perfect-filter reference).

    The adapter's uniform loss with the flipped rows masked out. Returns
    ``(loss, weights)`` with ``weights = kept / sum(kept)``; a batch whose labels
    are all flipped contributes a zero loss (and zero gradient).
    """
    from divweights_jax import reweighted_loss

    loss, aux = reweighted_loss(logits, targets, instance=None, mask=kept > 0)
    return loss, aux["weights"]


def _baseline_loss(spec: StepSpec, logits, targets):
    """Mean of the robust loss of ``spec.loss`` over the batch, and uniform weights."""
    from divweights_jax import baselines

    kw = dict(spec.loss_params)
    if spec.loss == "bi-tempered":
        iters = 5 if kw["t2"] >= 1 else 30
        per = baselines.bi_tempered_logistic_loss(logits, targets, kw["t1"], kw["t2"], num_iters=iters)
    elif spec.loss == "nce-rce":
        per = baselines.nce_rce_loss(logits, targets, alpha=kw["alpha"], beta=kw["beta"])
    elif spec.loss == "gce":
        per = baselines.generalized_cross_entropy(logits, targets, q=kw["q"])
    elif spec.loss == "sce":
        per = baselines.symmetric_cross_entropy(logits, targets, alpha=kw["alpha"], beta=kw["beta"])
    else:  # pragma: no cover - specs are built from the config's methods
        raise ValueError(f"no robust loss {spec.loss!r}")
    n = logits.shape[0]
    return jnp.mean(per), jnp.full((n,), 1.0 / n, jnp.float32)


def noise_posterior(losses, table, loss_min, loss_max):
    """Dynamic Mixup's posterior ``B`` of the high-loss component (as :func:`divweights_train.bmm.noise_posterior`)."""
    from .bmm import B_EPS, LOOKUP_SIZE, X_EPS

    x = (losses.astype(jnp.float32) - loss_min) / (loss_max - loss_min + 1e-6)
    x = jnp.where(x >= 1, 1 - X_EPS, jnp.where(x <= 0, X_EPS, x))
    idx = jnp.clip(jnp.floor(LOOKUP_SIZE * x).astype(jnp.int32), 0, LOOKUP_SIZE - 1)
    return jnp.clip(table[idx], B_EPS, 1 - B_EPS)


def _published_mixup(spec: StepSpec, key, x, y, weights, logits0, num_classes):
    """Weighted mixup with the published rule (:mod:`divweights_train.protocol`)."""
    from divweights_jax import weighted_mixup

    from .protocol import mixing_weights, published_smoothing

    mw = mixing_weights(weights.astype(jnp.float32), spec.mixup_power)
    if spec.mixup == "label_smoothing":
        s = published_smoothing(mw)[:, None]
        onehot = jax.nn.one_hot(y, num_classes, dtype=jnp.float32)
        pred = jax.nn.one_hot(jnp.argmax(logits0, axis=-1), num_classes, dtype=jnp.float32)
        soft = s * onehot + (1 - s) * pred
        return weighted_mixup(key, x, soft, mw, mode="plain", alpha=spec.mixup_alpha)
    # the published ratio: r_i = mw_i / (mw_i + mw_j), deterministic
    return weighted_mixup(
        key,
        x,
        y,
        mw,
        mode=spec.mixup,
        num_classes=num_classes,
        power=1.0,
        alpha=spec.mixup_alpha,
        weight_ratio="deterministic",
    )


def _tracked_rate(spec: StepSpec, logits, targets, noise_rate):
    """The tracked noise rate after this batch (``divweights.track_noise_rate``), as the torch loss updates
    it before computing the radius; ``noise_rate`` unchanged when the method has no adaptive radius."""
    if not spec.tracks_noise:
        return noise_rate
    from divweights import track_noise_rate

    class_losses = -jax.nn.log_softmax(jax.lax.stop_gradient(logits).astype(jnp.float32), axis=-1)
    return track_noise_rate(noise_rate, class_losses, targets).astype(jnp.float32)


def _method_loss(spec: StepSpec, logits, targets, strength, active, noise_rate=None):
    """The method's loss and instance weights; plain cross-entropy while ``active`` is False."""
    from divweights_jax import reweighted_loss

    from divweights import noise_radius

    if spec.loss not in ("reweighted", "dynamic-mixup"):
        return _baseline_loss(spec, logits, targets)
    plain, aux_plain = reweighted_loss(logits, targets, instance=None)
    if not spec.reweights:
        return plain, aux_plain["weights"]
    kwargs: dict[str, Any] = {"instance": None}
    if spec.instance is not None:
        kwargs["instance"] = parse_divergence(spec.instance)
        if spec.adaptive:
            kwargs["delta"] = noise_radius(kwargs["instance"], noise_rate)
        else:
            kwargs[spec.strength_form] = strength
    if spec.classes is not None:
        kwargs["classes"] = parse_divergence(spec.classes)
        kwargs["gamma"] = (
            noise_radius(kwargs["classes"], noise_rate, problem="class") if spec.adaptive_classes else spec.gamma
        )
        kwargs["balance_classes"] = spec.balance_classes
    loss, aux = reweighted_loss(logits, targets, **kwargs)
    return jnp.where(active, loss, plain), jnp.where(active, aux["weights"], aux_plain["weights"])
