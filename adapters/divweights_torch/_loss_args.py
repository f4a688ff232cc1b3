"""Argument checks of :class:`~divweights_torch.ReweightedLoss`: plain Python, run once or on metadata only.

The hyperparameters are validated once, in ``__init__`` (:func:`_parse_strength`,
:func:`_parse_gamma`, :func:`_check_classes`); each call checks only the shapes and dtypes of its
tensors (:func:`_check_inputs`), never their values, so the step stays free of
host synchronisation.  :func:`_raise_for_labels` turns torch's error for an
out-of-range label into the core's message, after a kernel has raised.
"""

from __future__ import annotations

import math
import numbers

import torch

from divweights import Alpha, Divergence, ReverseKL
from divweights.adaptive import _adaptive_ok
from divweights.adaptive import _default_is_auto as _auto_delta  # the rule both adapters share
from divweights.strength import Strength

#: The value of ``delta`` / ``gamma`` that sets the radius from the tracked noise rate.
AUTO = "auto"

_REDUCTIONS = ("none", "sum", "mean")


def _real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__}")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name} must not be NaN")
    return value


def _parse_strength(instance, lam, delta, temperature) -> Strength | None:
    """Validate the instance divergence and its strength once, with plain Python.

    ``delta="auto"`` (the default for KL) returns a placeholder ``Strength("delta", 0.0)``; the
    radius is set per step from the tracked noise rate."""
    if _auto_delta(instance, lam, delta, temperature):
        if lam is not None or temperature is not None:
            raise ValueError("give at most one of lam, delta, temperature; got delta='auto' and another")
        if instance is None:
            raise ValueError("delta='auto' given but instance=None (uniform weights); pass a divergence")
        if not _adaptive_ok(instance, "instance"):
            raise ValueError(
                f"delta='auto' needs an f-divergence whose radius can drop examples (KL, Alpha(a) with a > 0, "
                f"ChiSquared, TotalVariation); got {instance!r}: give lam=, delta= or temperature="
            )
        return Strength("delta", 0.0)
    for name, value in (("lam", lam), ("delta", delta), ("temperature", temperature)):
        if value is not None:
            _real(name, value)  # a Python number: a tensor strength would be a per-run constant anyway
    return Strength.parse(instance, lam=lam, delta=delta, temperature=temperature)


def _supports_class_problem(classes: Divergence) -> bool:
    """Whether the core has a class solver for ``classes`` (plain Python, no tensors)."""
    if type(classes).class_problem is Divergence.class_problem:
        return False
    if isinstance(classes, Alpha) and not isinstance(classes, ReverseKL):
        return classes.is_kl or classes.alpha == 0.0
    return True


def _parse_gamma(classes, gamma) -> tuple[float, bool]:
    """Validate the class radius once: ``(gamma, adaptive)``.

    ``gamma="auto"`` gives ``adaptive=True`` and the placeholder ``gamma = 1.0`` (the radius is
    set per step from the tracked noise rate)."""
    adaptive = gamma == AUTO
    if adaptive:
        if classes is None:
            raise ValueError("gamma='auto' needs a class divergence, e.g. classes=ReverseKL()")
        if not _adaptive_ok(classes, "class"):
            raise ValueError(f"gamma='auto' needs TotalVariation() or ReverseKL() class weights; got {classes!r}")
        gamma = 1.0  # a placeholder: the radius is set per step
    gamma = _real("gamma", gamma)
    if not (math.isfinite(gamma) and gamma >= 0):
        raise ValueError(f"gamma must be finite and >= 0; got {gamma!r}")
    return gamma, adaptive


def _check_classes(classes, gamma: float) -> None:
    """The class divergence is one the core has a class solver for (``gamma > 0`` needs one)."""
    if classes is None:
        if gamma != 0:
            raise ValueError("gamma > 0 needs a class divergence, e.g. classes=TotalVariation()")
        return
    if isinstance(classes, type) or not isinstance(classes, Divergence):
        raise TypeError(f"classes must be a divweights divergence instance or None; got {classes!r}")
    if not _supports_class_problem(classes):
        raise ValueError(
            f"class weights are not available for {classes!r}; supported: TotalVariation(), "
            "ReverseKL(), SquaredL2(), and KL() with probability (soft) targets"
        )


def _check_balance(balance_classes, classes, gamma) -> bool:
    """``balance_classes`` is a bool, and asks for class weights that exist."""
    if not isinstance(balance_classes, bool):
        raise TypeError(f"balance_classes must be a bool; got {type(balance_classes).__name__}")
    if balance_classes and (classes is None or (not isinstance(gamma, str) and gamma == 0)):
        raise ValueError("balance_classes=True needs class reweighting: classes=... and gamma > 0 (or 'auto')")
    return balance_classes


def _check_inputs(logits, targets, weight) -> None:
    """Shape and dtype checks of one call: plain Python on metadata, no tensor values."""
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor; got {type(logits).__name__}")
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (N, C); got {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be floating point; got {logits.dtype}")
    n, k = logits.shape
    if n == 0:
        raise ValueError("empty batch: logits has no rows")
    if weight is not None and weight.shape[0] != k:
        raise ValueError(f"weight has {weight.shape[0]} entries for {k} classes")
    if not isinstance(targets, torch.Tensor):
        raise TypeError(f"targets must be a torch.Tensor; got {type(targets).__name__}")
    if targets.dtype == torch.bool or targets.is_complex():
        raise TypeError(f"targets must be integer class indices or floating probabilities; got {targets.dtype}")
    if targets.is_floating_point():
        if targets.ndim == 1:
            raise TypeError(
                f"floating targets of shape {tuple(targets.shape)}: class indices must be an integer "
                "tensor (e.g. targets.long()); floating targets are class probabilities of shape (N, C)"
            )
        if tuple(targets.shape) != (n, k):
            raise ValueError(f"probability targets must have the logits' shape {(n, k)}; got {tuple(targets.shape)}")
    elif tuple(targets.shape) != (n,):
        raise ValueError(
            f"integer targets must have shape (N,) = {(n,)} for logits of shape {(n, k)}; got {tuple(targets.shape)}"
        )


def _raise_for_labels(k: int, targets, ignore_index: int | None, exc: BaseException) -> None:
    """Turn torch's index error for an out-of-range label into the core's message (eager, CPU).

    Called only after a kernel has raised, so valid batches pay nothing; reads the labels on the host."""
    if not isinstance(targets, torch.Tensor) or targets.is_floating_point() or targets.ndim != 1:
        return
    if targets.device.type != "cpu" or targets.dtype == torch.bool or targets.is_complex():
        return
    kept = targets if ignore_index is None else targets[targets != ignore_index]
    if kept.numel() == 0:
        return
    lo, hi = int(kept.min()), int(kept.max())
    if lo < 0 or hi >= k:
        skipped = "" if ignore_index is None else f" (rows equal to ignore_index={ignore_index} are skipped)"
        raise ValueError(
            f"integer targets must lie in [0, {k}) for {k} classes; got values in [{lo}, {hi}]{skipped}"
        ) from exc
