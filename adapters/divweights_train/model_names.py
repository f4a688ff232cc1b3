"""Model names shared by the two model zoos (:mod:`~divweights_train.models_torch`, :mod:`~divweights_train.models_jax`)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["MODEL_NAMES", "model_key"]

#: Canonical names accepted by either zoo's ``build_model``.
MODEL_NAMES = ("cnn", "mlp", "preact-resnet18", "preact-resnet18-paper")

_ALIASES = {
    "cnn": "cnn",
    "small-cnn": "cnn",
    "smallcnn": "cnn",
    "mlp": "mlp",
    "preact-resnet18": "preact-resnet18",
    "preactresnet18": "preact-resnet18",
    "preact-resnet-18": "preact-resnet18",
    "preact-resnet18-paper": "preact-resnet18-paper",
    "preactresnet18-paper": "preact-resnet18-paper",
    "preact-resnet-18-paper": "preact-resnet18-paper",
}


def model_key(name: str, in_shape: Sequence[int]) -> tuple[str, tuple[int, ...]]:
    """The canonical model name (case-insensitive, ``_`` or ``-``) and the checked input shape.

    Examples
    --------
    >>> model_key("Small_CNN", [1, 28, 28])
    ('cnn', (1, 28, 28))
    """
    key = _ALIASES.get(str(name).lower().replace("_", "-"))
    if key is None:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    shape = tuple(int(d) for d in in_shape)
    if not shape or any(d < 1 for d in shape):
        raise ValueError(f"in_shape must be a non-empty shape of positive sizes, got {shape}")
    return key, shape
