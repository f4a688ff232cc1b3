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
import functools
import json
from collections.abc import Mapping
from typing import Any

# The configuration by concern, re-exported here: option ranges and divergence names, the checks, the automatic
# defaults, the learning-rate and burn-in schedule, and the options that have no effect.
from .config_checks import _Checks
from .config_defaults import _Defaults
from .config_ranges import (  # noqa: F401 (re-exported)
    _DIVERGENCE_ALIASES,
    ALPHA_LIMIT,
    CLASS_DIVERGENCES,
    CLASS_GAMMA_MAX,
    DIVERGENCE_NAMES,
    MAX_COUNT,
    NUMERIC_OPTIONS,
    SEED_RANGE,
    STRENGTH_WORDS,
    OptionError,
    OptionRange,
    _canonical_divergence,
    _check_divergence_name,
    _class_divergence_key,
    _fmt,
    parse_divergence,
)
from .config_schedule import _Schedule, anneal_schedule, schedule_steps
from .config_unused import _unused_reason, unused_options  # noqa: F401 (re-exported)
from .protocol import MIXUP_RULES, PROTOCOLS

__all__ = [
    "AUGMENTATIONS",
    "BASELINE_LOSSES",
    "DATASETS",
    "FRAMEWORKS",
    "METHODS",
    "METHOD_DEFAULTS",
    "MIXUP_MODES",
    "MIXUP_RULES",
    "MODELS",
    "NUMERIC_OPTIONS",
    "PROTOCOLS",
    "MethodSpec",
    "OptionError",
    "OptionRange",
    "TrainConfig",
    "anneal_schedule",
    "auto_delta",
    "expected_flip_rate",
    "method_spec",
    "parse_divergence",
    "schedule_steps",
    "unused_options",
]

DATASETS = ("fashion-mnist", "cifar10", "cifar100", "two-moons", "digits")
METHODS = (
    "ce",
    "bootstrap",
    "mixup",
    "ciw",
    "cicw",
    "ciw-m",
    "cicw-m",
    "oracle",
    "bi-tempered",
    "nce-rce",
    "gce",
    "sce",
    "dynamic-mixup",
)
#: Methods whose loss is a robust loss of the adapters' ``baselines`` modules (no reweighting).
BASELINE_LOSSES = ("bi-tempered", "nce-rce", "gce", "sce")
MODELS = ("cnn", "mlp", "preact-resnet18", "preact-resnet18-paper")
FRAMEWORKS = ("torch", "jax")
AUGMENTATIONS = ("none", "flip", "crop", "crop-flip")
MIXUP_MODES = ("plain", "sample", "weight", "sample_weight", "label_smoothing")


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
    loss : str
        ``"reweighted"`` (the adapters' reweighted loss), a robust baseline
        loss of :data:`BASELINE_LOSSES`, or ``"dynamic-mixup"`` (Arazo et
        al.'s beta-mixture bootstrapping with mixup; :mod:`divweights_train.bmm`).
    """

    instance: bool
    classes: bool
    mixup: str | None
    recompute_on_mixed: bool
    oracle: bool = False
    loss: str = "reweighted"


_METHOD_SPECS = {
    "ce": MethodSpec(False, False, None, False),
    "bootstrap": MethodSpec(False, True, None, False),
    "mixup": MethodSpec(False, False, "plain", False),
    "ciw": MethodSpec(True, False, None, False),
    "cicw": MethodSpec(True, True, None, False),
    "ciw-m": MethodSpec(True, False, "label_smoothing", True),
    "cicw-m": MethodSpec(True, True, "sample_weight", True),
    "oracle": MethodSpec(False, False, None, False, oracle=True),
    "bi-tempered": MethodSpec(False, False, None, False, loss="bi-tempered"),
    "nce-rce": MethodSpec(False, False, None, False, loss="nce-rce"),
    "gce": MethodSpec(False, False, None, False, loss="gce"),
    "sce": MethodSpec(False, False, None, False, loss="sce"),
    "dynamic-mixup": MethodSpec(False, False, "plain", False, loss="dynamic-mixup"),
}


def method_spec(method: str) -> MethodSpec:
    """Return the :class:`MethodSpec` of a method name.

    Examples
    --------
    >>> method_spec("cicw-m")
    MethodSpec(instance=True, classes=True, mixup='sample_weight', recompute_on_mixed=True, oracle=False, loss='reweighted')
    """
    try:
        return _METHOD_SPECS[method]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}") from None


#: Defaults of the reweighting hyperparameters per method, used where the
#: corresponding option is left unset (None). ``"auto"`` radii adapt to each
#: batch (:mod:`divweights.adaptive`: no noise rate needed, ``--noise`` changes
#: no hyperparameter) and need no burn-in or annealing, so those default to 0
#: for them; ``delta="noise"`` (the previous default: :func:`auto_delta` of the
#: noise spec) and numbers keep the burn-in and annealing of
#: :data:`_DEFAULT_BURNIN_EPOCHS`. Measured: ``benchmarks/adaptive_radius.py``.
METHOD_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "ce": {},
    "bootstrap": {"class_divergence": "tv", "class_gamma": 0.2},
    "mixup": {},
    "ciw": {"delta": "auto"},
    # not switched to the adaptive radii yet: with delta="auto" and gamma="auto" the demo's CICW-M run
    # collapsed (0.294 at 60% noise, against 0.837 with these values); CICW and CIW-M are unmeasured
    "cicw": {"delta": "noise", "class_divergence": "reverse-kl", "class_gamma": 0.3},
    "ciw-m": {"delta": "noise", "mixup_alpha": 0.2},
    "cicw-m": {"delta": 0.1, "class_divergence": "reverse-kl", "class_gamma": 0.3},
    "oracle": {},
    "bi-tempered": {"t1": 0.8, "t2": 1.2},
    "nce-rce": {"loss_alpha": 1.0, "loss_beta": 1.0},
    "gce": {"q": 0.7},
    "sce": {"loss_alpha": 0.1, "loss_beta": 1.0},
    "dynamic-mixup": {"mixup_alpha": 32.0},
}

#: CIFAR-100 settings of the robust losses from their papers (NCE+RCE: Ma et al. 2020; SCE: Wang et al.
#: 2019); the other datasets use :data:`METHOD_DEFAULTS` (their CIFAR-10 settings).
_CIFAR100_LOSS_DEFAULTS: Mapping[str, Mapping[str, float]] = {
    "nce-rce": {"loss_alpha": 10.0, "loss_beta": 0.1},
    "sce": {"loss_alpha": 6.0, "loss_beta": 0.1},
}
#: The options of each robust loss (the fields are None for the other methods).
_LOSS_OPTIONS = {
    "bi-tempered": ("t1", "t2"),
    "nce-rce": ("loss_alpha", "loss_beta"),
    "gce": ("q",),
    "sce": ("loss_alpha", "loss_beta"),
}
_DEFAULT_EPOCHS = 30
_DEFAULT_WEIGHT_DECAY = 5e-4
_DEFAULT_INSTANCE_DIVERGENCE = "kl"

#: The previous defaults, by name: ``TrainConfig(..., **PREVIOUS_DEFAULTS[method])`` reproduces them
#: (radius from the noise spec for CIW, CICW and CIW-M; 0.1 for CICW-M; class radius 0.3).
PREVIOUS_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "ciw": {"delta": "noise"},
    "cicw": {"delta": "noise", "class_gamma": 0.3},
    "ciw-m": {"delta": "noise"},
    "cicw-m": {"delta": 0.1, "class_gamma": 0.3},
}

# Default epochs of burn-in (uniform weights) and annealing when steps are
# not given, for datasets without a specific entry.
_DEFAULT_BURNIN_EPOCHS = 2.0
_DEFAULT_ANNEAL_EPOCHS = 2.0


_NUM_CLASSES = {
    "fashion-mnist": 10,
    "cifar10": 10,
    "cifar100": 100,
    "two-moons": 2,
    "digits": 10,
}

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


def balance_classes_default(cfg: TrainConfig) -> bool:
    """Whether a run balances its class-weight shift (``--balance-classes``) when the option is not given.

    On for class reweighting together with mixup (CICW-M) under the divweights mixup rule: there a
    batch's class weights that move mass into one class are carried by the mixed targets to every
    partner, the model follows, and training collapses to one class (two-moons at 40% noise: 3 of 7
    seeds at chance in PyTorch, 5 of 7 in JAX); :func:`divweights.mixup.balance_class_shift` keeps
    the shifts that exchange mass between classes and undoes the net flow.  Off otherwise, and under
    ``--mixup-rule published`` (the published code has no such guard).  ``cfg`` has its class radius
    and mixup rule resolved.

    Examples
    --------
    >>> balance_classes_default(TrainConfig(dataset="two-moons", method="cicw-m").resolved())
    True
    >>> balance_classes_default(TrainConfig(dataset="two-moons", method="cicw-m", mixup_rule="published").resolved())
    False
    """
    spec = method_spec(cfg.method)
    mode = cfg.mixup_mode or spec.mixup
    class_on = spec.classes and cfg.class_gamma != 0 and _class_divergence_key(cfg.class_divergence) != "none"
    return bool(class_on and mode is not None and cfg.mixup_rule != "published")


@functools.cache  # a pure function of the run's options, called once per CIW-M step by the torch trainer
def smoothing_floor(noise: str, dataset: str, mixup_rule: str | None = None, num_classes: int | None = None) -> float:
    """CIW-M's least kept share of each label (``smoothing_floor`` of the adapters' ``weighted_mixup``).

    :func:`divweights.mixup.stable_label_share` of the noise spec's flip rate: a wrong prediction cannot
    sustain itself.  Noise that sends a class to one other class (``asymmetric``, ``pairflip``) is the
    two-class case; ``--mixup-rule published`` keeps the published rule (no floor).

    Examples
    --------
    >>> smoothing_floor("symmetric:0.8", "fashion-mnist")
    0.9
    >>> round(smoothing_floor("asymmetric:0.4", "fashion-mnist"), 4), smoothing_floor("none", "digits")
    (0.8333, 0.5)
    >>> smoothing_floor("symmetric:0.8", "fashion-mnist", "published")
    0.0
    """
    from divweights.mixup import stable_label_share

    from .noise import parse_noise_spec

    if mixup_rule == "published":
        return 0.0
    spec = parse_noise_spec(noise)
    if spec.kind == "none":
        return stable_label_share(0.0, 2)
    if spec.kind in ("asymmetric", "pairflip"):
        return stable_label_share(float(spec.rate), 2)
    k = num_classes or _NUM_CLASSES.get(dataset, 10)
    return round(stable_label_share(expected_flip_rate(noise, dataset), k), 12)


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


#: Fields added after configurations were first saved, with the value that reproduces what a run saved
#: before them did: a checkpoint or a benchmark record written without the field means that value, not
#: today's automatic default (so an old CICW-M record is not taken for a run with the class balance).
ADDED_FIELDS: dict[str, Any] = {"balance_classes": False}


@dataclasses.dataclass(frozen=True)
class TrainConfig(_Checks, _Defaults, _Schedule):
    """Every option of a training run (one field per ``divweights-train`` flag).

    Fields left as ``None`` are chosen automatically by :meth:`resolved`
    from the dataset and the method. See ``divweights-train --help`` for the
    meaning of each field; the field names are the flag names with ``-``
    replaced by ``_``.

    Examples
    --------
    >>> cfg = TrainConfig(dataset="two-moons", method="ciw", noise="symmetric:0.2", epochs=2).resolved()
    >>> cfg.model, cfg.delta, cfg.burnin_epochs, cfg.augment  # the adaptive radius needs no burn-in
    ('mlp', 'auto', 0.0, 'none')
    >>> round(TrainConfig(dataset="two-moons", method="ciw", noise="symmetric:0.2", delta="noise").resolved().delta, 3)
    0.223
    >>> TrainConfig.from_dict(cfg.to_dict()) == cfg
    True
    """

    # protocol
    protocol: str = "default"
    # data
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    subset: int | None = None
    val_fraction: float = 0.1
    noise: str = "none"
    exact_noise: bool | None = None
    augment: str | None = None
    crop_pad: int | None = None
    # method
    method: str = "ciw"
    instance_divergence: str | None = None
    delta: float | str | None = None
    temperature: float | None = None
    lam: float | None = None
    class_divergence: str | None = None
    class_gamma: float | str | None = None
    mixup_mode: str | None = None
    mixup_alpha: float | None = None
    mixup_recompute: bool | None = None
    mixup_power: float = 1.0
    burnin_steps: int | None = None
    anneal_steps: int | None = None
    burnin_epochs: float | None = None
    anneal_epochs: float | None = None
    anneal_start_factor: float = 10.0
    mixup_rule: str | None = None
    balance_classes: bool | None = None
    t1: float | None = None
    t2: float | None = None
    loss_alpha: float | None = None
    loss_beta: float | None = None
    q: float | None = None
    # model and optimiser
    model: str | None = None
    width: int | None = None
    epochs: int | None = None
    batch_size: int = 128
    eval_batch_size: int = 256
    lr: float | None = None
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float | None = None
    lr_milestones: tuple[int, ...] | None = None
    lr_milestone_steps: tuple[int, ...] | None = None
    lr_decay: float = 0.1
    warmup_epochs: float | None = None
    eval_every: int | None = None
    # run control
    seed: int = 0
    out: str | None = None
    resume: bool = False
    overwrite: bool = False
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
    RUN_CONTROL_FIELDS = (
        "out",
        "resume",
        "overwrite",
        "quiet",
        "stop_after_epochs",
        "threads",
        "device",
        "plots",
    )

    def __post_init__(self):
        self.validate()

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
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Build a config from :meth:`to_dict` output; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {', '.join(unknown)}")
        kwargs = dict(ADDED_FIELDS)
        kwargs.update(data)
        if kwargs.get("lr_milestones") is not None:
            kwargs["lr_milestones"] = tuple(int(m) for m in kwargs["lr_milestones"])
        if kwargs.get("lr_milestone_steps") is not None:
            kwargs["lr_milestone_steps"] = tuple(int(m) for m in kwargs["lr_milestone_steps"])
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
