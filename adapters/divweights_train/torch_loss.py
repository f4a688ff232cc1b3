"""The losses of the PyTorch backend: the method's loss module, the robust baselines, the oracle filter.

:func:`build_loss` makes the method's :class:`divweights_torch.ReweightedLoss`
(burn-in and annealing included), :func:`build_baseline_loss` the robust loss
of a baseline method (:mod:`divweights_torch.baselines`); :func:`oracle_loss`
is the perfect-filter reference and :func:`noise_posterior` Dynamic Mixup's
posterior on the device. :class:`divweights_train.trainer_torch.TorchBackend`
uses them, and :mod:`~divweights_train.trainer_torch` re-exports them.
"""

from __future__ import annotations

from typing import Any

import torch

from .config import BASELINE_LOSSES, TrainConfig, method_spec, parse_divergence

__all__ = ["build_baseline_loss", "build_loss", "noise_posterior", "oracle_loss"]


def _torch_api():
    try:
        import divweights_torch as dwt
    except ImportError as err:  # pragma: no cover - the adapter ships with the package
        raise ImportError("the torch trainer needs the divweights_torch adapter") from err
    missing = [n for n in ("ReweightedLoss", "AnnealSchedule", "weighted_mixup") if not hasattr(dwt, n)]
    if missing:
        raise ImportError(f"divweights_torch lacks {', '.join(missing)}; is the adapter installed?")
    return dwt


def build_loss(
    config: TrainConfig,
    burnin_steps: int,
    anneal_steps: int,
    start_factor: float | None = None,
):
    """The loss module of ``config.method`` (a ``divweights_torch.ReweightedLoss``).

    ``ce`` and ``mixup`` use uniform instance weights and no class
    reweighting; ``bootstrap`` uses class reweighting only (total variation
    by default: hard bootstrapping); the CIW methods add instance weights.
    The reweighting (instance and class) is off for ``burnin_steps`` and its
    strength is annealed over ``anneal_steps`` from ``start_factor`` (default:
    the config's ``anneal_start_factor``).
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
    if spec.classes and (cfg.class_gamma == "auto" or cfg.class_gamma > 0):
        kwargs["classes"] = parse_divergence(cfg.class_divergence)
        kwargs["gamma"] = cfg.class_gamma if cfg.class_gamma == "auto" else float(cfg.class_gamma)
        kwargs["balance_classes"] = bool(kwargs["classes"] is not None and cfg.balance_classes)
    if spec.instance or spec.classes:
        kwargs["schedule"] = dwt.AnnealSchedule(
            burnin_steps,
            anneal_steps,
            start_factor=cfg.anneal_start_factor if start_factor is None else start_factor,
        )
    return dwt.ReweightedLoss(**kwargs)


def build_baseline_loss(config: TrainConfig):
    """The robust loss module of a baseline method (``bi-tempered``, ``nce-rce``, ``gce``, ``sce``).

    The adapter's :mod:`divweights_torch.baselines` losses, averaged over the
    batch, with the config's ``t1``/``t2``, ``loss_alpha``/``loss_beta`` or
    ``q``. The bi-tempered normaliser takes 5 fixed-point iterations for
    ``t2 >= 1`` (the published default) and 30 bisection steps below.
    """
    from divweights_torch import baselines

    cfg = config.resolved()
    name = method_spec(cfg.method).loss
    if name == "bi-tempered":
        iters = 5 if cfg.t2 >= 1 else 30
        return baselines.BiTemperedLoss(t1=cfg.t1, t2=cfg.t2, num_iters=iters)
    if name == "nce-rce":
        return baselines.NCERCELoss(alpha=cfg.loss_alpha, beta=cfg.loss_beta)
    if name == "gce":
        return baselines.GCELoss(q=cfg.q)
    if name == "sce":
        return baselines.SCELoss(alpha=cfg.loss_alpha, beta=cfg.loss_beta)
    raise ValueError(f"method {cfg.method!r} has no baseline loss (those are {', '.join(BASELINE_LOSSES)})")


def noise_posterior(losses: torch.Tensor, table: torch.Tensor, loss_min, loss_max) -> torch.Tensor:
    """Dynamic Mixup's posterior ``B`` of the high-loss component, on the device.

    The arithmetic of :func:`divweights_train.bmm.noise_posterior` (the NumPy reference).
    """
    from .bmm import B_EPS, LOOKUP_SIZE, X_EPS

    x = (losses.float() - loss_min) / (loss_max - loss_min + 1e-6)
    x = torch.where(x >= 1, 1 - X_EPS, torch.where(x <= 0, X_EPS, x))
    idx = torch.floor(LOOKUP_SIZE * x).long().clamp(0, LOOKUP_SIZE - 1)
    return table[idx].clamp(B_EPS, 1 - B_EPS)


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


def _clean_pass_weights(loss_fn, logits, targets):
    """Weights of the clean batch, without advancing the loss's step counter."""
    if hasattr(loss_fn, "weights"):
        return loss_fn.weights(logits, targets).detach()
    saved = {k: v.clone() for k, v in loss_fn.state_dict().items()}
    with torch.no_grad():
        loss_fn(logits, targets)
    loss_fn.load_state_dict(saved)
    return loss_fn.last_weights.detach()
