"""The valid values of the training options: numeric ranges, divergence names and :class:`OptionError`.

Nothing here depends on the rest of the configuration: :class:`OptionRange`
and :data:`NUMERIC_OPTIONS` say which numbers each
:class:`~divweights_train.config.TrainConfig` field takes (``--help`` shows
them after ``valid:``), :func:`parse_divergence` reads a divergence name.
Everything is re-exported by :mod:`divweights_train.config`.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ALPHA_LIMIT",
    "CLASS_DIVERGENCES",
    "CLASS_GAMMA_MAX",
    "DIVERGENCE_NAMES",
    "MAX_COUNT",
    "NUMERIC_OPTIONS",
    "SEED_RANGE",
    "STRENGTH_WORDS",
    "OptionError",
    "OptionRange",
    "parse_divergence",
]

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
        raise ValueError(f"unknown divergence {name!r}; choose one of {', '.join(DIVERGENCE_NAMES)} or alpha:A")
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
    >>> from divweights_train.config import TrainConfig
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


# Defined here, documented and pickled as the names of :mod:`divweights_train.config`, where they have always been.
OptionError.__module__ = OptionRange.__module__ = "divweights_train.config"
