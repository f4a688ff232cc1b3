"""The tensor pieces of :class:`~divweights_torch.ReweightedLoss`'s step, in a few fused torch ops.

Everything here runs inside the (possibly compiled) step: no host
synchronisation and no Python branching on tensor values.  The autocast and
``torch.compile`` helpers are shared with ``baselines.py`` and ``mixup.py``.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F

from divweights.adaptive import DEFAULT_NOISE_SHARPNESS


def _is_compiling() -> bool:
    """Whether ``torch.compile`` is tracing this call (``torch.compiler.is_compiling``, torch >= 2.3)."""
    check = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    if check is None:  # pragma: no cover - older torch
        check = torch._dynamo.is_compiling
    return check()


def _autocast_off(device_type: str):
    """Context that disables autocast for ``device_type`` if it is on."""
    try:
        on = torch.is_autocast_enabled(device_type)
    except (TypeError, RuntimeError):  # pragma: no cover - device types without autocast
        on = False
    return torch.autocast(device_type, enabled=False) if on else contextlib.nullcontext()


def _batch_noise_rate(
    logp, targets, invalid, integer: bool, sharpness: float = DEFAULT_NOISE_SHARPNESS, ignore_index: int = -100
):
    """:func:`divweights.noise_rate` of one batch in a few fused torch ops (tested equal to the core).

    ``logp`` are log-probabilities ``(N, C)``; ``invalid`` marks the ignored rows of integer
    targets, ``targets == ignore_index`` (or is ``None``).  The batch's class marginal enters only
    through differences between classes of one row, so it is used unnormalised (no count).  A batch
    that tells nothing about the rate gives NaN: no valid row (``0 / 0``; the core's
    :func:`~divweights.noise_rate` says ``0`` there) or a NaN or infinite logit;
    :meth:`~divweights_torch.ReweightedLoss._track_noise` then keeps the tracked rate.

    Integer targets: each row's share lost, ``1 - exp(a (min_j c_ij - c_iy))`` with ``c`` the
    prior-corrected class losses, is ``-X_iy`` of the ``(N, C)`` matrix ``X = expm1(a (min_j c_ij - c))``,
    so one ``nll_loss`` with its mean over the non-ignored rows gathers, averages and counts (9
    operations where a gather, a sum and a count took 15).  Ignored rows are never read (their
    entries are NaN: ``inf - inf``)."""
    # a class no valid row predicts (logits masked with -inf), or an all-ignored batch: -inf -> 0
    masked = logp if invalid is None else logp.masked_fill(invalid[:, None], -math.inf)
    log_q = torch.logsumexp(masked, dim=0).nan_to_num(0.0, 0.0, 0.0)
    corrected = log_q - masked  # prior-corrected class losses up to a constant; +inf on ignored rows
    if integer:
        gap = corrected.amin(dim=1, keepdim=True) - corrected  # <= 0 on valid rows
        lost = torch.expm1(gap if sharpness == 1.0 else gap * sharpness)  # minus each class's share (a = 1: no op)
        # the mean over the non-ignored rows of -lost[i, y_i] (an all-ignored batch: 0 / 0, NaN)
        return F.nll_loss(lost, targets, ignore_index=ignore_index)
    y = targets.detach().to(logp.dtype)
    gap = (corrected.amin(dim=1) - (y * corrected.masked_fill(y <= 0, 0.0)).sum(dim=1)).clamp_max(0.0)
    return 0.0 - torch.expm1(gap if sharpness == 1.0 else gap * sharpness).mean()  # 0.0, not -0.0, when nothing is lost


def _balance_class_shift(v, y, invalid):
    """:func:`divweights.mixup.balance_class_shift` of one batch in a few fused torch ops (tested equal to the core).

    Ignored rows (``invalid``) take their targets first, so they move nothing and do not count."""
    if invalid is not None:
        v = torch.where(invalid[:, None], y, v)
    d = v - y
    net = d.sum(dim=0).abs().sum()
    gross = d.abs().sum()
    s = (1.0 - net / gross).clamp(0.0, 1.0)  # NaN stays NaN: a NaN batch gives NaN
    s = torch.where(gross <= 0, torch.ones_like(s), s)  # nothing moved (0 / 0): the labels
    return torch.addcmul(y, s, d)


def _target_probabilities(targets, safe, integer: bool, eps: float, n: int, k: int, dtype, device):
    """The targets as probabilities ``(N, C)``, label-smoothed by ``eps``.

    ``safe`` are the integer labels with ignored rows set to ``0``; scattering them raises on
    out-of-range labels (on the CPU).  Probability targets are renormalised onto the simplex."""
    if integer:
        on, off = 1.0 - eps + eps / k, eps / k
        y = torch.full((n, k), off, dtype=dtype, device=device)
        return y.scatter(1, safe[:, None], on)  # raises on out-of-range labels (on the CPU)
    y = targets.detach().to(dtype)
    y = y / y.sum(dim=-1, keepdim=True)  # exactly on the simplex (e.g. bfloat16 targets)
    if eps > 0:
        y = y * (1.0 - eps) + eps / k
    return y


def _uniform_weights(invalid, n: int, dtype, device):
    """Uniform instance weights over the rows that are not ignored."""
    if invalid is None:
        return torch.full((n,), 1.0 / n, dtype=dtype, device=device)
    ok = (~invalid).to(dtype)
    return ok / ok.sum().clamp_min(1.0)


# -- the ``last_*`` attributes, built on first access from what the step kept ---------------------
def _last_losses(losses, v, invalid, targets, k):
    """Per-example losses, zero on ignored rows."""
    return losses if invalid is None else losses.masked_fill(invalid, 0.0)


def _last_class_weights(losses, v, invalid, targets, k):
    """Class weights, zero rows on ignored rows; the one-hot labels when there was no class problem."""
    if v is None:  # the labels themselves (ignore_index matches no class: zero rows)
        classes = torch.arange(k, device=targets.device)
        return (targets[:, None] == classes).to(losses.dtype)
    if invalid is not None:
        return v.masked_fill(invalid[:, None], 0.0)
    return v
