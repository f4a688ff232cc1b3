"""PyTorch adapter for divweights.

* :class:`ReweightedLoss` -- instance- and class-reweighted cross-entropy
  (CIW / CICW) as an ``nn.Module``, with burn-in/annealing and multi-process
  support;
* :class:`AnnealSchedule` -- the burn-in and annealing schedule;
* :func:`weighted_mixup` -- weighted mixup (CICW-M, CIW-M) and plain mixup;
* the published comparison's robust losses (:mod:`divweights_torch.baselines`):
  :class:`BiTemperedLoss`, :class:`NCERCELoss`, :class:`GCELoss`, :class:`SCELoss`.

The adapter is thin: the weights are computed by the core
(:func:`divweights.instance_weights`, :func:`divweights.class_weights`,
:mod:`divweights.mixup`) directly on torch tensors, on their device.

Examples
--------
>>> import torch
>>> from divweights import ReverseKL
>>> from divweights_torch import AnnealSchedule, ReweightedLoss, weighted_mixup
>>> loss_fn = ReweightedLoss(temperature=0.5, classes=ReverseKL(), gamma=0.01,
...                          schedule=AnnealSchedule(burnin_steps=10, anneal_steps=10))
>>> x, labels = torch.randn(8, 4), torch.randint(0, 3, (8,))
>>> model = torch.nn.Linear(4, 3)
>>> w = loss_fn.weights(model(x), labels)
>>> mixed_x, mixed_y, info = weighted_mixup(x, labels, w, mode="sample_weight", num_classes=3)
>>> loss = loss_fn(model(mixed_x), mixed_y)
>>> loss.backward()
>>> loss_fn.step
1
"""

from .baselines import BiTemperedLoss, GCELoss, NCERCELoss, SCELoss
from .distributed import gather_batch
from .loss import DEFAULT_DELTA, ReweightedLoss
from .mixup import MIXUP_MODES, weighted_mixup
from .schedule import AnnealSchedule

__all__ = [
    "DEFAULT_DELTA",
    "MIXUP_MODES",
    "AnnealSchedule",
    "BiTemperedLoss",
    "GCELoss",
    "NCERCELoss",
    "ReweightedLoss",
    "SCELoss",
    "gather_batch",
    "weighted_mixup",
]
