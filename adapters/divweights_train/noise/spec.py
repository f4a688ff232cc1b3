"""Noise specifications for the command line: ``"KIND:RATE"`` strings and their dispatch."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from ._checks import (
    NoiseResult,
    RNGLike,
    _as_generator,
    _check_bool,
    _check_labels,
    _check_num_classes,
    _check_rate,
    _finish,
    _shared_doc,
)
from .class_maps import ASYMMETRIC_MAPPINGS
from .generators import (
    asymmetric_noise,
    cifar100_asymmetric_noise,
    instance_dependent_noise,
    pair_flip_noise,
    symmetric_noise,
)

__all__ = ["NOISE_KINDS", "NOISE_KIND_ALIASES", "NoiseSpec", "apply_noise", "parse_noise_spec"]

NOISE_KINDS = (
    "none",
    "symmetric",
    "symmetric-uniform",
    "asymmetric",
    "pairflip",
    "cifar100-next",
    "cifar100-random",
    "instance",
)
"""Canonical noise kinds understood by :func:`parse_noise_spec`."""

NOISE_KIND_ALIASES = MappingProxyType(
    {
        "clean": "none",
        "sym": "symmetric",
        "symmetric-flip": "symmetric",
        "asym": "asymmetric",
        "pair": "pairflip",
        "pair-flip": "pairflip",
        "instance-dependent": "instance",
    }
)
"""Alternative spellings accepted by :func:`parse_noise_spec`, mapped to their canonical kind."""

_DATASET_ALIASES = {
    "cifar10": "cifar10",
    "fashionmnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
}


def _kinds_text() -> str:
    """The accepted kinds and their aliases, for error messages."""
    aliases = ", ".join(f"{a} -> {k}" for a, k in NOISE_KIND_ALIASES.items())
    return f"supported kinds: {', '.join(NOISE_KINDS)}; aliases: {aliases}"


def _canonical_kind(text: str) -> str:
    kind = NOISE_KIND_ALIASES.get(text, text)
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise kind {text!r}; {_kinds_text()}")
    return kind


@dataclass(frozen=True)
class NoiseSpec:
    """A parsed noise specification such as ``"symmetric:0.6"``.

    Parameters
    ----------
    kind : str
        One of :data:`NOISE_KINDS`.
    rate : float
        Noise rate in ``[0, 1]``; must be 0 for ``kind="none"``.

    Examples
    --------
    >>> from divweights_train.noise import NoiseSpec
    >>> spec = NoiseSpec("pairflip", 0.45)
    >>> str(spec)
    'pairflip:0.45'
    """

    kind: str
    rate: float = 0.0

    def __post_init__(self):
        if not isinstance(self.kind, str):
            raise TypeError(f"kind must be a str; got {type(self.kind).__name__}")
        if self.kind not in NOISE_KINDS:
            if self.kind in NOISE_KIND_ALIASES:
                raise ValueError(
                    f"noise kind {self.kind!r} is an alias of {NOISE_KIND_ALIASES[self.kind]!r}; NoiseSpec "
                    "takes the canonical kind (parse_noise_spec also accepts the aliases)"
                )
            raise ValueError(f"unknown noise kind {self.kind!r}; {_kinds_text()}")
        rate = _check_rate(self.rate)
        if self.kind == "none" and rate != 0.0:
            raise ValueError(f"noise kind 'none' must have rate 0; got {rate!r}")
        object.__setattr__(self, "rate", rate)

    def __str__(self) -> str:
        return "none" if self.kind == "none" else f"{self.kind}:{self.rate!r}"


def parse_noise_spec(spec) -> NoiseSpec:
    """Parse a ``"KIND:RATE"`` noise string.

    Kinds (case-insensitive): ``symmetric``, ``symmetric-uniform``,
    ``asymmetric``, ``pairflip``, ``cifar100-next``, ``cifar100-random``,
    ``instance`` and ``none`` (which takes no rate, or rate 0). Aliases:
    ``sym``, ``symmetric-flip``, ``asym``, ``pair``, ``pair-flip``,
    ``instance-dependent``, ``clean``.

    Parameters
    ----------
    spec : str or NoiseSpec
        The string to parse; a ``NoiseSpec`` is returned unchanged.

    Returns
    -------
    NoiseSpec

    Examples
    --------
    >>> from divweights_train.noise import parse_noise_spec
    >>> parse_noise_spec("symmetric:0.6")
    NoiseSpec(kind='symmetric', rate=0.6)
    >>> parse_noise_spec("none")
    NoiseSpec(kind='none', rate=0.0)
    """
    if isinstance(spec, NoiseSpec):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"noise spec must be a str like 'symmetric:0.4'; got {type(spec).__name__}")
    text = spec.strip().lower()
    if not text:
        raise ValueError("empty noise spec; expected 'KIND:RATE' (e.g. 'symmetric:0.4') or 'none'")
    kind_text, sep, rate_text = text.partition(":")
    kind = _canonical_kind(kind_text.strip())
    rate_text = rate_text.strip()
    if kind == "none" and not sep:
        return NoiseSpec("none", 0.0)
    if not rate_text:
        raise ValueError(
            f"noise spec {spec!r} is missing a rate; expected '{kind}:RATE' with RATE in [0, 1], e.g. '{kind}:0.4'"
        )
    try:
        rate = float(rate_text)
    except ValueError:
        raise ValueError(
            f"could not parse rate {rate_text!r} in noise spec {spec!r}; expected a number in [0, 1]"
        ) from None
    return NoiseSpec(kind, rate)


def _canonical_dataset(dataset) -> str:
    supported = ", ".join(repr(d) for d in ASYMMETRIC_MAPPINGS)
    if dataset is None:
        raise ValueError(f"asymmetric noise needs dataset= to pick its class mapping; supported: {supported}")
    if not isinstance(dataset, str):
        raise TypeError(f"dataset must be a str; got {type(dataset).__name__}")
    key = dataset.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    if key in _DATASET_ALIASES:
        return _DATASET_ALIASES[key]
    hint = ""
    if key == "cifar100":
        hint = " For CIFAR-100 use the kinds 'cifar100-next' or 'cifar100-random'."
    raise ValueError(f"no asymmetric mapping for dataset {dataset!r}; supported: {supported}.{hint}")


@_shared_doc
def apply_noise(
    spec, labels, num_classes, *, rng: RNGLike, dataset: str | None = None, confusion_scores=None, exact: bool = True
) -> NoiseResult:
    """Apply the noise described by a spec string or :class:`NoiseSpec`.

    Dispatch:

    =============================  ==============================================
    kind                           generator
    =============================  ==============================================
    ``none``                       labels returned unchanged (copied)
    ``symmetric``                  :func:`symmetric_noise`, ``variant="flip"``
    ``symmetric-uniform``          :func:`symmetric_noise`, ``variant="uniform"``
    ``asymmetric``                 :func:`asymmetric_noise` with the mapping of
                                   ``dataset`` (``"cifar10"`` or
                                   ``"fashion-mnist"``)
    ``pairflip``                   :func:`pair_flip_noise`
    ``cifar100-next``/``-random``  :func:`cifar100_asymmetric_noise`
    ``instance``                   :func:`instance_dependent_noise` (needs
                                   ``confusion_scores``; always exact)
    =============================  ==============================================

    Parameters
    ----------
    spec : str or NoiseSpec
        E.g. ``"symmetric:0.6"``; see :func:`parse_noise_spec`.
    {{labels}}
    num_classes : int
        Number of classes.
    {{rng}}
    dataset : str, optional
        Dataset name; required for ``asymmetric``.
    confusion_scores : array_like, shape (n, num_classes), optional
        Clean-model class probabilities; required for ``instance``.
    exact : bool
        Passed to the generator. ``instance`` noise is always exact, so
        ``exact=False`` is an error for it.

    {{returns}}

    Examples
    --------
    >>> import numpy as np
    >>> from divweights_train.noise import apply_noise
    >>> y = np.repeat(np.arange(10), 100)
    >>> noisy, flipped = apply_noise("asymmetric:0.4", y, 10, rng=0, dataset="cifar10")
    >>> int(flipped.sum())
    200
    >>> noisy, flipped = apply_noise("none", y, 10, rng=0)
    >>> bool(flipped.any())
    False
    """
    spec = parse_noise_spec(spec)
    exact = _check_bool(exact, "exact")
    kind, rate = spec.kind, spec.rate
    if kind == "none":
        k = _check_num_classes(num_classes, 1)
        y, out_dtype = _check_labels(labels, k)
        _as_generator(rng)
        return _finish(y, y.copy(), out_dtype)
    if kind in ("symmetric", "symmetric-uniform"):
        variant = "flip" if kind == "symmetric" else "uniform"
        return symmetric_noise(labels, rate, num_classes, rng=rng, variant=variant, exact=exact)
    if kind == "pairflip":
        return pair_flip_noise(labels, rate, num_classes, rng=rng, exact=exact)
    if kind == "asymmetric":
        name = _canonical_dataset(dataset)
        k = _check_num_classes(num_classes, 1)
        if k != 10:
            raise ValueError(f"asymmetric noise for {name!r} needs num_classes=10; got {k}")
        return asymmetric_noise(labels, rate, mapping=ASYMMETRIC_MAPPINGS[name], rng=rng, exact=exact, num_classes=k)
    if kind in ("cifar100-next", "cifar100-random"):
        k = _check_num_classes(num_classes, 1)
        if k != 100:
            raise ValueError(f"{kind!r} noise needs num_classes=100; got {k}")
        variant = kind.split("-", 1)[1]
        return cifar100_asymmetric_noise(labels, rate, rng=rng, variant=variant, exact=exact)
    # instance
    if confusion_scores is None:
        raise ValueError(
            "noise kind 'instance' needs confusion_scores: an (n, num_classes) array of "
            "class probabilities from a model trained on clean labels"
        )
    if not exact:
        raise ValueError(
            "instance-dependent noise always flips exactly round(rate * n) examples; exact=False is not supported"
        )
    k = _check_num_classes(num_classes, 2, "instance-dependent noise")
    scores = np.asarray(confusion_scores)
    if scores.ndim == 2 and scores.shape[1] != k:
        raise ValueError(f"confusion_scores has {scores.shape[1]} columns but num_classes is {k}")
    return instance_dependent_noise(labels, rate, scores, rng=rng)
