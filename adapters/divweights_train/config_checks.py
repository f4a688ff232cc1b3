"""The checks of a :class:`~divweights_train.config.TrainConfig`: every option in range and consistent.

:class:`_Checks` holds :meth:`~divweights_train.config.TrainConfig.validate`,
which every config runs when it is made.  The method tables come from
:mod:`divweights_train.config` when a check runs (that module builds
``TrainConfig`` from this one).
"""

from __future__ import annotations

import itertools
import numbers
import re

from .config_ranges import (
    CLASS_DIVERGENCES,
    CLASS_GAMMA_MAX,
    NUMERIC_OPTIONS,
    STRENGTH_WORDS,
    OptionError,
    _check_divergence_name,
    _class_divergence_key,
    _fmt,
    parse_divergence,
)
from .protocol import MIXUP_RULES, PROTOCOLS


def _increasing_counts(field: str, values, unit: str) -> tuple[int, ...]:
    """``values`` as a tuple, or :class:`OptionError` unless they are strictly increasing non-negative integers.

    Examples
    --------
    >>> _increasing_counts("lr_milestones", [2, 5], "epochs")
    (2, 5)
    >>> _increasing_counts("lr_milestone_steps", (5, 5), "steps")
    Traceback (most recent call last):
    ...
    divweights_train.config.OptionError: lr_milestone_steps must be strictly increasing non-negative steps; got (5, 5)
    """
    ms = tuple(values)
    if not all(isinstance(m, numbers.Integral) and not isinstance(m, bool) for m in ms):
        raise OptionError(field, f"must be integers ({unit}); got {ms}")
    if any(m < 0 for m in ms) or any(b <= a for a, b in itertools.pairwise(ms)):
        raise OptionError(field, f"must be strictly increasing non-negative {unit}; got {ms}")
    return ms


class _Checks:
    """The validation methods of :class:`~divweights_train.config.TrainConfig`."""

    def validate(self) -> None:
        """Raise :class:`OptionError` (a ValueError) for an out-of-range or inconsistent option.

        Every numeric option must be a finite number (an integer for counts)
        in its :data:`NUMERIC_OPTIONS` range; choices must be known; the
        instance and class divergences must support the method, strength form
        and radius given; paths must not be empty. Nothing is run or read.
        """
        from .config import AUGMENTATIONS, DATASETS, FRAMEWORKS, METHODS, MIXUP_MODES, MODELS, method_spec

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
            raise OptionError("method", f"must be one of {', '.join(METHODS)}; got {self.method!r}")
        if self.model is not None and self.model not in MODELS:
            raise OptionError("model", f"must be one of {', '.join(MODELS)}; got {self.model!r}")
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
            raise OptionError("width", f"applies to the cnn and mlp models only, not {self.model}")
        if self.resume and self.overwrite:
            raise OptionError(
                "overwrite",
                "cannot be combined with resume: continue the run in out (resume) or delete it first (overwrite)",
            )
        strengths = [n for n in ("delta", "temperature", "lam") if getattr(self, n) is not None]
        if len(strengths) > 1:
            raise OptionError(
                strengths[1],
                f"cannot be combined with {strengths[0]}: give at most one of delta, temperature, lam",
            )
        epochs = self._epochs()
        if self.warmup_epochs is not None and self.warmup_epochs > epochs:
            raise OptionError(
                "warmup_epochs",
                f"must be at most epochs ({epochs}): a longer warm-up never "
                f"reaches the learning rate; got {self.warmup_epochs!r}",
            )
        if self.lr_milestones is not None:
            ms = _increasing_counts("lr_milestones", self.lr_milestones, "epochs")
            if ms and ms[-1] >= epochs:
                raise OptionError(
                    "lr_milestones",
                    f"must lie below epochs ({epochs}): milestone {ms[-1]} is never reached; drop it or raise epochs",
                )
        for name in ("out", "data_dir", "cache_dir"):
            value = getattr(self, name)
            if value is not None and not str(value).strip():
                raise OptionError(
                    name,
                    "must not be empty: give a folder, or leave the option out for the default",
                )
        if self.device != "cpu" and not re.fullmatch(r"cuda(:\d+)?", str(self.device)):
            raise OptionError("device", f"must be 'cpu', 'cuda' or 'cuda:N'; got {self.device!r}")
        self._validate_divergences()
        from .noise import parse_noise_spec

        try:
            parse_noise_spec(self.noise)
        except (ValueError, TypeError) as err:
            raise OptionError("noise", f"is not valid: {err}") from None
        self._validate_protocol_options()

    # Defaults that depend on the protocol (also needed to validate an unresolved config).
    def _epochs(self) -> int:
        from .config import _DEFAULT_EPOCHS

        if self.epochs is not None:
            return self.epochs
        if self.protocol == "paper":
            from .protocol import PAPER

            return PAPER["iterations"] // PAPER["eval_every"]
        return _DEFAULT_EPOCHS

    def _instance_divergence(self) -> str:
        from .config import _DEFAULT_INSTANCE_DIVERGENCE

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
        if self.balance_classes not in (None, True, False):
            raise OptionError(
                "balance_classes", f"must be true, false or null (automatic); got {self.balance_classes!r}"
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
            _increasing_counts("lr_milestone_steps", self.lr_milestone_steps, "steps")
            if self.lr_milestones:
                raise OptionError(
                    "lr_milestone_steps",
                    "cannot be combined with lr_milestones (epochs): give the learning-rate "
                    "drops in steps or in epochs, not both",
                )
        if self.loss_alpha is not None and self.loss_beta is not None and self.loss_alpha == 0 and self.loss_beta == 0:
            raise OptionError(
                "loss_beta",
                "and loss_alpha cannot both be 0 (the loss would be 0); give a positive weight",
            )

    def _validate_divergences(self) -> None:
        from .config import METHOD_DEFAULTS, method_spec

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
                (n for n in ("delta", "temperature", "lam") if getattr(self, n) is not None),
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
            class_div = METHOD_DEFAULTS[self.method].get("class_divergence", "reverse-kl")
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
                f"{class_div!r} has no class weights; choose one of {', '.join(CLASS_DIVERGENCES)}",
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
