r"""The published CIFAR recipe (``--protocol paper``) and the published mixup rules.

``divweights-train --protocol paper`` reproduces the training recipe of the
authors' published TensorFlow code (``ciw_label_noise`` in the
google-research repository) for CIFAR-10 and CIFAR-100; the page
``docs/guide/protocol.rst`` lists every choice, row by row, next to ours.
This module holds the recipe's numbers (:data:`PAPER`), the per-method
settings of the published README (:data:`PAPER_METHOD_SETTINGS`), and the
framework-neutral formulas of the published mixup rules that the two
backends apply when ``mixup_rule`` is ``"published"``:

* :func:`mixing_weights` -- the weights that choose partners *and* set the
  mixing ratio are :math:`w^m / \sum_j w_j^m` (``m`` = ``--mixup-power``);
* :func:`published_smoothing` -- CIW-M's label smoothing factors
  :math:`s_i = (w_i - w_{\min}) / (w_{\max} - w_{\min})` with the margins
  :math:`w_{\min} = \max(\min_j w_j - 0.01, 0)` and
  :math:`w_{\max} = \min(\max_j w_j + 0.01, 1)`;
* :func:`published_anneal` -- the published annealing line, one step ahead
  of :class:`divweights_torch.AnnealSchedule`'s.

The functions take and return arrays of any array-API library (NumPy,
torch, JAX) and contain no value-based Python branching (safe under
``jax.jit`` and ``torch.compile``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = [
    "MIXUP_RULES",
    "PAPER",
    "PAPER_METHOD_SETTINGS",
    "PROTOCOLS",
    "SMOOTHING_MARGIN",
    "dynamic_mixup_warmup_steps",
    "mixing_weights",
    "paper_lr_milestone_steps",
    "published_anneal",
    "published_smoothing",
]

#: ``--protocol`` values: ``default`` (divweights' own recipe, per dataset) and ``paper`` (the published one).
PROTOCOLS = ("default", "paper")

#: ``--mixup-rule`` values: ``divweights`` (the adapters' weighted mixup as is) and ``published``.
MIXUP_RULES = ("divweights", "published")

#: Margin of the published CIW-M smoothing (:func:`published_smoothing`).
SMOOTHING_MARGIN = 0.01

#: The published recipe's numbers (``train.py``, ``cifar.py`` and ``preact_resnet_models.py`` of the
#: published code). ``epoch_size`` is the 50,000 of ``EPOCH_SIZE``: its learning-rate boundaries are
#: ``epochs x 50,000 // batch`` iterations although it trains on the 45,000 examples of the 90% split.
PAPER: Mapping[str, Any] = MappingProxyType(
    {
        "datasets": ("cifar10", "cifar100"),
        "iterations": 50_000,
        "eval_every": 1_000,
        "batch_size": 128,
        "lr": 0.1,
        "lr_decay": 0.1,
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 0.0,
        "epoch_size": 50_000,
        "lr_drop_epochs": (30, 80, 110),
        "val_fraction": 0.1,
        "burnin_steps": 4_000,
        "anneal_steps": 3_000,
        "anneal_start_factor": 10.0,
        "crop_pad": 2,
        "model": "preact-resnet18-paper",
        "mixup_alpha": 2.0,
        #: the published default divergence and strength ('--div_type alpha --alpha 0.1 --lambda_hyp 0.1')
        "instance_divergence": "alpha:0.1",
    }
)

#: Per-method settings of ``--protocol paper``. CIW, CICW-M and CIW-M are the published README's
#: commands (CIFAR-10 at 40% noise); the others are marked in ``docs/guide/protocol.rst``: plain mixup
#: and CE are the published code's ``--mixup_type simple`` and ``--loss ce`` at their flag defaults;
#: CICW, which the README does not give, uses CIW's temperature and CICW-M's class setting.
PAPER_METHOD_SETTINGS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "ce": {},
        "mixup": {"mixup_alpha": 2.0},
        "ciw": {"temperature": 0.1},
        "cicw": {
            "temperature": 0.1,
            "class_divergence": "reverse-kl",
            "class_gamma": 0.01,
        },
        "ciw-m": {"temperature": 10.0, "mixup_alpha": 0.2, "mixup_recompute": False},
        "cicw-m": {
            "temperature": 2.5,
            "class_divergence": "reverse-kl",
            "class_gamma": 0.01,
            "mixup_alpha": 2.0,
            "mixup_recompute": True,
        },
    }
)


def paper_lr_milestone_steps(batch_size: int) -> tuple[int, ...]:
    """The published learning-rate boundaries in iterations: ``e x 50,000 // batch_size`` for e = 30, 80, 110.

    Examples
    --------
    >>> paper_lr_milestone_steps(128)
    (11718, 31250, 42968)
    """
    bs = int(batch_size)
    return tuple((e * PAPER["epoch_size"]) // bs for e in PAPER["lr_drop_epochs"])


def dynamic_mixup_warmup_steps(batch_size: int) -> int:
    """Plain-mixup warm-up of Dynamic Mixup under ``--protocol paper``: 35 epochs of 50,000 examples.

    Arazo et al. (2019) warm up for five epochs past their first learning-rate
    drop (epochs 1-105 with the drop at 100); the published recipe's first
    drop is at epoch 30, so the warm-up ends after epoch 35.

    Examples
    --------
    >>> dynamic_mixup_warmup_steps(128)
    13671
    """
    return (35 * PAPER["epoch_size"]) // int(batch_size)


def published_anneal(anneal_steps: int, start_factor: float) -> tuple[int, float]:
    r"""The published annealing line as ``(anneal_steps, start_factor)`` of :class:`~divweights_torch.AnnealSchedule`.

    The published code interpolates the strength factor linearly from
    ``start_factor`` at its 1-based iteration ``burnin`` to 1 at
    ``burnin + anneal_steps``, but reweights only from iteration
    ``burnin + 1`` on: its first reweighted step (0-based step ``burnin``)
    already has the factor one step into the line,
    :math:`f - (f - 1)/A`, and the factor reaches 1 at 0-based step
    ``burnin + A - 1``. An :class:`~divweights_torch.AnnealSchedule` whose
    line starts at its first reweighted step reproduces that exactly with
    ``A - 1`` annealing steps starting from :math:`f - (f - 1)/A`.

    Parameters
    ----------
    anneal_steps : int
        The published ``A`` (3000).
    start_factor : float
        The published ``f`` (10).

    Returns
    -------
    (int, float)

    Examples
    --------
    >>> published_anneal(3000, 10.0)
    (2999, 9.997)
    >>> published_anneal(1, 10.0), published_anneal(0, 10.0)
    ((0, 1.0), (0, 10.0))
    """
    a, f = int(anneal_steps), float(start_factor)
    if a <= 0:
        return 0, f
    return a - 1, f - (f - 1.0) / a


def _namespace(x):
    import array_api_compat

    return array_api_compat.array_namespace(x)


def mixing_weights(weights, power: float = 1.0):
    r"""The published mixing weights :math:`w^m / \sum_j w_j^m` over the last axis.

    The published code uses them both to sample partners and for the mixing
    ratio :math:`r_i = \tilde w_i / (\tilde w_i + \tilde w_{\pi(i)})`; passing
    them to ``weighted_mixup`` with ``power=1`` reproduces both. All-zero
    weights give the uniform distribution.

    Parameters
    ----------
    weights : array, shape (..., n)
        Nonnegative instance weights.
    power : float
        The exponent ``m`` (``--mixup-power``, > 0).

    Examples
    --------
    >>> import numpy as np
    >>> mixing_weights(np.array([0.2, 0.6, 0.2]), 2.0).round(4).tolist()
    [0.0909, 0.8182, 0.0909]
    """
    xp = _namespace(weights)
    if not (math.isfinite(power) and power > 0):
        raise ValueError(f"power must be a finite number > 0; got {power!r}")
    wp = weights if power == 1 else weights**power
    total = xp.sum(wp, axis=-1, keepdims=True)
    n = weights.shape[-1]
    safe = xp.where(total > 0, total, xp.ones_like(total))
    return xp.where(total > 0, wp / safe, xp.full_like(wp, 1.0 / n))


def published_smoothing(weights, margin: float = SMOOTHING_MARGIN):
    r"""CIW-M smoothing factors of the published code: :math:`(w - w_{\min}) / (w_{\max} - w_{\min})`.

    With :math:`w_{\min} = \max(\min_j w_j - \mu, 0)` and
    :math:`w_{\max} = \min(\max_j w_j + \mu, 1)` (margin :math:`\mu = 0.01`)
    over the last axis. For weights on the simplex the denominator is at
    least :math:`\mu` (never 0/0), the factors lie in :math:`(0, 1)`, and
    the label of example ``i`` is kept with share :math:`s_i` (the rest goes
    to the predicted class). divweights' own rule is :math:`w / \max_j w_j`
    (:func:`divweights.mixup.smoothing_factors`).

    Parameters
    ----------
    weights : array, shape (..., n)
        The mixing weights (:func:`mixing_weights`).
    margin : float, default 0.01

    Examples
    --------
    >>> import numpy as np
    >>> published_smoothing(np.array([0.1, 0.3, 0.6])).round(4).tolist()
    [0.0192, 0.4038, 0.9808]
    """
    xp = _namespace(weights)
    lo = xp.min(weights, axis=-1, keepdims=True) - margin
    lo = xp.where(lo > 0, lo, xp.zeros_like(lo))
    hi = xp.max(weights, axis=-1, keepdims=True) + margin
    hi = xp.where(hi < 1, hi, xp.ones_like(hi))
    span = hi - lo
    safe = xp.where(span > 0, span, xp.ones_like(span))
    return xp.where(span > 0, (weights - lo) / safe, xp.ones_like(weights))
