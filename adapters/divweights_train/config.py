"""The training configuration: one frozen dataclass holding every CLI option.

:class:`TrainConfig` is framework-neutral: the PyTorch trainer
(:mod:`divweights_train.trainer_torch`) and a JAX trainer read the same object,
and :meth:`TrainConfig.resolved` fills every ``None`` ("automatic") field from
the dataset and method, so that two trainers agree on what a run means.

The per-method defaults (:data:`METHOD_DEFAULTS`) were chosen from measured
runs on Fashion-MNIST with 60% symmetric noise; the log of those runs is in
``benchmarks/demo_tuning.md``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "AUGMENTATIONS",
    "DATASETS",
    "FRAMEWORKS",
    "METHODS",
    "METHOD_DEFAULTS",
    "MIXUP_MODES",
    "MODELS",
    "MethodSpec",
    "TrainConfig",
    "auto_delta",
    "expected_flip_rate",
    "method_spec",
    "parse_divergence",
    "schedule_steps",
]

DATASETS = ("fashion-mnist", "cifar10", "cifar100", "two-moons", "digits")
METHODS = ("ce", "bootstrap", "mixup", "ciw", "cicw", "ciw-m", "cicw-m", "oracle")
MODELS = ("cnn", "mlp", "preact-resnet18")
FRAMEWORKS = ("torch", "jax")
AUGMENTATIONS = ("none", "flip", "crop", "crop-flip")
MIXUP_MODES = ("plain", "sample", "weight", "sample_weight", "label_smoothing")

#: Divergence names accepted by :func:`parse_divergence` (``alpha:A`` also).
DIVERGENCE_NAMES = ("kl", "reverse-kl", "chi2", "tv", "l2", "none")

_DIVERGENCE_ALIASES = {
    "kl": "kl",
    "reverse-kl": "reverse-kl",
    "reversekl": "reverse-kl",
    "rkl": "reverse-kl",
    "chi2": "chi2",
    "chi-squared": "chi2",
    "chisquared": "chi2",
    "tv": "tv",
    "total-variation": "tv",
    "l2": "l2",
    "squared-l2": "l2",
    "none": "none",
}


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """What a ``--method`` switches on.

    Attributes
    ----------
    instance : bool
        Instance reweighting (CIW) is on.
    classes : bool
        Class reweighting (CICW, or bootstrapping) is on.
    mixup : str or None
        Mode of :func:`divweights_torch.weighted_mixup`, or None for no mixup.
    recompute_on_mixed : bool
        Weights for the loss are recomputed on the mixed batch (a second
        forward pass); the first pass (no gradient) gives the mixing weights.
    oracle : bool
        A reference, not a method: cross-entropy averaged over the examples
        of each batch whose labels were *not* flipped (a perfect filter; it
        reads the noise mask, so it only exists for synthetic noise).
    """

    instance: bool
    classes: bool
    mixup: str | None
    recompute_on_mixed: bool
    oracle: bool = False


_METHOD_SPECS = {
    "ce": MethodSpec(False, False, None, False),
    "bootstrap": MethodSpec(False, True, None, False),
    "mixup": MethodSpec(False, False, "plain", False),
    "ciw": MethodSpec(True, False, None, False),
    "cicw": MethodSpec(True, True, None, False),
    "ciw-m": MethodSpec(True, False, "label_smoothing", True),
    "cicw-m": MethodSpec(True, True, "sample_weight", True),
    "oracle": MethodSpec(False, False, None, False, oracle=True),
}


def method_spec(method: str) -> MethodSpec:
    """Return the :class:`MethodSpec` of a method name.

    Examples
    --------
    >>> method_spec("cicw-m")
    MethodSpec(instance=True, classes=True, mixup='sample_weight', recompute_on_mixed=True, oracle=False)
    """
    try:
        return _METHOD_SPECS[method]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}") from None


#: Defaults of the reweighting hyperparameters per method, used where the
#: corresponding option is left unset (None). Strengths are the radius
#: ``delta`` of ``KL(w || u) <= delta``; ``"auto"`` is :func:`auto_delta` of
#: the run's noise spec. Measured on Fashion-MNIST with 20% and 60% symmetric
#: noise (benchmarks/demo_tuning.md).
METHOD_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "ce": {},
    "bootstrap": {"class_divergence": "tv", "class_gamma": 0.2},
    "mixup": {},
    "ciw": {"delta": "auto"},
    "cicw": {"delta": "auto", "class_divergence": "reverse-kl", "class_gamma": 0.3},
    "ciw-m": {"delta": "auto", "mixup_alpha": 0.2},
    "cicw-m": {"delta": 0.1, "class_divergence": "reverse-kl", "class_gamma": 0.3},
    "oracle": {},
}

# Default epochs of burn-in (uniform weights) and annealing when steps are
# not given, for datasets without a specific entry.
_DEFAULT_BURNIN_EPOCHS = 2.0
_DEFAULT_ANNEAL_EPOCHS = 2.0


_NUM_CLASSES = {"fashion-mnist": 10, "cifar10": 10, "cifar100": 100, "two-moons": 2, "digits": 10}

#: Bounds of :func:`auto_delta`.
AUTO_DELTA_RANGE = (0.1, 1.6)


def expected_flip_rate(noise: str, dataset: str) -> float:
    """Expected fraction of training labels that ``noise`` changes.

    Examples
    --------
    >>> expected_flip_rate("symmetric:0.6", "fashion-mnist")
    0.6
    >>> expected_flip_rate("asymmetric:0.4", "fashion-mnist")  # 4 of 10 classes are mapped
    0.16
    """
    from .noise import ASYMMETRIC_MAPPINGS, parse_noise_spec

    spec = parse_noise_spec(noise)
    k = _NUM_CLASSES.get(dataset, 10)
    if spec.kind == "none":
        return 0.0
    if spec.kind == "symmetric-uniform":
        return spec.rate * (k - 1) / k
    if spec.kind == "asymmetric":
        mapping = ASYMMETRIC_MAPPINGS.get(dataset, {})
        return round(spec.rate * len(mapping) / k, 12)
    return float(spec.rate)


def auto_delta(noise: str, dataset: str) -> float:
    r"""Default KL radius for a noise spec: :math:`-\log(1 - r)`, clipped to :data:`AUTO_DELTA_RANGE`.

    ``r`` is :func:`expected_flip_rate`. Uniform weights on the clean
    fraction ``1 - r`` of a batch are exactly at KL distance
    :math:`-\log(1 - r)` from uniform, so this radius lets the weights drop
    about as much mass as there are flipped labels. Measured on Fashion-MNIST:
    at 60% symmetric noise radius 1.0 beat 0.5 and 1.5; at 20% radius 0.3 beat
    1.0 (which fell below plain cross-entropy). For real data, pass ``delta``
    from an estimate of the noise rate.

    Examples
    --------
    >>> round(auto_delta("symmetric:0.6", "fashion-mnist"), 3)
    0.916
    >>> auto_delta("none", "two-moons")
    0.1
    """
    import math

    r = expected_flip_rate(noise, dataset)
    lo, hi = AUTO_DELTA_RANGE
    return float(min(max(-math.log1p(-min(r, 0.999)), lo), hi))


def parse_divergence(name: str | None):
    """Turn a divergence name into a :mod:`divweights` divergence (or None).

    Parameters
    ----------
    name : str or None
        ``kl``, ``reverse-kl``, ``chi2``, ``tv``, ``l2``, ``alpha:A`` (for
        example ``alpha:0.1``) or ``none``/None.

    Returns
    -------
    divweights.Divergence or None

    Examples
    --------
    >>> parse_divergence("alpha:0.5")
    Alpha(0.5)
    >>> parse_divergence("none") is None
    True
    """
    import divweights

    if name is None:
        return None
    key = str(name).strip().lower().replace("_", "-")
    if key.startswith("alpha:"):
        try:
            a = float(key.split(":", 1)[1])
        except ValueError:
            raise ValueError(f"bad alpha divergence {name!r}; write e.g. 'alpha:0.1'") from None
        return divweights.Alpha(a)
    canon = _DIVERGENCE_ALIASES.get(key)
    if canon is None:
        raise ValueError(
            f"unknown divergence {name!r}; choose one of {', '.join(DIVERGENCE_NAMES)} or alpha:A"
        )
    return {
        "kl": divweights.KL,
        "reverse-kl": divweights.ReverseKL,
        "chi2": divweights.ChiSquared,
        "tv": divweights.TotalVariation,
        "l2": divweights.SquaredL2,
        "none": lambda: None,
    }[canon]()


def _check_divergence_name(what: str, name: str | None) -> None:
    if name is None:
        return
    try:
        parse_divergence(name)
    except ValueError as err:
        raise ValueError(f"{what}: {err}") from None


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every option of a training run (one field per ``divweights-train`` flag).

    Fields left as ``None`` are chosen automatically by :meth:`resolved`
    from the dataset and the method. See ``divweights-train --help`` for the
    meaning of each field; the field names are the flag names with ``-``
    replaced by ``_``.

    Examples
    --------
    >>> cfg = TrainConfig(dataset="two-moons", method="ciw", noise="symmetric:0.2", epochs=2).resolved()
    >>> cfg.model, round(cfg.delta, 3), cfg.augment
    ('mlp', 0.223, 'none')
    >>> TrainConfig.from_dict(cfg.to_dict()) == cfg
    True
    """

    # data
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    subset: int | None = None
    val_fraction: float = 0.1
    noise: str = "none"
    augment: str | None = None
    # method
    method: str = "ciw"
    instance_divergence: str = "kl"
    delta: float | None = None
    temperature: float | None = None
    lam: float | None = None
    class_divergence: str | None = None
    class_gamma: float | None = None
    mixup_mode: str | None = None
    mixup_alpha: float | None = None
    mixup_recompute: bool | None = None
    mixup_power: float = 1.0
    burnin_steps: int | None = None
    anneal_steps: int | None = None
    burnin_epochs: float | None = None
    anneal_epochs: float | None = None
    anneal_start_factor: float = 10.0
    # model and optimiser
    model: str | None = None
    width: int | None = None
    epochs: int = 30
    batch_size: int = 128
    eval_batch_size: int = 256
    lr: float | None = None
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    lr_milestones: tuple[int, ...] | None = None
    lr_decay: float = 0.1
    warmup_epochs: float | None = None
    # run control
    seed: int = 0
    out: str | None = None
    resume: bool = False
    framework: str = "torch"
    device: str = "cpu"
    max_steps: int | None = None
    stop_after_epochs: int | None = None
    threads: int | None = None
    quiet: bool = False
    plots: bool = True
    save_weights: bool = True
    clean_model_epochs: int = 2
    cache_dir: str | None = None

    # Fields that may differ between an interrupted run and its resumption.
    RUN_CONTROL_FIELDS = ("out", "resume", "quiet", "stop_after_epochs", "threads", "device", "plots")

    def __post_init__(self):
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise ValueError/TypeError for inconsistent or out-of-range options."""
        if self.dataset not in DATASETS:
            from .datasets import is_user_dataset

            if not is_user_dataset(self.dataset):
                raise ValueError(
                    f"unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}, "
                    "or give a .npz file (arrays x, y) or a folder of class-named image folders"
                )
        method_spec(self.method)
        if self.model is not None and self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose one of {', '.join(MODELS)}")
        if self.framework not in FRAMEWORKS:
            raise ValueError(f"unknown framework {self.framework!r}; choose one of {', '.join(FRAMEWORKS)}")
        if self.augment is not None and self.augment not in AUGMENTATIONS:
            raise ValueError(f"unknown augmentation {self.augment!r}; choose one of {', '.join(AUGMENTATIONS)}")
        if self.mixup_mode is not None:
            if self.mixup_mode not in MIXUP_MODES:
                raise ValueError(f"unknown mixup mode {self.mixup_mode!r}; choose one of {', '.join(MIXUP_MODES)}")
            if method_spec(self.method).mixup is None:
                raise ValueError(f"mixup_mode needs a mixup method (mixup, ciw-m, cicw-m), not {self.method!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in [0, 1), got {self.val_fraction}")
        if self.width is not None and int(self.width) < 1:
            raise ValueError(f"width must be at least 1, got {self.width}")
        if self.width is not None and self.model == "preact-resnet18":
            raise ValueError("width applies to the cnn and mlp models only")
        if self.subset is not None and self.subset < 2:
            raise ValueError(f"subset must be at least 2, got {self.subset}")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("max_steps", "stop_after_epochs", "threads"):
            v = getattr(self, name)
            if v is not None and int(v) < (0 if name == "stop_after_epochs" else 1):
                raise ValueError(f"{name} must be positive, got {v}")
        strengths = [n for n in ("delta", "temperature", "lam") if getattr(self, n) is not None]
        if len(strengths) > 1:
            raise ValueError(f"give at most one of delta, temperature, lam; got {' and '.join(strengths)}")
        if self.delta is not None and not self.delta >= 0:
            raise ValueError(f"delta must be >= 0, got {self.delta}")
        for name in ("temperature", "lam"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ValueError(f"{name} must be > 0, got {v}")
        if self.class_gamma is not None and not self.class_gamma >= 0:
            raise ValueError(f"class_gamma must be >= 0, got {self.class_gamma}")
        for name in ("mixup_alpha", "mixup_power", "anneal_start_factor"):
            if getattr(self, name) is not None and not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("burnin_steps", "anneal_steps"):
            v = getattr(self, name)
            if v is not None and int(v) < 0:
                raise ValueError(f"{name} must be >= 0, got {v}")
        for name in ("burnin_epochs", "anneal_epochs"):
            v = getattr(self, name)
            if v is not None and not v >= 0:
                raise ValueError(f"{name} must be >= 0, got {v}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.warmup_epochs is not None and not self.warmup_epochs >= 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {self.warmup_epochs}")
        if not 0 < self.lr_decay <= 1:
            raise ValueError(f"lr_decay must lie in (0, 1], got {self.lr_decay}")
        if self.lr_milestones is not None:
            ms = tuple(int(m) for m in self.lr_milestones)
            if any(m < 0 for m in ms) or list(ms) != sorted(ms):
                raise ValueError(f"lr_milestones must be increasing non-negative epochs, got {ms}")
        _check_divergence_name("instance_divergence", self.instance_divergence)
        _check_divergence_name("class_divergence", self.class_divergence)
        if self.device not in ("cpu",) and not str(self.device).startswith("cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {self.device!r}")
        from .noise import parse_noise_spec

        parse_noise_spec(self.noise)

    # -------------------------------------------------------------- defaults
    def resolved(self) -> "TrainConfig":
        """Return a copy with every automatic (None) field filled in.

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
        * burn-in and annealing lengths in epochs (the step counts are
          derived from them by :func:`schedule_steps` once the dataset size
          is known).
        """
        changes: dict[str, Any] = {}
        cifar = self.dataset in ("cifar10", "cifar100")
        model = self.model or ("preact-resnet18" if cifar else "mlp" if self.dataset == "two-moons" else "cnn")
        changes["model"] = model
        if self.lr is None:
            changes["lr"] = {"preact-resnet18": 0.1, "cnn": 0.02}.get(model, 0.05)
        if self.warmup_epochs is None:
            changes["warmup_epochs"] = 1.0 if model == "cnn" else 0.0
        if self.lr_milestones is None:
            if model == "preact-resnet18":
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
                    value = defaults[name]
                    if value == "auto":
                        value = auto_delta(self.noise, self.dataset)
                    changes[name] = value
        if self.class_divergence is None:
            changes["class_divergence"] = defaults.get("class_divergence", "reverse-kl")
        if self.class_gamma is None:
            changes["class_gamma"] = float(defaults.get("class_gamma", 0.0))
        if self.mixup_alpha is None:
            changes["mixup_alpha"] = float(defaults.get("mixup_alpha", 1.0))
        if self.mixup_recompute is None:
            changes["mixup_recompute"] = method_spec(self.method).recompute_on_mixed
        if self.burnin_epochs is None:
            changes["burnin_epochs"] = float(defaults.get("burnin_epochs", _DEFAULT_BURNIN_EPOCHS))
        if self.anneal_epochs is None:
            changes["anneal_epochs"] = float(defaults.get("anneal_epochs", _DEFAULT_ANNEAL_EPOCHS))
        return dataclasses.replace(self, **changes)

    # -------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of all fields (tuples become lists)."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict` (sorted keys)."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=1)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        """Build a config from :meth:`to_dict` output; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {', '.join(unknown)}")
        kwargs = dict(data)
        if kwargs.get("lr_milestones") is not None:
            kwargs["lr_milestones"] = tuple(int(m) for m in kwargs["lr_milestones"])
        return cls(**kwargs)

    def run_identity(self) -> dict[str, Any]:
        """The fields that define the computation (everything except run control).

        Two configs with equal identities produce identical metrics; ``--resume``
        refuses a checkpoint whose identity differs.
        """
        d = self.to_dict()
        for name in self.RUN_CONTROL_FIELDS:
            d.pop(name, None)
        return d

    def identity_diff(self, other: TrainConfig) -> list[str]:
        """Names of the options that make ``other`` a different run (empty: the same run).

        Examples
        --------
        >>> a = TrainConfig(dataset="two-moons", width=8, out="x")
        >>> a.identity_diff(TrainConfig(dataset="two-moons", width=16, out="y"))
        ['width']
        """
        mine, theirs = self.run_identity(), other.run_identity()
        return sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))

    def lr_at_epoch(self, epoch: int) -> float:
        """Learning rate during ``epoch`` (0-based) under step decay.

        Examples
        --------
        >>> cfg = TrainConfig(dataset="two-moons", lr=0.1, lr_milestones=(2, 4), epochs=6)
        >>> [round(cfg.lr_at_epoch(e), 4) for e in range(6)]
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
        """
        if self.lr is None or self.lr_milestones is None:
            raise ValueError("call resolved() first")
        drops = sum(1 for m in self.lr_milestones if epoch >= m)
        return float(self.lr) * float(self.lr_decay) ** drops

    def lr_at(self, epoch: int, step: int, steps_per_epoch: int) -> float:
        """Learning rate of optimisation step ``step`` (0-based, global) in ``epoch``.

        Step decay (:meth:`lr_at_epoch`) times a linear warm-up from
        ``1/warmup_steps`` to 1 over the first ``warmup_epochs`` epochs.

        Examples
        --------
        >>> cfg = TrainConfig(dataset="two-moons", lr=0.1, lr_milestones=(), warmup_epochs=1.0)
        >>> [round(cfg.lr_at(0, s, 4), 3) for s in range(5)]
        [0.025, 0.05, 0.075, 0.1, 0.1]
        """
        lr = self.lr_at_epoch(epoch)
        warm = self.warmup_epochs * steps_per_epoch
        if warm > 0 and step < warm:
            lr *= (step + 1) / warm
        return lr

    def strength(self) -> dict[str, float]:
        """The instance strength as a keyword dict (``{'delta': 0.5}`` ...)."""
        for name in ("delta", "temperature", "lam"):
            v = getattr(self, name)
            if v is not None:
                return {name: float(v)}
        raise ValueError("no instance strength set; call resolved() first")


def schedule_steps(config: TrainConfig, steps_per_epoch: int) -> tuple[int, int]:
    """Burn-in and annealing lengths in optimisation steps.

    Explicit ``burnin_steps``/``anneal_steps`` win; otherwise
    ``round(epochs * steps_per_epoch)`` from ``burnin_epochs``/``anneal_epochs``.

    Examples
    --------
    >>> cfg = TrainConfig(dataset="two-moons", burnin_epochs=1.5, anneal_steps=7)
    >>> schedule_steps(cfg, 10)
    (15, 7)
    """
    cfg = config if config.burnin_epochs is not None and config.anneal_epochs is not None else config.resolved()
    burnin = cfg.burnin_steps
    if burnin is None:
        burnin = int(round(cfg.burnin_epochs * steps_per_epoch))
    anneal = cfg.anneal_steps
    if anneal is None:
        anneal = int(round(cfg.anneal_epochs * steps_per_epoch))
    return int(burnin), int(anneal)

