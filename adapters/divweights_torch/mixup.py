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
``"weight"``           random permutation                               :math:`w_i / (w_i + w_j)`
``"sample_weight"``    i.i.d., :math:`P(j) \propto w_j^{p}` (CICW-M)    :math:`w_i / (w_i + w_j)`
``"label_smoothing"``  random permutation (after smoothing; CIW-M)      :math:`\mathrm{Beta}(\alpha, \alpha)`
=====================  ===============================================  ================================

The formulas (sampling distribution, zero-safe ratio) come from
:mod:`divweights.mixup`; this module only draws the random numbers.
"""

from __future__ import annotations

import math
import numbers

import torch

from divweights.mixup import mixup_ratio, partner_probabilities

__all__ = ["weighted_mixup", "MIXUP_MODES"]

MIXUP_MODES = ("plain", "sample", "weight", "sample_weight", "label_smoothing")
_NEEDS_WEIGHTS = ("sample", "weight", "sample_weight", "label_smoothing")


def _beta(n: int, alpha: float, dtype, device, generator):
    """``n`` draws of ``Beta(alpha, alpha)`` (first coordinate of a 2-class Dirichlet)."""
    conc = torch.full((n, 2), alpha, dtype=dtype, device=device)
    return torch._sample_dirichlet(conc, generator=generator)[:, 0]


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
        Parameter of the ``Beta(alpha, alpha)`` ratios (``> 0``).
    predictions : torch.Tensor, shape (N, C), optional
        Logits or probabilities; required by ``"label_smoothing"``, which
        first replaces each label by
        :math:`s_i y_i + (1 - s_i)\,\mathrm{onehot}(\arg\max_j \mathrm{pred}_{ij})`
        with :math:`s = w / \max w` (labels kept when all weights are zero).
    generator : torch.Generator, optional
        Source of randomness (on the inputs' device); default: torch's global one.

    Returns
    -------
    mixed_inputs : torch.Tensor
        Same shape and dtype as ``inputs``.
    mixed_targets : torch.Tensor, shape (N, C)
        Floating probabilities (``targets``' dtype if floating, else the
        inputs' floating dtype).
    info : dict
        ``"partners"`` (``(N,)`` int64), ``"ratios"`` (``(N,)``, the :math:`r_i`),
        and for ``"label_smoothing"`` also ``"smoothed_targets"`` (before mixing).

    Notes
    -----
    Sampled partners may coincide with the example itself (then nothing is
    mixed).  Two partners of weight zero mix half and half, never ``0/0``.

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
    if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point() or inputs.ndim < 1:
        raise TypeError("inputs must be a floating torch.Tensor of shape (N, ...)")
    n = inputs.shape[0]
    if n == 0:
        raise ValueError("empty batch")
    device = inputs.device
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a finite number > 0; got {alpha!r}")
    if isinstance(power, bool) or not isinstance(power, numbers.Real) or not (math.isfinite(power) and power > 0):
        raise ValueError(f"power must be a finite number > 0; got {power!r}")

    # -- targets as probabilities --------------------------------------------
    if not isinstance(targets, torch.Tensor):
        raise TypeError(f"targets must be a torch.Tensor; got {type(targets).__name__}")
    if targets.is_floating_point():
        if targets.ndim != 2 or targets.shape[0] != n:
            raise ValueError(
                f"floating targets are probabilities of shape (N, C) with N = {n}; got {tuple(targets.shape)} "
                "(class indices must be an integer tensor)"
            )
        y = targets.detach()
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
        dtype = inputs.dtype if inputs.dtype in (torch.float32, torch.float64) else torch.float32
        y = torch.zeros((n, num_classes), dtype=dtype, device=device)
        y.scatter_(1, targets.long()[:, None], 1.0)  # raises on out-of-range labels
    k = y.shape[1]

    # -- weights -----------------------------------------------------------------
    if weights is None:
        if mode in _NEEDS_WEIGHTS:
            raise ValueError(f"mode={mode!r} needs instance weights")
    else:
        if not isinstance(weights, torch.Tensor) or tuple(weights.shape) != (n,):
            got = getattr(weights, "shape", weights)
            raise ValueError(f"weights must be a tensor of shape (N,) = ({n},); got {got}")
        weights = weights.detach()

    # -- label smoothing toward the prediction (CIW-M) ----------------------------
    info = {}
    if mode == "label_smoothing":
        if predictions is None:
            raise ValueError('mode="label_smoothing" needs predictions (logits or probabilities, shape (N, C))')
        if tuple(predictions.shape) != (n, k):
            raise ValueError(f"predictions must have shape (N, C) = {(n, k)}; got {tuple(predictions.shape)}")
        w = weights.to(y.dtype)
        top = w.max()
        s = torch.where(top > 0, w / torch.where(top > 0, top, torch.ones_like(top)), torch.ones_like(w))[:, None]
        pred = torch.zeros_like(y).scatter_(1, predictions.detach().argmax(dim=-1, keepdim=True), 1.0)
        y = s * y + (1 - s) * pred
        info["smoothed_targets"] = y

    # -- partners -----------------------------------------------------------------
    if mode in ("sample", "sample_weight"):
        probs = partner_probabilities(weights.to(torch.promote_types(weights.dtype, torch.float32)), power)
        partners = torch.multinomial(probs, n, replacement=True, generator=generator)
    else:
        partners = torch.randperm(n, generator=generator, device=device)

    # -- ratios --------------------------------------------------------------------
    if mode in ("weight", "sample_weight"):
        ratios = mixup_ratio(weights, weights[partners])
    else:
        beta_dtype = inputs.dtype if inputs.dtype == torch.float64 else torch.float32
        ratios = _beta(n, float(alpha), beta_dtype, device, generator)

    r_x = ratios.to(inputs.dtype).reshape((n,) + (1,) * (inputs.ndim - 1))
    mixed_inputs = r_x * inputs + (1 - r_x) * inputs[partners]
    r_y = ratios.to(y.dtype)[:, None]
    mixed_targets = r_y * y + (1 - r_y) * y[partners]
    info["partners"] = partners
    info["ratios"] = ratios
    return mixed_inputs, mixed_targets, info
