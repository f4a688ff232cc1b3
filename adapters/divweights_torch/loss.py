r"""Instance- and class-reweighted cross-entropy as a ``torch.nn.Module``.

:class:`ReweightedLoss` is a thin layer over the core: it computes the
per-example cross-entropy, hands the *detached* losses to the core's instance
solver (and the detached class losses to its class solver) directly on the
torch tensors, and returns the weighted sum with the weights held constant.
By Danskin's theorem that is the gradient of the optimal value of the
divergence-constrained problem.

The training step is built for ``torch.compile``: every argument is validated
once, in ``__init__``, with plain Python; the step counter is a buffer and the
annealed strength is computed from it inside the graph, so one compiled graph
serves a whole run (burn-in, annealing and after) with no host
synchronisation.  The argument checks live in ``_loss_args.py``, the fused
tensor pieces of the step (batch noise rate, targets, autocast and
``torch.compile`` helpers) in ``_loss_ops.py``; ``baselines.py`` and
``mixup.py`` import the shared helpers from here.
"""

from __future__ import annotations

import math
import numbers

import array_api_compat.torch as _xp
import torch
import torch.nn.functional as F
from torch import nn

from divweights import KL, Divergence, noise_radius
from divweights._array import Work
from divweights.adaptive import (
    DEFAULT_NOISE_MOMENTUM,
    DEFAULT_NOISE_SHARPNESS,
    _check_momentum,
    _check_sharpness,
    _is_kl,
)
from divweights.defaults import DEFAULT_DELTA  # the shared default; its module holds the evidence

from ._loss_args import (
    _REDUCTIONS,
    _auto_delta,
    _check_balance,
    _check_classes,
    _check_inputs,
    _parse_gamma,
    _parse_strength,
    _raise_for_labels,
    _real,
)
from ._loss_ops import (
    _autocast_off,
    _balance_class_shift,
    _batch_noise_rate,
    _is_compiling,
    _last_class_weights,
    _last_losses,
    _target_probabilities,
    _uniform_weights,
)
from .distributed import gather_batch, is_distributed
from .schedule import AnnealSchedule

__all__ = ["DEFAULT_DELTA", "ReweightedLoss"]


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
        ``delta="auto"`` (the default when none is given and ``instance`` is
        KL; also for ``Alpha(a)`` with ``a > 0``, ``ChiSquared()`` and
        ``TotalVariation()``) sets the radius at every step from the tracked
        noise rate, ``divweights.noise_radius(instance, rate)`` with
        ``rate = divweights.track_noise_rate(...)`` of this batch's class
        losses: no noise rate to know, uniform weights at the start.  The
        previous fixed default is ``delta=divweights.defaults.DEFAULT_DELTA``.
        Other divergences need an explicit strength.
    classes : Divergence, optional
        Divergence of the class weights from the target (``TotalVariation()``:
        hard bootstrapping; ``ReverseKL()``: the published ``'kl'`` option;
        ``SquaredL2()``; ``KL()`` with probability targets).
    gamma : float or "auto", default 0.0
        Class radius; needs ``classes``.  Not annealed; ``0`` during burn-in.
        ``"auto"`` (``TotalVariation()`` or ``ReverseKL()`` classes) uses
        ``divweights.noise_radius(classes, rate, problem="class")`` of the
        tracked noise rate.
    balance_classes : bool, default False
        Shrink the batch's class-weight shift towards the labels by how much of
        it is a net flow of mass into some classes
        (:func:`divweights.mixup.balance_class_shift`): shifts that exchange
        mass between classes (label noise) are kept, a shift of the whole batch
        into one class is undone.  Needs class reweighting.  The training
        program turns it on for CICW-M, where such a shift feeds itself through
        the mixed targets and collapses training to one class
        (``docs/derivations/mixup.rst``).
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
        times its ``'mean'``).  ``'mean'`` with integer targets divides by
        :math:`\sum_i w_i\,\mathrm{weight}_{y_i}` (``weight`` = ones if not
        given; ignored rows have :math:`w_i = 0`), which is ``1`` unless a
        per-class ``weight`` is given; with ``instance=None`` it coincides
        with :class:`torch.nn.CrossEntropyLoss`'s ``'mean'``, including its
        ``NaN`` (``0 / 0``) when that mass is zero (every row ignored, or
        every label's class weight zero).  With probability targets
        ``'mean'`` equals ``'sum'``.  ``'none'`` returns
        :math:`w_i \tilde\ell_i` per example (its sum is the ``'sum'`` loss).
        Under ``distributed`` every reduction is multiplied by the world size.
    schedule : AnnealSchedule, optional
        Burn-in and annealing, driven by the :attr:`steps` counter:
        ``temperature * f``, ``lam * f``, ``delta / f`` (``f > 1`` is weaker
        reweighting); uniform weights and no class reweighting during the
        burn-in.  The factor is computed on the device from :attr:`steps`
        (no host synchronisation, one compiled graph for the whole run).
    distributed : bool, default False
        With an initialised ``torch.distributed`` process group, gather the
        detached losses of every process, compute the weights once on the
        global batch, keep this process's slice, and multiply the local loss
        by the world size, so that the gradient averaging of
        :class:`~torch.nn.parallel.DistributedDataParallel` yields exactly the
        single-device gradient of the global batch.  Every process must call
        the loss with the same number of examples.  The adaptive radii
        estimate the noise rate of the global batch too (the detached
        log-probabilities and labels are gathered, ``n x (k + 1)`` values per
        process), so every process tracks the same rate and uses one radius.
        Without a process group it behaves as on one device.
    check_shard_sizes : bool, default True
        With ``distributed``: verify the equal shard sizes on every call (one
        scalar collective and one host synchronisation).  Pass ``False`` when
        equal sizes are guaranteed (``drop_last=True``).
    noise_momentum : float, default ``divweights.adaptive.DEFAULT_NOISE_MOMENTUM``
        Momentum in ``[0, 1)`` of the tracked noise rate of the adaptive radii.
    noise_sharpness : float, default ``divweights.adaptive.DEFAULT_NOISE_SHARPNESS``
        Exponent of the per-example noise score, as in :func:`divweights.noise_rate`.

    Attributes
    ----------
    strength : divweights.Strength or None
        The parsed instance strength (kind and value, validated once);
        ``None`` for ``instance=None``.
    steps : torch.Tensor
        ``int64`` buffer (saved in ``state_dict``), incremented on the device
        by every call in training mode; the schedule reads it.  :attr:`step`
        is its value as a Python int (reading it synchronises with the
        device once).
    noise_rate : torch.Tensor
        ``float32`` 0-d buffer (saved in ``state_dict``): the tracked noise
        rate of the adaptive radii, ``0`` at the start, updated on the device
        by every call in training mode; a batch that tells nothing about it (no
        valid row, or a NaN or infinite logit, whose loss is NaN) leaves it
        unchanged, so the steps after a skipped bad step keep a finite radius.
    last_weights : torch.Tensor
        Instance weights of the last call, shape ``(N,)``, detached (this
        process's slice under ``distributed``; zero for ignored rows).
    last_class_weights : torch.Tensor
        Class weights :math:`v` of the last call, shape ``(N, C)``, detached
        (the targets when there is no class reweighting; zero rows for ignored
        rows).  Built on first access when there is no class reweighting.
    last_losses : torch.Tensor
        Per-example losses :math:`\tilde\ell_i` of the last call, detached
        (zero for ignored rows).

    Notes
    -----
    * Non-finite inputs: a NaN logit makes the whole batch's loss NaN (the
      instance weights of a batch containing a NaN loss are NaN), as it would
      for plain cross-entropy, so that NaN detectors and
      :class:`torch.amp.GradScaler` see it.
    * A batch in which every row is ignored gives a loss of exactly ``0`` and
      zero gradients with ``reduction='sum'`` or ``'none'`` (``'mean'`` gives
      ``NaN``, as :class:`torch.nn.CrossEntropyLoss` does).
    * The class and instance weights are computed with autocast disabled.
    * No host synchronisation and no data-dependent Python control flow: the
      forward pass compiles with ``torch.compile(..., fullgraph=True)`` into
      one graph for the whole run and is CUDA-graph safe (except with
      ``distributed`` and ``check_shard_sizes=True``).  Hyperparameters are
      validated once, in ``__init__``.
    * Labels outside ``[0, C)`` (other than ``ignore_index``) raise
      ``ValueError: integer targets must lie in [0, C) for C classes; got
      values in [lo, hi]`` in eager mode on the CPU, at no cost to valid
      batches (the message is built when torch's kernel rejects the label).
      On an accelerator torch's device-side assertion fires instead, and
      under ``torch.compile`` the compiled kernel's bounds check does; the
      clear message is skipped there.
    * The ``last_*`` attributes refer to tensors of the last step; under
      ``torch.compile(mode="reduce-overhead")`` (CUDA graphs) the next step
      overwrites them, so clone what you keep.

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
        delta: float | str | None = None,
        temperature: float | None = None,
        classes: Divergence | None = None,
        gamma: float | str = 0.0,
        balance_classes: bool = False,
        weight: torch.Tensor | None = None,
        ignore_index: int = -100,
        label_smoothing: float = 0.0,
        reduction: str = "sum",
        schedule: AnnealSchedule | None = None,
        distributed: bool = False,
        check_shard_sizes: bool = True,
        noise_momentum: float = DEFAULT_NOISE_MOMENTUM,
        noise_sharpness: float = DEFAULT_NOISE_SHARPNESS,
    ):
        super().__init__()
        self.strength = _parse_strength(instance, lam, delta, temperature)
        self.instance = instance
        self.adaptive = _auto_delta(instance, lam, delta, temperature)  # instance=None raised above
        gamma, self.adaptive_classes = _parse_gamma(classes, gamma)
        self.noise_momentum = _check_momentum(noise_momentum)
        self.noise_sharpness = _check_sharpness(noise_sharpness)
        _check_classes(classes, gamma)
        self.classes = classes
        self.gamma = gamma
        self.balance_classes = _check_balance(balance_classes, classes, gamma)

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
        # the tracked noise rate of the adaptive radii (divweights.track_noise_rate); 0 at the start
        self.register_buffer("noise_rate", torch.zeros((), dtype=torch.float32))
        self.last_weights: torch.Tensor | None = None
        # what last_losses / last_class_weights are built from, on first access (no work in the step)
        self._last: tuple | None = None
        self._last_built: dict = {}

    # -- step counter ---------------------------------------------------------
    @property
    def step(self) -> int:
        """Number of training-mode calls so far: the value of :attr:`steps` (one host read)."""
        return int(self.steps)

    @step.setter
    def step(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"step must be an int; got {type(value).__name__}")
        value = int(value)
        if value < 0:
            raise ValueError(f"step must be >= 0; got {value}")
        with torch.no_grad():
            self.steps.fill_(value)

    def factor(self) -> float | None:
        """Schedule factor of the next call (``1.0`` without a schedule; reads :attr:`steps`)."""
        return 1.0 if self.schedule is None else self.schedule.factor(self.step)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        steps = state_dict.get(prefix + "steps")
        if steps is not None:
            if not isinstance(steps, torch.Tensor) or steps.numel() != 1 or steps.is_floating_point():
                raise ValueError(f"state_dict[{prefix + 'steps'!r}] must be a 0-d integer tensor; got {steps!r}")
            if int(steps) < 0:
                raise ValueError(f"state_dict[{prefix + 'steps'!r}] must be >= 0 (a step count); got {int(steps)}")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _from_last(self, key: str, build):
        """``build(*what the last call kept)``, built on first access; ``None`` before any call."""
        if self._last is None:
            return None
        if key not in self._last_built:
            self._last_built[key] = build(*self._last)
        return self._last_built[key]

    @property
    def last_losses(self) -> torch.Tensor | None:
        """Per-example losses of the last call, ``(N,)``, detached; see the class docstring."""
        return self._from_last("losses", _last_losses)

    @property
    def last_class_weights(self) -> torch.Tensor | None:
        """Class weights of the last call, ``(N, C)``, detached; see the class docstring."""
        return self._from_last("v", _last_class_weights)

    def extra_repr(self) -> str:
        parts = [repr(self.instance)]
        if self.adaptive:
            parts.append("delta='auto'")
        elif self.strength is not None:
            parts.append(f"{self.strength.kind}={self.strength.value!r}")
        if self.classes is not None:
            parts.append(f"classes={self.classes!r}, gamma={'auto' if self.adaptive_classes else self.gamma!r}")
            if self.balance_classes:
                parts.append("balance_classes=True")
        parts.append(f"reduction={self.reduction!r}")
        if self.schedule is not None:
            parts.append(f"schedule={self.schedule!r}")
        if self.distributed:
            parts.append("distributed=True")
        return ", ".join(parts)

    # -- computation ----------------------------------------------------------
    def _schedule_state(self, dtype):
        """``(active, factor)`` from :attr:`steps`, on the device: ``active`` a 0-d bool tensor,
        false during the burn-in (``None`` without a schedule); ``factor`` a 0-d tensor or the
        Python float ``1.0`` (a schedule without annealing)."""
        if self.schedule is None:
            return None, 1.0
        return self.schedule.factor_tensor(self.steps, dtype)

    def _track_noise(self, logp, targets, invalid, integer: bool, update: bool):
        """The tracked noise rate for this step (a 0-d tensor): :func:`divweights.track_noise_rate`
        of the buffer :attr:`noise_rate` and this batch, written back when ``update``."""
        if not update:
            return self.noise_rate.to(logp.dtype)
        m = self.noise_momentum
        logp = logp.detach()
        if self.distributed and is_distributed():  # the global batch's rate: one radius on every process
            logp, targets, invalid = self._gather_noise_inputs(logp, targets, integer)
        batch = _batch_noise_rate(logp, targets, invalid, integer, self.noise_sharpness, self.ignore_index)
        previous = self.noise_rate.to(batch.dtype)
        # a batch that tells nothing (no valid row, a NaN or infinite logit: NaN) keeps the rate, so that one
        # bad step (its loss is NaN anyway; AMP's gradient scaler skips it) does not poison the steps after it
        batch = torch.where(batch == batch, batch, previous)
        if batch.dtype == self.noise_rate.dtype:  # m * previous + (1 - m) * batch, in place: one op
            return self.noise_rate.lerp_(batch, 1.0 - m)
        rate = torch.lerp(previous, batch, 1.0 - m)
        self.noise_rate.copy_(rate)
        return rate

    def _gather_noise_inputs(self, logp, targets, integer: bool):
        """Log-probabilities, targets and ignored rows of the global batch (one all-gather of ``n x (k + 1)``
        values per process, integer labels carried as floats: exact below 2**24)."""
        k = logp.shape[1]
        labels = targets.to(logp.dtype)[:, None] if integer else targets.detach().to(logp.dtype)
        gathered, _, _ = gather_batch(torch.cat([logp, labels], dim=1), check_sizes=self.check_shard_sizes)
        if not integer:
            return gathered[:, :k], gathered[:, k:], None
        targets = gathered[:, k].to(targets.dtype)
        return gathered[:, :k], targets, targets == self.ignore_index

    def _instance_weights(self, key, active, factor, work, rate=None):
        """Instance weights of the detached losses ``key`` (``+inf`` on ignored rows).

        Without a schedule the strength is a Python constant.  With one, it is a 0-d tensor
        computed from :attr:`steps` by :meth:`divweights.Strength.scaled` -- annealed by ``factor``
        and switched off during the burn-in (uniform weights: ``delta = 0``, ``lam`` and
        ``temperature`` :data:`divweights.strength.OFF`) -- so one graph serves the whole run."""
        dtype = key.dtype
        finfo = torch.finfo(dtype)
        if self.adaptive:  # the radius of the tracked noise rate, a 0-d tensor (no host read)
            radius = noise_radius(self.instance, rate)
            if active is not None:  # annealed like any radius: delta / f, 0 during the burn-in
                radius = torch.where(active, radius / factor, torch.zeros_like(radius))
            return self.instance.instance(key, "delta", radius, work)
        if active is None:
            strength = self.strength  # Python float: a constant of the run
        else:
            f = factor if isinstance(factor, torch.Tensor) else torch.full((), factor, dtype=dtype, device=key.device)
            strength = self.strength.scaled(f, active=active)
        kind, value = strength.kind, strength.value
        if kind in ("lam", "temperature") and _is_kl(self.instance):
            # the KL penalty is a softmin: one fused kernel instead of the core's array-API
            # formula (same result, tested against divweights.instance_weights); the shift by the
            # minimum and the clipped scale give the tiny-strength limit (mass on the minimisers)
            if isinstance(value, torch.Tensor):
                scale = value.reciprocal().clamp(finfo.tiny, finfo.max)
            else:
                scale = min(max(1.0 / value, finfo.tiny), finfo.max)
            return torch.softmax((key.amin() - key) * scale, dim=0)
        if isinstance(value, torch.Tensor):
            value = value if kind == "delta" else value.clamp_max(finfo.max)  # lam * f may overflow
        elif kind == "delta" and self.instance._number_radius():
            # a radius that is a constant of the run: the core's KL solver then builds its bracket,
            # grid and zero-radius test as constants (10 operations fewer per call; one graph)
            value = min(float(value), finfo.max)
        else:
            value = torch.full((), min(value, finfo.max), dtype=dtype, device=key.device)
        return self.instance.instance(key, kind, value, work)

    def _compute(self, logits: torch.Tensor, targets: torch.Tensor, *, record: bool):
        _check_inputs(logits, targets, self.weight)
        n, k = logits.shape
        device = logits.device
        dtype = logits.dtype if logits.dtype in (torch.float32, torch.float64) else torch.float32
        work = Work(xp=_xp, device=device, dtype=dtype, out_dtype=dtype)
        integer = not targets.is_floating_point()
        eps = self.label_smoothing
        reweight_classes = self.classes is not None and self.gamma > 0
        with _autocast_off(device.type):
            z = logits if logits.dtype == dtype else logits.to(dtype)
            logp = F.log_softmax(z, dim=-1)
            active, factor = self._schedule_state(dtype)
            invalid = targets == self.ignore_index if integer else None
            rate = None
            if self.adaptive or self.adaptive_classes:
                rate = self._track_noise(logp, targets, invalid, integer, update=record and self.training)
            weight = None if self.weight is None else self.weight.to(dtype)
            v = None
            safe = targets.masked_fill(invalid, 0) if integer and (eps > 0 or reweight_classes) else None
            if integer and eps == 0 and not reweight_classes:
                # torch's own per-example cross-entropy (honours weight and ignore_index)
                losses = F.nll_loss(logp, targets, weight=weight, ignore_index=self.ignore_index, reduction="none")
            else:
                L = -logp
                y = _target_probabilities(targets, safe, integer, eps, n, k, dtype, device)
                if reweight_classes:
                    if self.adaptive_classes:
                        g = noise_radius(self.classes, rate, problem="class")
                    else:
                        g = torch.full((), self.gamma, dtype=dtype, device=device)
                    v = self.classes.class_problem(L.detach(), y, integer and eps == 0, g, work)
                    if self.balance_classes:  # ignored rows move nothing
                        v = _balance_class_shift(v, y, invalid)
                    if active is not None:  # no class reweighting during the burn-in
                        v = torch.where(active, v, y)
                else:
                    v = y
                # rows of ignored targets hold the class weights of label 0: finite, and their instance
                # weight is zero (last_losses / last_class_weights show them as zero)
                cv = v if weight is None else v * weight
                # a class of zero weight adds 0, also where its loss is infinite (logits masked with -inf:
                # 0 * inf is NaN); a NaN weight or loss stays NaN
                losses = (cv * L).masked_fill(cv == 0, 0.0).sum(dim=-1)
                if invalid is not None:  # ignored rows add 0, as in nll_loss, also where their logits are NaN
                    losses = losses.masked_fill(invalid, 0.0)

            key = losses.detach()
            if invalid is not None:
                key = key.masked_fill(invalid, math.inf)
            need_c = self.reduction == "mean" and integer
            c = None
            if need_c and weight is not None:
                c = weight[safe if safe is not None else targets.masked_fill(invalid, 0)]
            world, rank = 1, 0
            if self.distributed and is_distributed():
                payload = torch.stack([key, c], dim=1) if c is not None else key
                gathered, rank, world = gather_batch(payload, check_sizes=self.check_shard_sizes)
                key_all, c_all = (gathered[:, 0], gathered[:, 1]) if c is not None else (gathered, None)
                invalid_all = key_all == math.inf if invalid is not None else None
            else:
                key_all, c_all, invalid_all = key, c, invalid

            if self.instance is None:
                w_all = _uniform_weights(invalid_all, key_all.shape[0], dtype, device)
            else:
                w_all = self._instance_weights(key_all, active, factor, work, rate)
                if invalid_all is not None:  # an all-ignored batch: zero weights, not 0/0
                    w_all = w_all.masked_fill(invalid_all, 0.0)
            w = w_all[rank * n : (rank + 1) * n] if world > 1 else w_all
            if not record:  # weights(): no loss, nothing recorded
                return None, w

            if self.reduction == "none":
                out = w * losses
            else:
                out = torch.dot(w, losses)
                if need_c:
                    denom = w_all.sum() if c_all is None else torch.dot(w_all, c_all)
                    out = out / denom  # 0 / 0 = NaN when no mass is left, as in torch
            if world > 1:
                out = out * world
        self.last_weights = w
        detached_v = None if v is None else v.detach()
        self._last = (losses.detach(), detached_v, invalid, targets.detach() if v is None else None, k)
        self._last_built = {}
        return out, w

    def _run(self, logits, targets, *, record: bool):
        if _is_compiling():
            return self._compute(logits, targets, record=record)
        try:
            return self._compute(logits, targets, record=record)
        except (IndexError, RuntimeError) as exc:
            if isinstance(logits, torch.Tensor) and logits.ndim == 2:
                _raise_for_labels(logits.shape[1], targets, self.ignore_index, exc)
            raise

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Reweighted loss of a batch; see the class docstring.

        Parameters
        ----------
        logits : torch.Tensor, shape (N, C)
        targets : torch.Tensor
            ``int64`` class indices of shape ``(N,)`` or probabilities of shape ``(N, C)``.
        """
        out, _ = self._run(logits, targets, record=True)
        if self.training:
            self.steps.add_(1)
        return out

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
        _, w = self._run(logits, targets, record=False)
        return w
