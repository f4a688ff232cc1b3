r"""Instance- and class-reweighted cross-entropy as a ``torch.nn.Module``.

:class:`ReweightedLoss` is a thin layer over the core: it computes the
per-example cross-entropy, hands the *detached* losses to
:func:`divweights.instance_weights` (and the detached class losses to
:func:`divweights.class_weights`) directly on the torch tensors, and returns
the weighted sum with the weights held constant.  By Danskin's theorem that is
the gradient of the optimal value of the divergence-constrained problem.
"""

from __future__ import annotations

import contextlib
import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn

import divweights
from divweights import KL, Divergence
from divweights.defaults import DEFAULT_DELTA  # the shared default; its module holds the evidence

from .distributed import gather_batch, is_distributed
from .schedule import AnnealSchedule

__all__ = ["ReweightedLoss", "DEFAULT_DELTA"]

_REDUCTIONS = ("none", "sum", "mean")


def _autocast_off(device_type: str):
    """Context that disables autocast for ``device_type`` if it is on."""
    try:
        on = torch.is_autocast_enabled(device_type)
    except (TypeError, RuntimeError):  # pragma: no cover - device types without autocast
        on = False
    return torch.autocast(device_type, enabled=False) if on else contextlib.nullcontext()


def _real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__}")
    return float(value)


class ReweightedLoss(nn.Module):
    r"""Cross-entropy with divergence-constrained instance and class weights.

    For logits :math:`z` and targets :math:`y` (labels or probabilities,
    optionally label-smoothed), the per-class losses are
    :math:`L_{ij} = -\log\mathrm{softmax}(z_i)_j` (always computed in at least
    float32, also under :func:`torch.autocast`) and the loss is

    .. math::

        \sum_i w_i\,\tilde\ell_i, \qquad
        \tilde\ell_i = \langle c \odot v_i, L_i\rangle, \qquad
        w = \mathrm{instance\_weights}(\tilde\ell, \text{instance}, \ldots)

    where :math:`c` is the per-class ``weight`` (ones by default), :math:`v_i`
    the class weights (``class_weights(L, y, classes, gamma)``, or :math:`y_i`
    without class reweighting) and :math:`w` the instance weights, computed on
    the detached losses and held constant in the backward pass (as are
    :math:`v`).  With ``gamma = 0`` and no instance divergence this is the
    plain cross-entropy.

    Parameters
    ----------
    instance : Divergence or None, default ``KL()``
        Divergence of the instance weights from uniform; ``None`` gives
        uniform weights (plain cross-entropy, with class reweighting if
        ``classes`` is given).
    lam, delta, temperature : float, optional
        At most one: the strength, as in :func:`divweights.instance_weights`.
        If none is given and ``instance`` is KL, ``delta = DEFAULT_DELTA``
        (exact-radius KL: effective sample size about ``n * exp(-delta)``,
        independent of the scale of the losses); other divergences need an
        explicit strength.
    classes : Divergence, optional
        Divergence of the class weights from the target (``TotalVariation()``:
        hard bootstrapping; ``ReverseKL()``: the published ``'kl'`` option;
        ``SquaredL2()``; ``KL()`` with probability targets).
    gamma : float, default 0.0
        Class radius; needs ``classes``.  Not annealed; ``0`` during burn-in.
    weight : torch.Tensor, optional
        Per-class weights of shape ``(C,)``, with :class:`torch.nn.CrossEntropyLoss`'s
        semantics for the per-example loss, ``l_i = sum_j weight_j y_ij L_ij``.
    ignore_index : int, default -100
        Rows of integer targets equal to this get weight zero, contribute
        zero, and are left out of the instance weights (which are computed on
        the other rows).
    label_smoothing : float, default 0.0
        As in :class:`torch.nn.CrossEntropyLoss`: ``y <- (1 - eps) y + eps / C``
        before anything else (the class problem sees the smoothed targets).
    reduction : {'sum', 'mean', 'none'}, default 'sum'
        ``'sum'`` is :math:`\sum_i w_i \tilde\ell_i`, the paper's loss.  The
        instance weights sum to one, so this already is a weighted *average*
        (unlike :class:`torch.nn.CrossEntropyLoss`, whose ``'sum'`` is ``n``
        times its ``'mean'``).  ``'mean'`` divides by
        :math:`\sum_i w_i\,\mathrm{weight}_{y_i}` (integer targets) or
        :math:`\sum_i w_i` (probability targets), which is ``1`` without a
        per-class ``weight``: ``'mean'`` equals ``'sum'`` then, and with
        ``instance=None`` both ``'mean'`` and the per-class-weighted ``'mean'``
        coincide with :class:`torch.nn.CrossEntropyLoss`'s.  ``'none'`` returns
        :math:`w_i \tilde\ell_i` per example (its sum is the ``'sum'`` loss).
        Under ``distributed`` every reduction is multiplied by the world size.
    schedule : AnnealSchedule, optional
        Burn-in and annealing, driven by the :attr:`steps` counter:
        ``temperature * f``, ``lam * f``, ``delta / f`` (``f > 1`` is weaker
        reweighting); uniform weights and no class reweighting while
        ``f`` is ``None``.
    distributed : bool, default False
        With an initialised ``torch.distributed`` process group, gather the
        detached losses of every process, compute the weights once on the
        global batch, keep this process's slice, and multiply the local loss
        by the world size, so that the gradient averaging of
        :class:`~torch.nn.parallel.DistributedDataParallel` yields exactly the
        single-device gradient of the global batch.  Every process must call
        the loss with the same number of examples.  Without a process group
        it behaves as on one device.
    check_shard_sizes : bool, default True
        With ``distributed``: verify the equal shard sizes on every call (one
        scalar collective and one host synchronisation).  Pass ``False`` when
        equal sizes are guaranteed (``drop_last=True``).

    Attributes
    ----------
    steps : torch.Tensor
        ``int64`` buffer (saved in ``state_dict``), incremented by every call
        in training mode; the schedule reads it.  A host copy (:attr:`step`)
        avoids device synchronisation; set :attr:`step` or load a
        ``state_dict`` to change it, rather than writing into the buffer.
    last_weights : torch.Tensor
        Instance weights of the last call, shape ``(N,)``, detached (this
        process's slice under ``distributed``; zero for ignored rows).
    last_class_weights : torch.Tensor
        Class weights :math:`v` of the last call, shape ``(N, C)``, detached
        (the targets when there is no class reweighting).
    last_losses : torch.Tensor
        Per-example losses :math:`\tilde\ell_i` of the last call, detached.

    Notes
    -----
    * Non-finite inputs: a NaN logit makes the whole batch's loss NaN (the
      instance weights of a batch containing a NaN loss are NaN), as it would
      for plain cross-entropy, so that NaN detectors and
      :class:`torch.amp.GradScaler` see it.
    * A batch in which every row is ignored gives a loss of exactly ``0`` and
      zero gradients.
    * The class and instance weights are computed with autocast disabled.
    * The code is device-agnostic and has no host synchronisation of its own
      in the instance-weight path (the schedule runs on the host copy of the
      step counter).  Class reweighting currently validates its targets in
      the core, which reads a few values on the host.

    Examples
    --------
    >>> import torch
    >>> from divweights import TotalVariation
    >>> from divweights_torch import ReweightedLoss
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]], requires_grad=True)
    >>> labels = torch.tensor([0, 1, 1])  # the last label looks wrong
    >>> loss_fn = ReweightedLoss(temperature=1.0)
    >>> loss = loss_fn(logits, labels)
    >>> loss.backward()
    >>> loss_fn.last_weights  # softmin of the losses: the suspicious example is down-weighted
    tensor([0.4683, 0.4683, 0.0634])
    >>> bootstrap = ReweightedLoss(None, classes=TotalVariation(), gamma=0.2)
    >>> bootstrap(logits, labels).item() < torch.nn.functional.cross_entropy(logits, labels).item()
    True
    """

    def __init__(
        self,
        instance: Divergence | None = KL(),
        *,
        lam: float | None = None,
        delta: float | None = None,
        temperature: float | None = None,
        classes: Divergence | None = None,
        gamma: float = 0.0,
        weight: torch.Tensor | None = None,
        ignore_index: int = -100,
        label_smoothing: float = 0.0,
        reduction: str = "sum",
        schedule: AnnealSchedule | None = None,
        distributed: bool = False,
        check_shard_sizes: bool = True,
    ):
        super().__init__()
        given = {k: v for k, v in (("lam", lam), ("delta", delta), ("temperature", temperature)) if v is not None}
        if instance is None:
            if given:
                raise ValueError(f"{' and '.join(given)} given but instance=None (uniform weights); pass a divergence")
            self._form, self._strength = None, None
        else:
            if not isinstance(instance, Divergence):
                raise TypeError(
                    "instance must be a divweights divergence instance such as KL() or Alpha(0.1), or None; "
                    f"got {instance!r}"
                )
            if not given:
                if type(instance) is not KL:
                    raise ValueError(
                        f"give one of lam=, delta=, temperature= for {instance!r}: the default "
                        f"delta={DEFAULT_DELTA} is a KL radius and only applies to instance=KL()"
                    )
                given = {"delta": DEFAULT_DELTA}
            if len(given) > 1:
                raise ValueError(f"give at most one of lam, delta, temperature; got {' and '.join(given)}")
            ((form, value),) = given.items()
            value = _real(form, value)
            # validates the form for this divergence and the value, once, up front
            divweights.instance_weights(torch.tensor([0.0, 1.0]), instance, **{form: value})
            self._form, self._strength = form, value
        self.instance = instance

        gamma = _real("gamma", gamma)
        if not (math.isfinite(gamma) and gamma >= 0):
            raise ValueError(f"gamma must be finite and >= 0; got {gamma!r}")
        if classes is None:
            if gamma != 0:
                raise ValueError("gamma > 0 needs a class divergence, e.g. classes=TotalVariation()")
        else:
            if not isinstance(classes, Divergence):
                raise TypeError(f"classes must be a divweights divergence instance or None; got {classes!r}")
            try:  # validates support for the class problem
                divweights.class_weights(torch.zeros(1, 2), torch.tensor([[0.5, 0.5]]), classes, gamma=gamma)
            except NotImplementedError as exc:
                raise ValueError(str(exc)) from None
        self.classes = classes
        self.gamma = gamma

        if weight is not None:
            if not isinstance(weight, torch.Tensor) or weight.ndim != 1 or not weight.is_floating_point():
                raise ValueError("weight must be a 1-D floating tensor of per-class weights, shape (C,)")
            weight = weight.detach().clone()
        self.register_buffer("weight", weight)
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise TypeError(f"ignore_index must be an int; got {type(ignore_index).__name__}")
        self.ignore_index = ignore_index
        label_smoothing = _real("label_smoothing", label_smoothing)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must lie in [0, 1]; got {label_smoothing!r}")
        self.label_smoothing = label_smoothing
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}; got {reduction!r}")
        self.reduction = reduction
        if schedule is not None and not isinstance(schedule, AnnealSchedule):
            raise TypeError(f"schedule must be an AnnealSchedule or None; got {type(schedule).__name__}")
        self.schedule = schedule
        self.distributed = bool(distributed)
        self.check_shard_sizes = bool(check_shard_sizes)

        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))
        self._step = 0
        self.register_load_state_dict_post_hook(_sync_step)
        self.last_weights: torch.Tensor | None = None
        self.last_class_weights: torch.Tensor | None = None
        self.last_losses: torch.Tensor | None = None

    # -- step counter ---------------------------------------------------------
    @property
    def step(self) -> int:
        """Number of training-mode calls so far (host copy of :attr:`steps`)."""
        return self._step

    @step.setter
    def step(self, value: int) -> None:
        value = int(value)
        if value < 0:
            raise ValueError(f"step must be >= 0; got {value}")
        self._step = value
        self.steps.fill_(value)

    def factor(self) -> float | None:
        """Schedule factor of the next call (``1.0`` without a schedule)."""
        return 1.0 if self.schedule is None else self.schedule.factor(self._step)

    def extra_repr(self) -> str:
        parts = [repr(self.instance)]
        if self._form is not None:
            parts.append(f"{self._form}={self._strength!r}")
        if self.classes is not None:
            parts.append(f"classes={self.classes!r}, gamma={self.gamma!r}")
        parts.append(f"reduction={self.reduction!r}")
        if self.schedule is not None:
            parts.append(f"schedule={self.schedule!r}")
        if self.distributed:
            parts.append("distributed=True")
        return ", ".join(parts)

    # -- computation ----------------------------------------------------------
    def _targets(self, logits: torch.Tensor, targets: torch.Tensor, L: torch.Tensor):
        """Return ``(y, core_targets, valid, safe_labels)``."""
        n, k = L.shape
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
                raise ValueError(
                    f"probability targets must have the logits' shape {(n, k)}; got {tuple(targets.shape)}"
                )
            y = targets.detach().to(L.dtype)
            valid = safe = None
        else:
            if tuple(targets.shape) != (n,):
                raise ValueError(
                    f"integer targets must have shape (N,) = {(n,)} for logits of shape {(n, k)}; "
                    f"got {tuple(targets.shape)}"
                )
            valid = targets != self.ignore_index
            safe = torch.where(valid, targets, 0).long()
            y = torch.zeros_like(L).scatter_(1, safe[:, None], 1.0)  # raises on out-of-range labels
        eps = self.label_smoothing
        if eps > 0:
            y = y * (1.0 - eps) + eps / k
            core_targets = y
        else:
            core_targets = safe if safe is not None else y
        return y, core_targets, valid, safe

    def _strength_kwargs(self, factor: float) -> dict:
        s = self._strength
        if self._form == "delta":
            return {"delta": s / factor}
        return {self._form: s * factor}

    def _compute(self, logits: torch.Tensor, targets: torch.Tensor, factor: float | None):
        if not isinstance(logits, torch.Tensor):
            raise TypeError(f"logits must be a torch.Tensor; got {type(logits).__name__}")
        if logits.ndim != 2:
            raise ValueError(f"logits must have shape (N, C); got {tuple(logits.shape)}")
        if not logits.is_floating_point():
            raise TypeError(f"logits must be floating point; got {logits.dtype}")
        n, k = logits.shape
        if n == 0:
            raise ValueError("empty batch: logits has no rows")
        if self.weight is not None and self.weight.shape[0] != k:
            raise ValueError(f"weight has {self.weight.shape[0]} entries for {k} classes")
        device_type = logits.device.type
        dtype = torch.promote_types(logits.dtype, torch.float32)
        with _autocast_off(device_type):
            L = -F.log_softmax(logits.to(dtype), dim=-1)
            y, core_targets, valid, safe = self._targets(logits, targets, L)
            if self.classes is not None and self.gamma > 0 and factor is not None:
                v = divweights.class_weights(L.detach(), core_targets, self.classes, gamma=self.gamma)
            else:
                v = y
            cv = v if self.weight is None else v * self.weight.to(dtype)
            losses = (cv.detach() * L).sum(dim=-1)
            inf = torch.full((), math.inf, dtype=dtype, device=losses.device)  # a fill, not a host copy
            if valid is not None:
                losses = torch.where(valid, losses, torch.zeros((), dtype=dtype, device=losses.device))
                key = torch.where(valid, losses.detach(), inf)
            else:
                key = losses.detach()

            need_c = self.reduction == "mean" and self.weight is not None and safe is not None
            c = self.weight.to(dtype)[safe] if need_c else None
            world, rank = 1, 0
            if self.distributed and is_distributed():
                payload = torch.stack([key, c], dim=1) if need_c else key
                gathered, rank, world = gather_batch(payload, check_sizes=self.check_shard_sizes)
                key_all, c_all = (gathered[:, 0], gathered[:, 1]) if need_c else (gathered, None)
            else:
                key_all, c_all = key, c

            if self.instance is None or factor is None:
                ok = (key_all != inf).to(dtype)
                w_all = ok / ok.sum().clamp_min(1.0)
            else:
                w_all = divweights.instance_weights(key_all, self.instance, **self._strength_kwargs(factor))
            w = w_all[rank * n : (rank + 1) * n] if world > 1 else w_all
            if valid is not None:
                w = torch.where(valid, w, torch.zeros((), dtype=w.dtype, device=w.device))
            per = w * losses
            if world > 1:
                per = per * world
            denom = (w_all * c_all).sum() if need_c else None
        return per, w, v, losses, denom

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Reweighted loss of a batch; see the class docstring.

        Parameters
        ----------
        logits : torch.Tensor, shape (N, C)
        targets : torch.Tensor
            ``int64`` class indices of shape ``(N,)`` or probabilities of shape ``(N, C)``.
        """
        per, w, v, losses, denom = self._compute(logits, targets, self.factor())
        if self.training:
            self._step += 1
            self.steps.add_(1)
        self.last_weights = w.detach()
        self.last_class_weights = v.detach()
        self.last_losses = losses.detach()
        if self.reduction == "none":
            return per
        total = per.sum()
        if self.reduction == "mean" and denom is not None:
            total = total / torch.where(denom > 0, denom, torch.ones_like(denom))
        return total

    @torch.no_grad()
    def weights(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Instance weights this loss would use for ``(logits, targets)`` now.

        Does not advance the step counter or touch ``last_*``; useful to get
        the weights of a clean batch for :func:`~divweights_torch.weighted_mixup`.
        Under ``distributed`` it is a collective call (every process must
        make it) and returns this process's slice.

        Examples
        --------
        >>> import torch
        >>> from divweights_torch import ReweightedLoss
        >>> ReweightedLoss(temperature=1.0).weights(torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([0, 1]))
        tensor([0.7311, 0.2689])
        """
        _, w, _, _, _ = self._compute(logits, targets, self.factor())
        return w


def _sync_step(module: ReweightedLoss, incompatible_keys) -> None:
    """Refresh the host copy of the step counter after ``load_state_dict``."""
    module._step = int(module.steps)
