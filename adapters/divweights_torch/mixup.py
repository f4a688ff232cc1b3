r"""Weighted mixup on torch tensors.

Each example :math:`i` is mixed with a partner :math:`j = \pi(i)` as
:math:`\tilde x_i = r_i x_i + (1 - r_i) x_j` and
:math:`\tilde y_i = r_i y_i + (1 - r_i) y_j`, with the same ratio for inputs
and labels.  The partners and ratios depend on the ``mode``:

=====================  ===============================================  ================================
mode                   partners :math:`\pi(i)`                          ratio :math:`r_i`
=====================  ===============================================  ================================
``"plain"``            random permutation                               :math:`\mathrm{Beta}(\alpha, \alpha)`
``"sample"``           i.i.d., :math:`P(j) \propto w_j^{p}`             :math:`\mathrm{Beta}(\alpha, \alpha)`
``"weight"``           random permutation                               :math:`\mathrm{Beta}(2\alpha\rho, 2\alpha(1-\rho))`
``"sample_weight"``    i.i.d., :math:`P(j) \propto w_j^{p}` (CICW-M)    :math:`\mathrm{Beta}(2\alpha\rho, 2\alpha(1-\rho))`
``"label_smoothing"``  random permutation (after smoothing; CIW-M)      :math:`\mathrm{Beta}(\alpha, \alpha)`
=====================  ===============================================  ================================

with :math:`\rho = w_i / (w_i + w_j)` (:math:`1/2` when both are zero): the
weighted ratio has mean :math:`\rho` and is plain mixup's
:math:`\mathrm{Beta}(\alpha, \alpha)` at equal weights;
``weight_ratio="deterministic"`` takes :math:`r_i = \rho` (the published
code's rule, its limit :math:`\alpha \to \infty`).

The formulas (sampling distribution, zero-safe ratio, Beta parameters, CIW-M
smoothing) come from :mod:`divweights.mixup`; this module only draws the random numbers, from
public torch samplers (``torch.multinomial``, ``torch.randperm``,
``torch.rand``, ``torch.randn``) that all honour an optional
:class:`torch.Generator`.
"""

from __future__ import annotations

import math
import numbers

import torch

from divweights import mixup as core
from divweights.mixup import MIXUP_MODES, WEIGHT_RATIOS

from .loss import _is_compiling, _raise_for_labels

__all__ = ["MIXUP_MODES", "WEIGHT_RATIOS", "beta_symmetric", "weighted_mixup"]

_NEEDS_WEIGHTS = ("sample", "weight", "sample_weight", "label_smoothing")
_PERMUTED = ("plain", "weight", "label_smoothing")
_FULL = (torch.float32, torch.float64)
#: proposals per Gamma draw; all of them are rejected with probability below 1e-15
_GAMMA_ROUNDS = 12


def beta_symmetric(
    n: int,
    alpha: float,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""``n`` independent draws of :math:`\mathrm{Beta}(\alpha, \alpha)` from public torch samplers.

    A Beta variable is :math:`X / (X + Y)` for independent
    :math:`X, Y \sim \mathrm{Gamma}(\alpha)`.  Each Gamma draw uses the
    Marsaglia-Tsang method on the boosted shape :math:`a = \alpha + 1`
    (:math:`d = a - 1/3`, :math:`c = 1/\sqrt{9d}`: propose
    :math:`v = (1 + c\,z)^3` with :math:`z \sim N(0, 1)`, accept when
    :math:`\log u < z^2/2 + d - d v + d \log v`) and the boost
    :math:`\mathrm{Gamma}(\alpha) = \mathrm{Gamma}(\alpha + 1)\,U^{1/\alpha}`.
    The draws are made in float64 (float32 on devices without it) and cast
    to ``dtype``.  All proposals are drawn at once and the first accepted one is kept (a
    fixed amount of work, no data-dependent shapes: it compiles with
    ``torch.compile``); the acceptance rate is above 0.95, so with
    12 proposals a draw fails with probability below :math:`10^{-15}` (it
    then takes the last proposal).  The ratio is formed in log space,
    :math:`\mathrm{sigmoid}(\log X - \log Y)`, so small :math:`\alpha` (where
    :math:`U^{1/\alpha}` underflows) gives 0 or 1, never NaN.

    Parameters
    ----------
    n : int
        Number of draws.
    alpha : float
        Concentration, finite and ``> 0``.
    dtype : torch.dtype, default float32
        Floating dtype of the draws.
    device : torch.device or str, optional
        Default: the generator's device, else the CPU.
    generator : torch.Generator, optional
        Source of randomness; default: torch's global generator.

    Returns
    -------
    torch.Tensor, shape (n,)
        Values in :math:`[0, 1]`.

    Examples
    --------
    >>> import torch
    >>> from divweights_torch.mixup import beta_symmetric
    >>> r = beta_symmetric(20000, 2.0, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> round(float(r.mean()), 2), round(float(r.var()), 3)  # Beta(2, 2): mean 1/2, variance 1/20
    (0.5, 0.05)
    """
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a finite number > 0; got {alpha!r}")
    if device is None:
        device = generator.device if generator is not None else torch.device("cpu")
    shape = torch.full((n,), float(alpha), dtype=_work_dtype(device), device=device)
    return _beta(shape, shape, generator).to(dtype)


def _work_dtype(device) -> torch.dtype:
    """float64 for the Beta draws (float32 uniforms are too coarse for the tails of small shapes), except
    where the device has none."""
    return torch.float32 if torch.device(device).type == "mps" else torch.float64


def _beta(a: torch.Tensor, b: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    r"""Draws of :math:`\mathrm{Beta}(a_i, b_i)` for shape tensors ``a``, ``b`` of shape (n,), all > 0.

    :math:`X / (X + Y)` with :math:`X \sim \mathrm{Gamma}(a_i)`, :math:`Y \sim \mathrm{Gamma}(b_i)`
    (Marsaglia-Tsang on :math:`a + 1`, boosted by :math:`U^{1/a}`; see :func:`beta_symmetric`), formed
    as :math:`\mathrm{sigmoid}(\log X - \log Y)`. In the dtype and on the device of ``a``.
    """
    n = a.shape[0]
    work, device = a.dtype, a.device
    shapes = torch.stack((a, b))[:, None, :]  # (2, 1, n)
    d = shapes + (1.0 - 1.0 / 3.0)
    c = torch.rsqrt(9.0 * d)
    size = (2, _GAMMA_ROUNDS, n)
    z = torch.randn(size, dtype=work, device=device, generator=generator)
    u = torch.rand(size, dtype=work, device=device, generator=generator)
    boost = torch.rand((2, n), dtype=work, device=device, generator=generator)
    v = (1.0 + c * z) ** 3
    pos = v > 0
    log_v = torch.log(torch.where(pos, v, 1.0))
    accept = pos & (torch.log1p(-u) < 0.5 * z * z + d - d * v + d * log_v)
    # first accepted proposal (the last one if none is)
    accept = accept.clone()
    accept[:, -1] = True
    first = accept.to(torch.uint8).argmax(dim=1, keepdim=True)
    log_v = torch.where(pos, log_v, 0.0).gather(1, first)[:, 0]
    # log Gamma(shape) = log(d v) + log(U) / shape, with U = 1 - rand in (0, 1]
    log_g = torch.log(d[:, 0]) + log_v + torch.log1p(-boost) / shapes[:, 0]
    return torch.sigmoid(log_g[0] - log_g[1])


def _weighted_beta(
    w_i: torch.Tensor, w_j: torch.Tensor, alpha: float, dtype: torch.dtype, generator: torch.Generator | None
) -> torch.Tensor:
    r"""Weighted ratios :math:`r \sim \mathrm{Beta}(2\alpha\rho, 2\alpha(1 - \rho))`, :math:`\rho = w_i / (w_i + w_j)`
    (:func:`divweights.mixup.weighted_beta_parameters`), in ``dtype``; exactly 1 (0) where :math:`\rho` is 1 (0)."""
    work = _work_dtype(w_i.device)
    a, b = core.weighted_beta_parameters(w_i.to(work), w_j.to(work), float(alpha))
    # Beta(a, 0) is the point mass at 1 and Beta(0, b) the one at 0: draw with a positive floor, then pin them
    tiny = torch.finfo(work).tiny
    r = _beta(a.clamp_min(tiny), b.clamp_min(tiny), generator)
    r = torch.where(b <= 0, 1.0, r)  # (a NaN shape, from a NaN weight, stays NaN: NaN <= 0 is false)
    r = torch.where(a <= 0, 0.0, r)
    return r.to(dtype)


def _rows(x: torch.Tensor, index: torch.Tensor, *, gather: bool) -> torch.Tensor:
    """``x[index]`` along the first axis; with ``gather`` as a ``torch.gather`` (inductor in
    torch 2.13 fails to compile ``x[torch.randperm(n)]``, a pattern it rewrites)."""
    if not gather:
        return x[index]
    return x.gather(0, index.reshape((-1,) + (1,) * (x.ndim - 1)).expand(x.shape))


def weighted_mixup(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor | None,
    *,
    mode: str,
    num_classes: int | None = None,
    power: float = 1.0,
    alpha: float = 1.0,
    predictions: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    weight_ratio: str = "beta",
    smoothing_floor: float = 0.0,
):
    r"""Mix a batch with partners and ratios chosen from instance weights.

    Parameters
    ----------
    inputs : torch.Tensor, shape (N, ...)
        Floating inputs.
    targets : torch.Tensor
        Integer labels ``(N,)`` (needs ``num_classes``, or ``predictions`` to
        infer it) or probabilities ``(N, C)``.
    weights : torch.Tensor, shape (N,) or None
        Nonnegative instance weights (e.g. :attr:`ReweightedLoss.last_weights`
        or :meth:`ReweightedLoss.weights`); detached.  Only ``"plain"``
        accepts ``None``.  Their scale does not matter.
    mode : {"plain", "sample", "weight", "sample_weight", "label_smoothing"}
        See the table in :mod:`divweights_torch.mixup`.  ``"sample_weight"``
        is CICW-M and ``"label_smoothing"`` CIW-M.
    num_classes : int, optional
        Number of classes for integer ``targets``.
    power : float, default 1.0
        Exponent ``p`` of the partner distribution ``P(j) ∝ w_j^p``.
    alpha : float, default 1.0
        Concentration :math:`\alpha > 0` of the ratios: ``Beta(alpha, alpha)``
        (drawn by :func:`beta_symmetric`) in the modes ``"plain"``,
        ``"sample"`` and ``"label_smoothing"``;
        :math:`\mathrm{Beta}(2\alpha\rho_i, 2\alpha(1 - \rho_i))` with
        :math:`\rho_i = w_i / (w_i + w_{\pi(i)})` in ``"weight"`` and
        ``"sample_weight"`` (unused with ``weight_ratio="deterministic"``).
    predictions : torch.Tensor, shape (N, C), optional
        Logits or probabilities; required by ``"label_smoothing"``, which
        first replaces each label by
        :math:`s_i y_i + (1 - s_i)\,\mathrm{onehot}(\arg\max_j \mathrm{pred}_{ij})`
        with the smoothing factors :math:`s` of
        :func:`divweights.mixup.smoothing_factors` (see
        :func:`divweights.mixup.smooth_targets`).
    smoothing_floor : float, default 0.0
        ``"label_smoothing"`` only: the least share of each label kept,
        :math:`s_i = \max(w_i / \max_j w_j, f)`
        (:func:`divweights.mixup.smoothing_factors`); ``0`` is the published
        rule, :func:`divweights.mixup.stable_label_share` of the noise rate
        keeps a wrong prediction from sustaining itself.
    generator : torch.Generator, optional
        Source of randomness (on the inputs' device); default: torch's global
        one.  ``torch.compile`` cannot trace a generator: compile with
        ``generator=None``.

    Returns
    -------
    mixed_inputs : torch.Tensor
        Same shape and dtype as ``inputs``.
    mixed_targets : torch.Tensor, shape (N, C)
        Floating probabilities (``targets``' dtype if floating, else the
        inputs' floating dtype, at least float32).
    info : dict
        The same keys in both adapters: ``"partners"`` (``(N,)`` int64, the
        :math:`\pi(i)`), ``"ratios"`` (``(N,)``, the :math:`r_i`), and for
        ``"label_smoothing"`` also ``"smoothing"`` (``(N,)``, the factors
        :math:`s_i`: the share of the label kept) and ``"smoothed_targets"``
        (``(N, C)``, the labels after smoothing, before mixing).  All
        detached.

    Notes
    -----
    Sampled partners may coincide with the example itself (then nothing is
    mixed).  Two partners of weight zero have :math:`\rho = 1/2` (never
    ``0/0``): plain mixup's ratio with ``"beta"``, half and half with
    ``"deterministic"``.
    No host synchronisation and no data-dependent shapes: with
    ``generator=None`` the function compiles inside a
    ``torch.compile(..., fullgraph=True)`` step.  Out-of-range integer
    labels raise ``ValueError`` in eager mode on the CPU (checked only when
    torch's kernel rejects them, so valid batches pay nothing).

    Examples
    --------
    >>> import torch
    >>> from divweights_torch import weighted_mixup
    >>> x = torch.tensor([[0.0], [1.0], [2.0]])
    >>> w = torch.tensor([0.6, 0.4, 0.0])
    >>> g = torch.Generator().manual_seed(0)
    >>> mx, my, info = weighted_mixup(x, torch.tensor([0, 1, 2]), w, mode="sample_weight",
    ...                               num_classes=3, generator=g)
    >>> bool((info["partners"] != 2).all())  # a zero-weight example is never picked as a partner
    True
    >>> torch.allclose(mx[:, 0], info["ratios"] * x[:, 0] + (1 - info["ratios"]) * x[info["partners"], 0])
    True
    """
    if mode not in MIXUP_MODES:
        raise ValueError(f"mode must be one of {MIXUP_MODES}; got {mode!r}")
    if weight_ratio not in WEIGHT_RATIOS:
        raise ValueError(f"weight_ratio must be one of {WEIGHT_RATIOS}; got {weight_ratio!r}")
    if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point() or inputs.ndim < 1:
        raise TypeError("inputs must be a floating torch.Tensor of shape (N, ...)")
    n = inputs.shape[0]
    if n == 0:
        raise ValueError("empty batch")
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a finite number > 0; got {alpha!r}")
    if isinstance(power, bool) or not isinstance(power, numbers.Real) or not (math.isfinite(power) and power > 0):
        raise ValueError(f"power must be a finite number > 0; got {power!r}")
    if not isinstance(targets, torch.Tensor):
        raise TypeError(f"targets must be a torch.Tensor; got {type(targets).__name__}")
    if targets.is_floating_point():
        if targets.ndim != 2 or targets.shape[0] != n:
            raise ValueError(
                f"floating targets are probabilities of shape (N, C) with N = {n}; got {tuple(targets.shape)} "
                "(class indices must be an integer tensor)"
            )
    elif targets.dtype == torch.bool or targets.is_complex():
        raise TypeError(f"targets must be integer labels or floating probabilities; got {targets.dtype}")
    else:
        if tuple(targets.shape) != (n,):
            raise ValueError(f"integer targets must have shape (N,) = ({n},); got {tuple(targets.shape)}")
        if num_classes is None:
            if predictions is None:
                raise ValueError("num_classes is required with integer targets")
            num_classes = predictions.shape[-1]
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int; got {num_classes!r}")
    if weights is None:
        if mode in _NEEDS_WEIGHTS:
            raise ValueError(f"mode={mode!r} needs instance weights")
    elif not isinstance(weights, torch.Tensor) or tuple(weights.shape) != (n,):
        got = getattr(weights, "shape", weights)
        raise ValueError(f"weights must be a tensor of shape (N,) = ({n},); got {got}")
    if mode == "label_smoothing":
        if predictions is None:
            raise ValueError('mode="label_smoothing" needs predictions (logits or probabilities, shape (N, C))')
        k = targets.shape[1] if targets.is_floating_point() else num_classes
        if tuple(predictions.shape) != (n, k):
            raise ValueError(f"predictions must have shape (N, C) = {(n, k)}; got {tuple(predictions.shape)}")
    args = (inputs, targets, weights, mode, num_classes, power, alpha, predictions, generator, weight_ratio)
    args += (smoothing_floor,)
    if _is_compiling():
        return _mix(*args)
    try:
        return _mix(*args)
    except (IndexError, RuntimeError) as exc:
        if num_classes is not None:
            _raise_for_labels(num_classes, targets, None, exc)
        raise


def _mix(
    inputs, targets, weights, mode, num_classes, power, alpha, predictions, generator, weight_ratio, smoothing_floor
):
    n = inputs.shape[0]
    device = inputs.device
    # -- targets as probabilities --------------------------------------------
    if targets.is_floating_point():
        y = targets.detach()
    else:
        dtype = inputs.dtype if inputs.dtype in (torch.float32, torch.float64) else torch.float32
        y = torch.zeros((n, num_classes), dtype=dtype, device=device)
        y = y.scatter(1, targets.long()[:, None], 1.0)  # raises on out-of-range labels (on the CPU)
    if weights is not None:
        weights = weights.detach()

    info = {}
    # -- label smoothing toward the prediction (CIW-M) ----------------------------
    if mode == "label_smoothing":
        w = weights.to(y.dtype)
        info["smoothing"] = core.smoothing_factors(w, floor=smoothing_floor)
        y = core.smooth_targets(y, w, predictions.detach().to(y.dtype), floor=smoothing_floor)
        info["smoothed_targets"] = y

    # -- partners -----------------------------------------------------------------
    if mode in ("sample", "sample_weight"):
        probs = core.partner_probabilities(weights if weights.dtype in _FULL else weights.float(), power)
        try:
            partners = torch.multinomial(probs, n, replacement=True, generator=generator)
        except RuntimeError as err:  # eager on the CPU: torch checks them (NaN reads as 'entry < 0'); CUDA asserts
            if "invalid multinomial distribution" not in str(err):
                raise
            raise ValueError(
                "weights must be finite and nonnegative to sample partners: the partner probabilities are "
                "not a distribution (a NaN or infinite weight, e.g. the weights of a batch with a NaN loss)"
            ) from err
    else:
        partners = torch.randperm(n, generator=generator, device=device)
    gather = mode in _PERMUTED and _is_compiling()

    # -- ratios --------------------------------------------------------------------
    beta_dtype = inputs.dtype if inputs.dtype == torch.float64 else torch.float32
    if mode in ("weight", "sample_weight"):
        partner_weights = _rows(weights, partners, gather=gather)
        if weight_ratio == "deterministic":
            ratios = core.mixup_ratio(weights, partner_weights)
        else:
            ratios = _weighted_beta(weights, partner_weights, alpha, beta_dtype, generator)
    else:
        ratios = beta_symmetric(n, float(alpha), dtype=beta_dtype, device=device, generator=generator)

    # r x_i + (1 - r) x_j as one fused kernel: lerp(x_j, x_i, r) = x_j + r (x_i - x_j)
    r_x = ratios.to(inputs.dtype).reshape((n,) + (1,) * (inputs.ndim - 1))
    mixed_inputs = torch.lerp(_rows(inputs, partners, gather=gather), inputs, r_x)
    r_y = ratios.to(y.dtype)[:, None]
    mixed_targets = torch.lerp(_rows(y, partners, gather=gather), y, r_y)
    info["partners"] = partners
    info["ratios"] = ratios
    return mixed_inputs, mixed_targets, info
