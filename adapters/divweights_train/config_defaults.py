"""The automatic defaults of a :class:`~divweights_train.config.TrainConfig`: :meth:`resolved`.

:class:`_Defaults` fills every ``None`` field from the protocol, the dataset
and the method (:data:`~divweights_train.config.METHOD_DEFAULTS`, read from
:mod:`divweights_train.config` when a config is resolved: that module builds
``TrainConfig`` from this one).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import TrainConfig


class _Defaults:
    """The methods of :class:`~divweights_train.config.TrainConfig` that fill its automatic fields."""

    def resolved(self) -> TrainConfig:
        """Return a copy with every automatic (None) field filled in.

        With ``protocol="paper"`` the published recipe fills the automatic
        fields first (:meth:`_paper_defaults`; ``docs/guide/protocol.rst``);
        then, for every protocol:

        * ``epochs`` 30 (50 evaluation periods of 1,000 steps under the
          paper protocol), ``weight_decay`` 5e-4 (0 under it),
          ``instance_divergence`` ``kl`` (``alpha:0.1`` under it),
          ``exact_noise`` True (independent flips under it, except for
          CIFAR-10 asymmetric and instance-dependent noise), ``mixup_rule``
          ``divweights`` (``published`` under it); ``crop_pad`` stays None
          (4 pixels for images of at least 32 pixels, 2 otherwise; 2 under
          the paper protocol);
        * the robust losses' options (``t1``, ``t2``, ``loss_alpha``,
          ``loss_beta``, ``q``) for the method that has them:
          :data:`METHOD_DEFAULTS`, with the papers' CIFAR-100 values for
          NCE+RCE and SCE;
        * with ``lr_milestone_steps`` the epoch milestones are empty;
        * and the rest as :meth:`_resolved_generic` says.
        """
        cfg = self._paper_defaults() if self.protocol == "paper" else self
        return cfg._resolved_extra()._resolved_generic()

    def _paper_defaults(self) -> TrainConfig:
        """Fill the automatic fields with the published recipe's values (see :mod:`divweights_train.protocol`)."""
        from .config import method_spec
        from .noise import parse_noise_spec
        from .protocol import (
            PAPER,
            PAPER_METHOD_SETTINGS,
            dynamic_mixup_warmup_steps,
            paper_lr_milestone_steps,
        )

        changes: dict[str, Any] = {}

        def fill(name: str, value: Any) -> None:
            if getattr(self, name) is None:
                changes[name] = value

        spec = method_spec(self.method)
        fill("model", PAPER["model"])
        fill("lr", PAPER["lr"])
        fill("weight_decay", PAPER["weight_decay"])
        fill("eval_every", PAPER["eval_every"])
        fill("epochs", PAPER["iterations"] // PAPER["eval_every"])
        fill("warmup_epochs", 0.0)
        if self.lr_milestones is None:
            fill("lr_milestone_steps", paper_lr_milestone_steps(self.batch_size))
        fill("augment", "crop-flip")
        fill("crop_pad", PAPER["crop_pad"])
        fill("mixup_rule", "published")
        fill("instance_divergence", PAPER["instance_divergence"])
        kind = parse_noise_spec(self.noise).kind
        fill("exact_noise", kind in ("asymmetric", "instance"))
        if spec.instance or spec.classes:
            if self.burnin_epochs is None:
                fill("burnin_steps", PAPER["burnin_steps"])
            if self.anneal_epochs is None:
                fill("anneal_steps", PAPER["anneal_steps"])
        if spec.loss == "dynamic-mixup" and self.burnin_epochs is None:
            fill("burnin_steps", dynamic_mixup_warmup_steps(self.batch_size))
        settings = dict(PAPER_METHOD_SETTINGS.get(self.method, {}))
        strength = {k: settings.pop(k) for k in ("delta", "temperature", "lam") if k in settings}
        if self.delta is None and self.temperature is None and self.lam is None:
            changes.update(strength)
        for name, value in settings.items():
            fill(name, value)
        return dataclasses.replace(self, **changes)

    def _resolved_extra(self) -> TrainConfig:
        """Fill the automatic fields that do not depend on the generic defaults (see :meth:`resolved`)."""
        from .config import _CIFAR100_LOSS_DEFAULTS, _DEFAULT_WEIGHT_DECAY, _LOSS_OPTIONS, METHOD_DEFAULTS

        changes: dict[str, Any] = {}
        if self.epochs is None:
            changes["epochs"] = self._epochs()
        if self.weight_decay is None:
            changes["weight_decay"] = _DEFAULT_WEIGHT_DECAY
        if self.instance_divergence is None:
            changes["instance_divergence"] = self._instance_divergence()
        if self.exact_noise is None:
            changes["exact_noise"] = True
        if self.mixup_rule is None:
            changes["mixup_rule"] = "divweights"
        if self.lr_milestone_steps is not None and self.lr_milestones is None:
            changes["lr_milestones"] = ()
        defaults = dict(METHOD_DEFAULTS[self.method])
        if self.dataset == "cifar100":
            defaults.update(_CIFAR100_LOSS_DEFAULTS.get(self.method, {}))
        for name in _LOSS_OPTIONS.get(self.method, ()):
            if getattr(self, name) is None:
                changes[name] = float(defaults[name])
        return dataclasses.replace(self, **changes)

    def _resolved_generic(self) -> TrainConfig:
        """The defaults of every protocol (after :meth:`resolved`'s first steps).

        * ``model``: ``preact-resnet18`` for CIFAR, ``mlp`` for two-moons,
          ``cnn`` otherwise.
        * ``lr``: 0.1 for PreAct ResNet-18 (the CIFAR protocol), 0.02 for the
          CNN (0.05 and above can diverge in the first epoch under 60% noise
          on small subsets), 0.05 for the MLP.
        * ``warmup_epochs``: 1 for the CNN (a linear warm-up keeps lr 0.05
          stable under 60% noise), 0 otherwise.
        * ``lr_milestones``: CIFAR protocol epochs 30/80/110 scaled to
          ``epochs`` (of 120) for PreAct ResNet-18; otherwise at 2/3 and 13/15
          of the epochs (20 and 26 of 30).
        * ``augment``: ``crop-flip`` for CIFAR, ``none`` otherwise.
        * strengths, class divergence and gamma, mixup alpha:
          :data:`METHOD_DEFAULTS` (mixup alpha 1 otherwise).
        * ``mixup_recompute``: the method's (True for CIW-M and CICW-M).
        * ``balance_classes``: on for class reweighting with mixup
          (CICW-M) under the divweights mixup rule, off otherwise
          (:func:`balance_classes_default`).
        * burn-in and annealing lengths in epochs (the step counts are
          derived from them by :func:`schedule_steps` once the dataset size
          is known).
        """
        from .config import (
            _DEFAULT_ANNEAL_EPOCHS,
            _DEFAULT_BURNIN_EPOCHS,
            METHOD_DEFAULTS,
            auto_delta,
            balance_classes_default,
            method_spec,
        )

        changes: dict[str, Any] = {}
        cifar = self.dataset in ("cifar10", "cifar100")
        model = self.model or ("preact-resnet18" if cifar else "mlp" if self.dataset == "two-moons" else "cnn")
        changes["model"] = model
        if self.lr is None:
            changes["lr"] = 0.1 if model.startswith("preact-resnet18") else 0.02 if model == "cnn" else 0.05
        if self.warmup_epochs is None:
            changes["warmup_epochs"] = 1.0 if model == "cnn" else 0.0
        if self.lr_milestones is None:
            if model.startswith("preact-resnet18"):
                ms = tuple(sorted({max(1, round(self.epochs * f)) for f in (30 / 120, 80 / 120, 110 / 120)}))
            else:
                ms = tuple(sorted({max(1, round(self.epochs * f)) for f in (2 / 3, 13 / 15)}))
            changes["lr_milestones"] = tuple(m for m in ms if m < self.epochs)
        else:
            changes["lr_milestones"] = tuple(int(m) for m in self.lr_milestones)
        if self.augment is None:
            changes["augment"] = "crop-flip" if cifar else "none"
        defaults = METHOD_DEFAULTS[self.method]
        if self.delta is None and self.temperature is None and self.lam is None:
            for name in ("delta", "temperature", "lam"):
                if name in defaults:
                    changes[name] = defaults[name]
        if (changes.get("delta", self.delta)) == "noise":
            changes["delta"] = auto_delta(self.noise, self.dataset)
        if self.class_divergence is None:
            changes["class_divergence"] = defaults.get("class_divergence", "reverse-kl")
        if self.class_gamma is None:
            gamma = defaults.get("class_gamma", 0.0)
            changes["class_gamma"] = gamma if isinstance(gamma, str) else float(gamma)
        if self.mixup_alpha is None:
            changes["mixup_alpha"] = float(defaults.get("mixup_alpha", 1.0))
        if self.mixup_recompute is None:
            changes["mixup_recompute"] = method_spec(self.method).recompute_on_mixed
        # adaptive radii start at zero and grow with the evidence: no burn-in or annealing by default
        delta = changes.get("delta", self.delta)
        gamma = changes.get("class_gamma", self.class_gamma)
        adaptive = delta == "auto" or (
            self.temperature is None and self.lam is None and delta is None and gamma == "auto"
        )
        if self.burnin_epochs is None:
            changes["burnin_epochs"] = 0.0 if adaptive else float(defaults.get("burnin_epochs", _DEFAULT_BURNIN_EPOCHS))
        if self.anneal_epochs is None:
            changes["anneal_epochs"] = 0.0 if adaptive else float(defaults.get("anneal_epochs", _DEFAULT_ANNEAL_EPOCHS))
        cfg = dataclasses.replace(self, **changes)
        if cfg.balance_classes is None:  # reads the resolved class radius and mixup rule
            cfg = dataclasses.replace(cfg, balance_classes=balance_classes_default(cfg))
        return cfg
