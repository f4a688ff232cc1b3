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
import itertools
import json
import math
import numbers
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

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
        raise ValueError(
            f"unknown method {method!r}; choose one of {', '.join(METHODS)}"
        ) from None


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
            raise ValueError(
                f"bad alpha divergence {name!r}; write e.g. 'alpha:0.1'"
            ) from None
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


class OptionError(ValueError):
    """A :class:`TrainConfig` option out of range or inconsistent with the others.

    ``field`` names the option (a :class:`TrainConfig` field, the flag
    ``--field-name`` of ``divweights-train``); ``problem`` says what is wrong
    and what to give instead. ``str(err)`` is ``"<field> <problem>"``.

    Examples
    --------
    >>> try:
    ...     TrainConfig(weight_decay=float("nan"))
    ... except OptionError as err:
    ...     print(err.field, "|", err.problem)
    weight_decay | must be a finite number in [0, 1]; got nan
    """

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"{field} {problem}")


#: Largest count (steps, batch sizes, subset sizes) accepted: the JAX trainer counts steps in 32-bit integers.
MAX_COUNT = 2**31 - 1

#: Seeds are 32-bit: every random stream is derived from the seed's 32 bits
#: (``divweights_train.prepare.derive_seed``), so larger seeds would alias smaller ones.
SEED_RANGE = (0, 2**32 - 1)

#: ``alpha:A`` divergences need ``|A| <= ALPHA_LIMIT`` (measured: the solvers give weights on the
#: simplex at every form up to ``|A| = 1e4``; at ``A = 1e100`` the penalty form returns NaN and at
#: ``1e155`` the constraint form overflows; the solvers are tested for ``A`` in ``[-2.5, 5]``).
ALPHA_LIMIT = 100.0


def _fmt(v: float) -> str:
    if v == math.inf:
        return "inf"
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e16 else f"{v:g}"


@dataclasses.dataclass(frozen=True)
class OptionRange:
    """The valid values of one numeric option.

    Examples
    --------
    >>> OptionRange(False, 0, 10, low_open=True).describe()
    'a finite number in (0, 10]'
    >>> OptionRange(True, 1).describe(), OptionRange(False, 0).contains(float("inf"))
    ('an integer >= 1', False)
    """

    integer: bool
    low: float
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        if math.isinf(self.high):
            return f"{kind} {'>' if self.low_open else '>='} {_fmt(self.low)}"
        lo, hi = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"{kind} in {lo}{_fmt(self.low)}, {_fmt(self.high)}{hi}"

    def short(self) -> str:
        """The range in interval notation, for ``--help``."""
        lo, hi = (
            "(" if self.low_open else "[",
            ")" if self.high_open or math.isinf(self.high) else "]",
        )
        kind = "integer " if self.integer else ""
        return f"{kind}{lo}{_fmt(self.low)}, {_fmt(self.high)}{hi}"

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if self.integer:
            if not isinstance(value, numbers.Integral):
                return False
        elif not isinstance(value, numbers.Real):
            return False
        v = float(value) if not self.integer else int(value)
        if not math.isfinite(v):
            return False
        above = v > self.low if self.low_open else v >= self.low
        below = v < self.high if self.high_open else v <= self.high
        return above and below


#: Words accepted in place of a number: ``delta="auto"`` and ``class_gamma="auto"`` are the adaptive radii
#: (:func:`divweights.noise_rate` of each batch, tracked over steps, through :func:`divweights.noise_radius`:
#: no noise rate needed, the default); ``delta="noise"`` is the previous rule, :func:`auto_delta` of ``--noise``.
STRENGTH_WORDS: Mapping[str, tuple[str, ...]] = {"delta": ("auto", "noise"), "class_gamma": ("auto",)}


#: The range of every numeric :class:`TrainConfig` field (``None`` values mean "automatic" and are not checked).
#: The upper bounds keep every value meaningful: learning rates above 10, weight decay above 1 or
#: ``alpha:A`` with ``|A| > 100`` only make the run diverge or overflow, and counts stay in 32 bits.
NUMERIC_OPTIONS: Mapping[str, OptionRange] = {
    "subset": OptionRange(True, 2, MAX_COUNT),
    "val_fraction": OptionRange(False, 0.0, 1.0, high_open=True),
    "delta": OptionRange(False, 0.0),
    "temperature": OptionRange(False, 0.0, low_open=True),
    "lam": OptionRange(False, 0.0, low_open=True),
    "class_gamma": OptionRange(False, 0.0),
    "mixup_alpha": OptionRange(False, 0.0, 1e6, low_open=True),
    "mixup_power": OptionRange(False, 0.0, 1e6, low_open=True),
    "burnin_steps": OptionRange(True, 0, MAX_COUNT),
    "anneal_steps": OptionRange(True, 0, MAX_COUNT),
    "burnin_epochs": OptionRange(False, 0.0, 1e6),
    "anneal_epochs": OptionRange(False, 0.0, 1e6),
    "anneal_start_factor": OptionRange(False, 0.0, 1e6, low_open=True),
    "width": OptionRange(True, 1, 65536),
    "epochs": OptionRange(True, 1, 1_000_000),
    "batch_size": OptionRange(True, 1, MAX_COUNT),
    "eval_batch_size": OptionRange(True, 1, MAX_COUNT),
    "lr": OptionRange(False, 0.0, 10.0, low_open=True),
    "momentum": OptionRange(False, 0.0, 1.0, high_open=True),
    "weight_decay": OptionRange(False, 0.0, 1.0),
    "lr_decay": OptionRange(False, 0.0, 1.0, low_open=True),
    "warmup_epochs": OptionRange(False, 0.0, 1e6),
    "seed": OptionRange(True, SEED_RANGE[0], SEED_RANGE[1]),
    "max_steps": OptionRange(True, 1, MAX_COUNT),
    "stop_after_epochs": OptionRange(True, 0, 1_000_000),
    "threads": OptionRange(True, 1, 1024),
    "clean_model_epochs": OptionRange(True, 1, 1_000_000),
    "eval_every": OptionRange(True, 1, MAX_COUNT),
    "crop_pad": OptionRange(True, 0, 64),
    "t1": OptionRange(False, 0.0, 1.0),
    "t2": OptionRange(False, 0.0, 5.0, low_open=True),
    "loss_alpha": OptionRange(False, 0.0, 100.0),
    "loss_beta": OptionRange(False, 0.0, 100.0),
    "q": OptionRange(False, 0.0, 1.0, low_open=True),
}

#: Largest class radius per class divergence (total variation and squared L2 distances between
#: distributions are at most 1 and 2: larger radii act like these).
CLASS_GAMMA_MAX = {"tv": 1.0, "l2": 2.0}

#: Class divergences the training program can use (its targets are integer labels; KL class weights
#: need soft targets).
CLASS_DIVERGENCES = ("reverse-kl", "tv", "l2", "none")


def _canonical_divergence(name: str) -> str:
    """``kl``, ``reverse-kl``, ... or ``alpha`` for ``alpha:A`` (``name`` already parsed)."""
    key = str(name).strip().lower().replace("_", "-")
    return "alpha" if key.startswith("alpha:") else _DIVERGENCE_ALIASES[key]


def _check_divergence_name(what: str, name: str | None) -> None:
    if name is None:
        return
    try:
        div = parse_divergence(name)
    except (ValueError, TypeError) as err:
        raise OptionError(what, f"is not valid: {err}") from None
    alpha = getattr(div, "alpha", None)
    if _canonical_divergence(name) == "alpha" and not abs(alpha) <= ALPHA_LIMIT:
        raise OptionError(
            what,
            f"alpha:A needs -{_fmt(ALPHA_LIMIT)} <= A <= {_fmt(ALPHA_LIMIT)}; got {name!r}",
        )


def _class_divergence_key(name: str) -> str:
    """The canonical class divergence of ``name``: alpha:0 is reverse-kl, alpha:1 is kl."""
    canon = _canonical_divergence(name)
    if canon == "alpha":
        a = parse_divergence(name).alpha
        return "reverse-kl" if a == 0 else "kl" if abs(a - 1) < 1e-3 else "alpha"
    return canon


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

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise :class:`OptionError` (a ValueError) for an out-of-range or inconsistent option.

        Every numeric option must be a finite number (an integer for counts)
        in its :data:`NUMERIC_OPTIONS` range; choices must be known; the
        instance and class divergences must support the method, strength form
        and radius given; paths must not be empty. Nothing is run or read.
        """
        if self.protocol not in PROTOCOLS:
            raise OptionError(
                "protocol",
                f"must be one of {', '.join(PROTOCOLS)}; got {self.protocol!r}",
            )
        if self.dataset not in DATASETS:
            from .datasets import is_user_dataset

            if not is_user_dataset(self.dataset):
                raise OptionError(
                    "dataset",
                    f"must be one of {', '.join(DATASETS)}, a .npz file (arrays x, y) or a folder of "
                    f"class-named image folders; got {self.dataset!r}",
                )
        if self.method not in METHODS:
            raise OptionError(
                "method", f"must be one of {', '.join(METHODS)}; got {self.method!r}"
            )
        if self.model is not None and self.model not in MODELS:
            raise OptionError(
                "model", f"must be one of {', '.join(MODELS)}; got {self.model!r}"
            )
        if self.framework not in FRAMEWORKS:
            raise OptionError(
                "framework",
                f"must be one of {', '.join(FRAMEWORKS)}; got {self.framework!r}",
            )
        if self.augment is not None and self.augment not in AUGMENTATIONS:
            raise OptionError(
                "augment",
                f"must be one of {', '.join(AUGMENTATIONS)}; got {self.augment!r}",
            )
        if self.mixup_mode is not None:
            if self.mixup_mode not in MIXUP_MODES:
                raise OptionError(
                    "mixup_mode",
                    f"must be one of {', '.join(MIXUP_MODES)}; got {self.mixup_mode!r}",
                )
            if method_spec(self.method).mixup is None or self.method == "dynamic-mixup":
                raise OptionError(
                    "mixup_mode",
                    f"needs a mixup method (mixup, ciw-m, cicw-m), not {self.method!r}",
                )
        for name, rng in NUMERIC_OPTIONS.items():
            value = getattr(self, name)
            if isinstance(value, str) and name in STRENGTH_WORDS:
                if value not in STRENGTH_WORDS[name]:
                    raise OptionError(
                        name, f"must be {rng.describe()} or one of {', '.join(STRENGTH_WORDS[name])}; got {value!r}"
                    )
                continue
            if value is not None and not rng.contains(value):
                raise OptionError(name, f"must be {rng.describe()}; got {value!r}")
        if self.width is not None and str(self.model).startswith("preact-resnet18"):
            raise OptionError(
                "width", f"applies to the cnn and mlp models only, not {self.model}"
            )
        if self.resume and self.overwrite:
            raise OptionError(
                "overwrite",
                "cannot be combined with resume: continue the run in out (resume) or "
                "delete it first (overwrite)",
            )
        strengths = [
            n for n in ("delta", "temperature", "lam") if getattr(self, n) is not None
        ]
        if len(strengths) > 1:
            raise OptionError(
                strengths[1],
                f"cannot be combined with {strengths[0]}: give at most one of "
                "delta, temperature, lam",
            )
        epochs = self._epochs()
        if self.warmup_epochs is not None and self.warmup_epochs > epochs:
            raise OptionError(
                "warmup_epochs",
                f"must be at most epochs ({epochs}): a longer warm-up never "
                f"reaches the learning rate; got {self.warmup_epochs!r}",
            )
        if self.lr_milestones is not None:
            ms = tuple(self.lr_milestones)
            if not all(
                isinstance(m, numbers.Integral) and not isinstance(m, bool) for m in ms
            ):
                raise OptionError(
                    "lr_milestones", f"must be integers (epochs); got {ms}"
                )
            if any(m < 0 for m in ms) or any(b <= a for a, b in itertools.pairwise(ms)):
                raise OptionError(
                    "lr_milestones",
                    f"must be strictly increasing non-negative epochs; got {ms}",
                )
            if ms and ms[-1] >= epochs:
                raise OptionError(
                    "lr_milestones",
                    f"must lie below epochs ({epochs}): milestone {ms[-1]} is "
                    "never reached; drop it or raise epochs",
                )
        for name in ("out", "data_dir", "cache_dir"):
            value = getattr(self, name)
            if value is not None and not str(value).strip():
                raise OptionError(
                    name,
                    "must not be empty: give a folder, or leave the option out for the default",
                )
        if self.device != "cpu" and not re.fullmatch(r"cuda(:\d+)?", str(self.device)):
            raise OptionError(
                "device", f"must be 'cpu', 'cuda' or 'cuda:N'; got {self.device!r}"
            )
        self._validate_divergences()
        from .noise import parse_noise_spec

        try:
            parse_noise_spec(self.noise)
        except (ValueError, TypeError) as err:
            raise OptionError("noise", f"is not valid: {err}") from None
        self._validate_protocol_options()

    # Defaults that depend on the protocol (also needed to validate an unresolved config).
    def _epochs(self) -> int:
        if self.epochs is not None:
            return self.epochs
        if self.protocol == "paper":
            from .protocol import PAPER

            return PAPER["iterations"] // PAPER["eval_every"]
        return _DEFAULT_EPOCHS

    def _instance_divergence(self) -> str:
        if self.instance_divergence is not None:
            return self.instance_divergence
        if self.protocol == "paper":
            from .protocol import PAPER

            return PAPER["instance_divergence"]
        return _DEFAULT_INSTANCE_DIVERGENCE

    def _validate_protocol_options(self) -> None:
        """Checks of the options of the published protocol, the schedule in steps and the robust losses."""
        from .protocol import PAPER

        if self.protocol == "paper" and self.dataset not in PAPER["datasets"]:
            raise OptionError(
                "protocol",
                f"paper is the published CIFAR recipe; use --dataset cifar10 or cifar100 "
                f"(got {self.dataset!r}) or leave --protocol out",
            )
        if self.mixup_rule is not None and self.mixup_rule not in MIXUP_RULES:
            raise OptionError(
                "mixup_rule",
                f"must be one of {', '.join(MIXUP_RULES)}; got {self.mixup_rule!r}",
            )
        if self.exact_noise is False:
            from .noise import parse_noise_spec

            if parse_noise_spec(self.noise).kind == "instance":
                raise OptionError(
                    "exact_noise",
                    "cannot be off with instance-dependent noise, which always flips exactly "
                    "round(rate * n) labels (the highest-scored ones)",
                )
        if self.lr_milestone_steps is not None:
            ms = tuple(self.lr_milestone_steps)
            if not all(
                isinstance(m, numbers.Integral) and not isinstance(m, bool) for m in ms
            ):
                raise OptionError(
                    "lr_milestone_steps", f"must be integers (steps); got {ms}"
                )
            if any(m < 0 for m in ms) or any(b <= a for a, b in itertools.pairwise(ms)):
                raise OptionError(
                    "lr_milestone_steps",
                    f"must be strictly increasing non-negative steps; got {ms}",
                )
            if self.lr_milestones:
                raise OptionError(
                    "lr_milestone_steps",
                    "cannot be combined with lr_milestones (epochs): give the learning-rate "
                    "drops in steps or in epochs, not both",
                )
        if (
            self.loss_alpha is not None
            and self.loss_beta is not None
            and self.loss_alpha == 0
            and self.loss_beta == 0
        ):
            raise OptionError(
                "loss_beta",
                "and loss_alpha cannot both be 0 (the loss would be 0); give a positive weight",
            )

    def _validate_divergences(self) -> None:
        _check_divergence_name("instance_divergence", self.instance_divergence)
        _check_divergence_name("class_divergence", self.class_divergence)
        spec = method_spec(self.method)
        if spec.instance:
            div = parse_divergence(self._instance_divergence())
            if div is None:
                raise OptionError(
                    "instance_divergence",
                    f"cannot be 'none' with method {self.method!r}, which "
                    "reweights instances; use --method ce for uniform weights",
                )
            form = next(
                (
                    n
                    for n in ("delta", "temperature", "lam")
                    if getattr(self, n) is not None
                ),
                "delta",
            )
            if form not in div.instance_forms:
                raise OptionError(
                    form,
                    f"is not available with instance divergence {self._instance_divergence()!r} "
                    f"(it takes {' or '.join(div.instance_forms)})",
                )
        class_div = self.class_divergence
        if class_div is None:
            class_div = METHOD_DEFAULTS[self.method].get(
                "class_divergence", "reverse-kl"
            )
        key = _class_divergence_key(class_div)
        if key == "kl":
            raise OptionError(
                "class_divergence",
                "kl needs soft (probability) targets, and the training program's "
                "targets are integer labels; use reverse-kl (KL(label || v) <= gamma, the published "
                "'kl' option), tv or l2",
            )
        if key not in CLASS_DIVERGENCES:
            raise OptionError(
                "class_divergence",
                f"{class_div!r} has no class weights; choose one of "
                f"{', '.join(CLASS_DIVERGENCES)}",
            )
        if (
            self.class_gamma is not None
            and not isinstance(self.class_gamma, str)
            and key in CLASS_GAMMA_MAX
            and self.class_gamma > CLASS_GAMMA_MAX[key]
        ):
            hi = _fmt(CLASS_GAMMA_MAX[key])
            raise OptionError(
                "class_gamma",
                f"must be at most {hi} with class divergence {key} (no two "
                f"distributions are further apart; a larger radius acts like {hi}); got "
                f"{self.class_gamma!r}",
            )

    # -------------------------------------------------------------- defaults
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
        strength = {
            k: settings.pop(k) for k in ("delta", "temperature", "lam") if k in settings
        }
        if self.delta is None and self.temperature is None and self.lam is None:
            changes.update(strength)
        for name, value in settings.items():
            fill(name, value)
        return dataclasses.replace(self, **changes)

    def _resolved_extra(self) -> TrainConfig:
        """Fill the automatic fields that do not depend on the generic defaults (see :meth:`resolved`)."""
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
        * burn-in and annealing lengths in epochs (the step counts are
          derived from them by :func:`schedule_steps` once the dataset size
          is known).
        """
        changes: dict[str, Any] = {}
        cifar = self.dataset in ("cifar10", "cifar100")
        model = self.model or (
            "preact-resnet18"
            if cifar
            else "mlp"
            if self.dataset == "two-moons"
            else "cnn"
        )
        changes["model"] = model
        if self.lr is None:
            changes["lr"] = (
                0.1
                if model.startswith("preact-resnet18")
                else 0.02
                if model == "cnn"
                else 0.05
            )
        if self.warmup_epochs is None:
            changes["warmup_epochs"] = 1.0 if model == "cnn" else 0.0
        if self.lr_milestones is None:
            if model.startswith("preact-resnet18"):
                ms = tuple(
                    sorted(
                        {
                            max(1, round(self.epochs * f))
                            for f in (30 / 120, 80 / 120, 110 / 120)
                        }
                    )
                )
            else:
                ms = tuple(
                    sorted({max(1, round(self.epochs * f)) for f in (2 / 3, 13 / 15)})
                )
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
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Build a config from :meth:`to_dict` output; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {', '.join(unknown)}")
        kwargs = dict(data)
        if kwargs.get("lr_milestones") is not None:
            kwargs["lr_milestones"] = tuple(int(m) for m in kwargs["lr_milestones"])
        if kwargs.get("lr_milestone_steps") is not None:
            kwargs["lr_milestone_steps"] = tuple(
                int(m) for m in kwargs["lr_milestone_steps"]
            )
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
        return sorted(
            k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k)
        )

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

    def lr_at_step(self, epoch: int, step: int) -> float:
        """Learning rate of step ``step`` (0-based, global) in ``epoch`` under step decay, before any warm-up.

        With ``lr_milestone_steps`` the rate drops after each milestone step
        ``m``, as ``tf.keras``'s ``PiecewiseConstantDecay`` (the published
        schedule): steps ``0..m`` use the higher rate and step ``m + 1`` the
        lower. Otherwise it is :meth:`lr_at_epoch`.

        Examples
        --------
        >>> cfg = TrainConfig(dataset="cifar10", lr=0.1, lr_milestone_steps=(2, 4)).resolved()
        >>> [round(cfg.lr_at_step(0, s), 4) for s in range(6)]
        [0.1, 0.1, 0.1, 0.01, 0.01, 0.001]
        """
        lr = self.lr_at_epoch(epoch)
        if self.lr_milestone_steps:
            drops = sum(1 for m in self.lr_milestone_steps if step > m)
            lr *= float(self.lr_decay) ** drops
        return lr

    def lr_at(self, epoch: int, step: int, steps_per_epoch: int) -> float:
        """Learning rate of optimisation step ``step`` (0-based, global) in ``epoch``.

        Step decay (:meth:`lr_at_step`) times a linear warm-up from
        ``1/warmup_steps`` to 1 over the first ``warmup_epochs`` epochs.

        Examples
        --------
        >>> cfg = TrainConfig(dataset="two-moons", lr=0.1, lr_milestones=(), warmup_epochs=1.0)
        >>> [round(cfg.lr_at(0, s, 4), 3) for s in range(5)]
        [0.025, 0.05, 0.075, 0.1, 0.1]
        >>> TrainConfig(dataset="two-moons", lr=0.1, lr_milestones=(), warmup_epochs=0.1).lr_at(0, 0, 4)
        0.1
        """
        lr = self.lr_at_step(epoch, step)
        warm = self.warmup_epochs * steps_per_epoch
        if warm > 0 and step < warm:
            lr *= min(
                1.0, (step + 1) / warm
            )  # a warm-up shorter than one step never raises the lr
        return lr

    def strength(self) -> dict[str, float | str]:
        """The instance strength as a keyword dict (``{'delta': 0.5}``, ``{'delta': 'auto'}`` ...)."""
        for name in ("delta", "temperature", "lam"):
            v = getattr(self, name)
            if v is not None:
                return {name: v if v == "auto" else float(v)}
        raise ValueError("no instance strength set; call resolved() first")


def schedule_steps(config: TrainConfig, steps_per_epoch: int) -> tuple[int, int]:
    """Burn-in and annealing lengths in optimisation steps.

    Explicit ``burnin_steps``/``anneal_steps`` win; otherwise
    ``round(epochs * steps_per_epoch)`` from ``burnin_epochs``/``anneal_epochs``
    (at most :data:`MAX_COUNT`).

    Examples
    --------
    >>> cfg = TrainConfig(dataset="two-moons", burnin_epochs=1.5, anneal_steps=7)
    >>> schedule_steps(cfg, 10)
    (15, 7)
    """
    cfg = (
        config
        if config.burnin_epochs is not None and config.anneal_epochs is not None
        else config.resolved()
    )
    burnin = cfg.burnin_steps
    if burnin is None:
        burnin = min(MAX_COUNT, round(cfg.burnin_epochs * steps_per_epoch))
    anneal = cfg.anneal_steps
    if anneal is None:
        anneal = min(MAX_COUNT, round(cfg.anneal_epochs * steps_per_epoch))
    return int(burnin), int(anneal)


def anneal_schedule(
    config: TrainConfig, steps_per_epoch: int
) -> tuple[int, int, float]:
    """Burn-in steps, annealing steps and start factor of the backends' schedule.

    :func:`schedule_steps` and ``anneal_start_factor``; under the paper
    protocol the annealing line is the published one, one step ahead
    (:func:`divweights_train.protocol.published_anneal`).

    Examples
    --------
    >>> anneal_schedule(TrainConfig(dataset="cifar10", protocol="paper"), 1000)
    (4000, 2999, 9.997)
    >>> anneal_schedule(TrainConfig(dataset="cifar10", burnin_steps=4000, anneal_steps=3000), 1000)
    (4000, 3000, 10.0)
    """
    cfg = config.resolved()
    burnin, anneal = schedule_steps(cfg, steps_per_epoch)
    factor = float(cfg.anneal_start_factor)
    if cfg.protocol == "paper":
        from .protocol import published_anneal

        anneal, factor = published_anneal(anneal, factor)
    return burnin, anneal, factor


# ---------------------------------------------------------------------------
# Options that have no effect
# ---------------------------------------------------------------------------
def _methods_with(attr: str) -> str:
    return ", ".join(m for m in METHODS if getattr(_METHOD_SPECS[m], attr))


_INSTANCE_OPTIONS = ("instance_divergence", "delta", "temperature", "lam")
_CLASS_OPTIONS = ("class_divergence", "class_gamma")
_BURNIN_OPTIONS = ("burnin_steps", "burnin_epochs")
_ANNEAL_OPTIONS = ("anneal_steps", "anneal_epochs", "anneal_start_factor")
_MIXUP_OPTIONS = ("mixup_alpha", "mixup_power", "mixup_recompute")
#: Datasets whose inputs are not images (two-moons always; digits when flattened for the MLP).
_GENERATED_DATASETS = {"two-moons": "is generated", "digits": "ships with scikit-learn"}


def _unused_reason(
    cfg: TrainConfig, name: str, value: Any, opt: Callable[[str], str]
) -> str | None:
    """Why option ``name`` (given as ``value``) changes nothing in a run of ``cfg`` (resolved), or None.

    ``opt`` turns a field name into the name shown to the user (a flag for the CLI).
    """
    spec = method_spec(cfg.method)
    mode = cfg.mixup_mode or spec.mixup
    method = f"{opt('method')} {cfg.method}"
    mode_from = f"{cfg.method}'s default or {opt('mixup_mode')}"
    if name in _INSTANCE_OPTIONS and not spec.instance:
        return f"with {method}, which has no instance weights (methods with them: {_methods_with('instance')})"
    if name in _CLASS_OPTIONS and not spec.classes:
        return f"with {method}, which has no class weights (methods with them: {_methods_with('classes')})"
    if name == "class_divergence" and cfg.class_gamma == 0:
        return f"with {opt('class_gamma')} 0, which switches class reweighting off"
    if name == "class_gamma" and _class_divergence_key(cfg.class_divergence) == "none":
        return (
            f"with {opt('class_divergence')} none, which switches class reweighting off"
        )
    warms_up = spec.loss == "dynamic-mixup"
    if name in _ANNEAL_OPTIONS and warms_up:
        return f"with {method}: its burn-in is a plain-mixup warm-up; it has no strength to anneal"
    if (
        name in _BURNIN_OPTIONS + _ANNEAL_OPTIONS
        and not (spec.instance or spec.classes)
        and not warms_up
    ):
        return f"with {method}, which does not reweight (nothing to burn in or anneal)"
    if name in _ANNEAL_OPTIONS and not spec.instance:
        return (
            f"with {method}: annealing scales the instance strength and {cfg.method} has none (the class "
            "radius is not annealed, only switched on after the burn-in)"
        )
    if name == "burnin_epochs" and cfg.burnin_steps is not None:
        return f"together with {opt('burnin_steps')}, which takes precedence"
    if name == "anneal_epochs" and cfg.anneal_steps is not None:
        return f"together with {opt('anneal_steps')}, which takes precedence"
    if name == "anneal_start_factor" and (
        cfg.anneal_steps == 0 or (cfg.anneal_steps is None and cfg.anneal_epochs == 0)
    ):
        return (
            f"without annealing (its length is 0, the default of {cfg.method} with an adaptive radius; give "
            f"{opt('anneal_epochs')} to anneal): the strength starts at its target"
        )
    if name in _MIXUP_OPTIONS and mode is None:
        mixers = ", ".join(m for m in METHODS if _METHOD_SPECS[m].mixup)
        return f"with {method}, which does no mixup (mixup methods: {mixers})"
    published = cfg.mixup_rule == "published"
    if name == "mixup_rule" and mode in (None, "plain"):
        return (
            f"with {method}, which has no weighted mixup (the rules differ only there)"
        )
    if name == "mixup_power" and (
        mode == "plain" or (mode in ("weight", "label_smoothing") and not published)
    ):
        return f"with mixup mode {mode} ({mode_from}): partners are a random permutation, not sampled by weight"
    if name == "mixup_recompute" and mode == "plain":
        return (
            f"with mixup mode plain ({mode_from}): it has no clean-pass weights to reuse; the mixed batch "
            "always gets the method's loss"
        )
    if (
        name == "augment"
        and value != "none"
        and (
            cfg.dataset == "two-moons"
            or (cfg.dataset == "digits" and cfg.model == "mlp")
        )
    ):
        return f"with {opt('dataset')} {cfg.dataset} and {opt('model')} {cfg.model}: the inputs are not images"
    if name == "data_dir" and cfg.dataset in _GENERATED_DATASETS:
        return f"with {opt('dataset')} {cfg.dataset}, which {_GENERATED_DATASETS[cfg.dataset]} (no files are read)"
    if name in ("clean_model_epochs", "cache_dir"):
        from .noise import parse_noise_spec

        if parse_noise_spec(cfg.noise).kind != "instance":
            return (
                f"with {opt('noise')} {cfg.noise}: only instance-dependent noise (instance:R) trains a clean "
                "model to score the examples"
            )
    for options in _LOSS_OPTIONS.values():
        if name in options and name not in _LOSS_OPTIONS.get(cfg.method, ()):
            users = ", ".join(m for m, o in _LOSS_OPTIONS.items() if name in o)
            return f"with {method}: it is an option of the robust loss of {users}"
    if name == "exact_noise":
        from .noise import parse_noise_spec

        if parse_noise_spec(cfg.noise).kind == "none":
            return f"with {opt('noise')} none (no label is flipped)"
    if name == "crop_pad" and (
        cfg.augment not in ("crop", "crop-flip")
        or cfg.dataset == "two-moons"
        or (cfg.dataset == "digits" and cfg.model == "mlp")
    ):
        return f"without cropping ({opt('augment')} {cfg.augment}, {opt('dataset')} {cfg.dataset})"
    if name == "lr_decay" and not cfg.lr_milestones and not cfg.lr_milestone_steps:
        return f"without {opt('lr_milestones')} below {opt('epochs')} (the learning rate is never decayed)"
    if name == "nesterov" and value and cfg.momentum == 0:
        return f"with {opt('momentum')} 0 (Nesterov momentum needs momentum)"
    if name == "threads" and cfg.framework == "jax":
        return (
            f"with {opt('framework')} jax: XLA fixes its CPU thread pool when JAX starts (set XLA_FLAGS "
            "before launching instead)"
        )
    if name == "stop_after_epochs" and value >= cfg.epochs:
        return f"with {opt('epochs')} {cfg.epochs}: the run ends before that anyway"
    return None


def unused_options(
    config: TrainConfig,
    given: Mapping[str, Any] | Iterable[str],
    *,
    option_name: Callable[[str], str] | None = None,
) -> list[tuple[str, str]]:
    """The options in ``given`` that would have no effect on a run of ``config``, with the reason.

    ``divweights-train`` refuses such options (``--method ce --class-divergence
    tv`` would otherwise train plain cross-entropy without a word). The config
    alone cannot tell which options a user set on purpose (:meth:`TrainConfig.resolved`
    fills every automatic field), so the caller names them.

    Parameters
    ----------
    config : TrainConfig
        The run's options.
    given : mapping or iterable of str
        The field names the user set explicitly (a mapping also gives their values;
        otherwise the config's values are used).
    option_name : callable, optional
        Turns a field name into the name used in the reasons (default: the
        field name; the CLI passes its flags).

    Returns
    -------
    list of (str, str)
        ``(field, reason)`` pairs, in the order of ``given``; empty when every option counts.

    Examples
    --------
    >>> cfg = TrainConfig(dataset="two-moons", method="ce", class_divergence="tv")
    >>> unused_options(cfg, ["method", "class_divergence"])
    [('class_divergence', 'with method ce, which has no class weights (methods with them: bootstrap, cicw, cicw-m)')]
    >>> unused_options(TrainConfig(method="cicw-m", delta=0.2), ["delta"])
    []
    """
    cfg = config.resolved()
    values = (
        dict(given)
        if isinstance(given, Mapping)
        else {n: getattr(config, n) for n in given}
    )
    opt = option_name or (lambda field: field)
    out = []
    for name, value in values.items():
        reason = _unused_reason(cfg, name, value, opt)
        if reason is not None:
            out.append((name, reason))
    return out
