"""Network architectures of the training program in pure JAX (no Flax).

Each model is a frozen, hashable :class:`JaxModel` description (so that it can
be a static argument of :func:`jax.jit`) with two pure functions:

* ``init(key) -> (params, state)``: parameters (a dict pytree of float32
  arrays, the things SGD updates) and state (batch-norm running statistics,
  updated by the forward pass in training mode, never by SGD);
* ``apply(params, state, x, *, train, key=None) -> (logits, new_state)``:
  the forward pass. In training mode batch norm uses the batch statistics and
  updates the running ones (momentum 0.1, unbiased variance, as
  :class:`torch.nn.BatchNorm2d`), and dropout draws its mask from ``key``;
  in evaluation mode the running statistics are used and dropout is off.

The architectures and initialisations mirror :mod:`divweights_train.models_torch`:

* ``"cnn"``: two blocks ``conv3x3 -> BN -> ReLU -> maxpool2`` (``width`` and
  ``2 * width`` channels), then dropout 0.25 and a linear layer;
* ``"mlp"``: fully connected ReLU layers (``hidden``, default ``(64, 64)``);
* ``"preact-resnet18"``: pre-activation ResNet-18 (64-128-256-512 channels,
  two blocks per stage);
* ``"preact-resnet18-paper"``: the published code's variant (BN-ReLU after
  the stem, identity shortcuts adding the pre-activated input, TensorFlow
  ``'same'`` padding, Keras ``he_normal`` convolutions, dense N(0, 0.01)
  with zero bias), as :class:`divweights_train.models_torch.PaperPreActResNet18`.

Inputs are ``(N, C, H, W)`` images (transposed to NHWC internally) or ``(N, D)``
features. Convolutions and linear layers start from PyTorch's default
uniform initialisation ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``; the ResNet's
convolutions from the Kaiming normal (fan-out) initialisation.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .model_names import MODEL_NAMES, model_key

__all__ = ["MODEL_NAMES", "JaxModel", "build_model", "count_params"]


_F32 = jnp.float32
_BN_EPS = 1e-5
_BN_MOMENTUM = 0.1
_RESNET_WIDTHS = (64, 128, 256, 512)
_RESNET_BLOCKS = (2, 2, 2, 2)


# --------------------------------------------------------------------------- #
# Layers (pure functions on explicit parameters).
# --------------------------------------------------------------------------- #
def _uniform(key, shape, fan_in):
    bound = 1.0 / math.sqrt(fan_in)
    return jax.random.uniform(key, shape, dtype=_F32, minval=-bound, maxval=bound)


def _dense_init(key, fan_in: int, fan_out: int) -> dict:
    kw, kb = jax.random.split(key)
    return {
        "w": _uniform(kw, (fan_in, fan_out), fan_in),
        "b": _uniform(kb, (fan_out,), fan_in),
    }


def _conv_init(key, k: int, cin: int, cout: int, *, kaiming_fan_out: bool = False) -> jnp.ndarray:
    shape = (k, k, cin, cout)  # HWIO
    if kaiming_fan_out:
        std = math.sqrt(2.0 / (cout * k * k))
        return std * jax.random.normal(key, shape, dtype=_F32)
    return _uniform(key, shape, cin * k * k)


#: The standard deviation of a unit normal truncated to [-2, 2] (Keras' ``he_normal`` divides by it).
_TRUNCATED_NORMAL_STD = 0.87962566103423978


def _keras_he_normal(key, k: int, cin: int, cout: int) -> jnp.ndarray:
    std = math.sqrt(2.0 / (cin * k * k)) / _TRUNCATED_NORMAL_STD
    return std * jax.random.truncated_normal(key, -2.0, 2.0, (k, k, cin, cout), _F32)


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's ``'same'`` padding along one axis (the extra pixel goes after)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _conv_same(w, x, stride: int = 1):
    k = w.shape[0]
    return jax.lax.conv_general_dilated(
        x,
        w,
        window_strides=(stride, stride),
        padding=(
            _same_padding(x.shape[1], k, stride),
            _same_padding(x.shape[2], k, stride),
        ),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )


def _bn_init(channels: int) -> tuple[dict, dict]:
    params = {
        "scale": jnp.ones((channels,), _F32),
        "bias": jnp.zeros((channels,), _F32),
    }
    state = {"mean": jnp.zeros((channels,), _F32), "var": jnp.ones((channels,), _F32)}
    return params, state


def _dense(p, x):
    return x @ p["w"] + p["b"]


def _conv(w, x, stride: int = 1, pad: int | None = None):
    k = w.shape[0]
    pad = (k - 1) // 2 if pad is None else pad
    return jax.lax.conv_general_dilated(
        x,
        w,
        window_strides=(stride, stride),
        padding=((pad, pad), (pad, pad)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )


def _batch_norm(p, s, x, train: bool):
    """Batch norm over all axes but the last (channels)."""
    axes = tuple(range(x.ndim - 1))
    if train:
        mean = jnp.mean(x, axis=axes)
        var = jnp.mean(jnp.square(x - mean), axis=axes)
        count = x.size // x.shape[-1]
        unbiased = var * (count / max(count - 1, 1))
        new_s = {
            "mean": (1 - _BN_MOMENTUM) * s["mean"] + _BN_MOMENTUM * jax.lax.stop_gradient(mean),
            "var": (1 - _BN_MOMENTUM) * s["var"] + _BN_MOMENTUM * jax.lax.stop_gradient(unbiased),
        }
    else:
        mean, var, new_s = s["mean"], s["var"], s
    y = (x - mean) * jax.lax.rsqrt(var + _BN_EPS)
    return y * p["scale"] + p["bias"], new_s


def _max_pool2(x):
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def _dropout(x, rate: float, key, train: bool):
    if not train or rate <= 0:
        return x
    if key is None:
        raise ValueError("dropout in training mode needs a PRNG key")
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


def _nhwc(x):
    if x.ndim != 4:
        raise ValueError(f"image models need inputs of shape (N, C, H, W), got {x.shape}")
    return jnp.transpose(x, (0, 2, 3, 1))


# --------------------------------------------------------------------------- #
# The model description.
# --------------------------------------------------------------------------- #
@dataclasses.dataclass(frozen=True)
class JaxModel:
    """A hashable description of a network; see the module docstring.

    Attributes
    ----------
    name : str
        ``"cnn"``, ``"mlp"``, ``"preact-resnet18"`` or ``"preact-resnet18-paper"``.
    in_shape : tuple of int
        Shape of one input without the batch axis.
    num_classes : int
        Number of logits.
    width : int
        Channels of the CNN's first block.
    hidden : tuple of int
        Hidden sizes of the MLP.
    dropout : float
        Dropout rate of the CNN before its linear layer.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> m = build_model("mlp", (2,), 3, hidden=(8,))
    >>> params, state = m.init(jax.random.key(0))
    >>> logits, _ = m.apply(params, state, jnp.zeros((5, 2)), train=False)
    >>> logits.shape
    (5, 3)
    """

    name: str
    in_shape: tuple[int, ...]
    num_classes: int
    width: int = 32
    hidden: tuple[int, ...] = (64, 64)
    dropout: float = 0.25

    # ------------------------------------------------------------------ init
    def init(self, key) -> tuple[dict, dict]:
        """Fresh ``(params, state)`` from a PRNG key (float32 whatever ``jax_enable_x64`` says)."""
        return _init_jit(self, key)

    def _init(self, key):
        if self.name == "mlp":
            return self._init_mlp(key)
        if self.name == "cnn":
            return self._init_cnn(key)
        return self._init_resnet(key)

    def _init_mlp(self, key):
        sizes = [int(np.prod(self.in_shape)), *self.hidden, self.num_classes]
        keys = jax.random.split(key, len(sizes) - 1)
        params = {f"dense{i}": _dense_init(keys[i], a, b) for i, (a, b) in enumerate(itertools.pairwise(sizes))}
        return params, {}

    def _init_cnn(self, key):
        c, h, w = self.in_shape
        k1, k2, k3 = jax.random.split(key, 3)
        bn1, s1 = _bn_init(self.width)
        bn2, s2 = _bn_init(2 * self.width)
        params = {
            "conv1": _conv_init(k1, 3, c, self.width),
            "bn1": bn1,
            "conv2": _conv_init(k2, 3, self.width, 2 * self.width),
            "bn2": bn2,
            "fc": _dense_init(k3, 2 * self.width * (h // 4) * (w // 4), self.num_classes),
        }
        return params, {"bn1": s1, "bn2": s2}

    def _init_resnet(self, key):
        c = self.in_shape[0]
        keys = iter(jax.random.split(key, 64))
        paper = self.name == "preact-resnet18-paper"

        def conv(k, cin, cout):
            if paper:
                return _keras_he_normal(next(keys), k, cin, cout)
            return _conv_init(next(keys), k, cin, cout, kaiming_fan_out=True)

        params: dict = {"stem": conv(3, c, _RESNET_WIDTHS[0])}
        state: dict = {}
        if paper:
            params["stem_bn"], state["stem_bn"] = _bn_init(_RESNET_WIDTHS[0])
        in_planes = _RESNET_WIDTHS[0]
        for si, (planes, count) in enumerate(zip(_RESNET_WIDTHS, _RESNET_BLOCKS)):
            for bi in range(count):
                stride = (1 if si == 0 else 2) if bi == 0 else 1
                name = f"s{si}b{bi}"
                bn1, st1 = _bn_init(in_planes)
                bn2, st2 = _bn_init(planes)
                blk = {
                    "bn1": bn1,
                    "conv1": conv(3, in_planes, planes),
                    "bn2": bn2,
                    "conv2": conv(3, planes, planes),
                }
                if stride != 1 or in_planes != planes:
                    blk["shortcut"] = conv(1, in_planes, planes)
                params[name] = blk
                state[name] = {"bn1": st1, "bn2": st2}
                in_planes = planes
        bn, st = _bn_init(in_planes)
        params["bn"] = bn
        state["bn"] = st
        if paper:
            params["fc"] = {
                "w": 0.01 * jax.random.normal(next(keys), (in_planes, self.num_classes), _F32),
                "b": jnp.zeros((self.num_classes,), _F32),
            }
        else:
            params["fc"] = _dense_init(next(keys), in_planes, self.num_classes)
        return params, state

    # ----------------------------------------------------------------- apply
    def apply(self, params, state, x, *, train: bool, key=None):
        """Logits and the new batch-norm state; see the module docstring."""
        x = jnp.asarray(x, _F32)
        if self.name == "mlp":
            h = x.reshape(x.shape[0], -1)
            n_layers = len(self.hidden) + 1
            for i in range(n_layers):
                h = _dense(params[f"dense{i}"], h)
                if i < n_layers - 1:
                    h = jax.nn.relu(h)
            return h, state
        if self.name == "cnn":
            h = _nhwc(x)
            h, s1 = _batch_norm(params["bn1"], state["bn1"], _conv(params["conv1"], h), train)
            h = _max_pool2(jax.nn.relu(h))
            h, s2 = _batch_norm(params["bn2"], state["bn2"], _conv(params["conv2"], h), train)
            h = _max_pool2(jax.nn.relu(h))
            h = h.reshape(h.shape[0], -1)
            h = _dropout(h, self.dropout, key, train)
            return _dense(params["fc"], h), {"bn1": s1, "bn2": s2}
        return self._apply_resnet(params, state, x, train)

    def _apply_resnet(self, params, state, x, train):
        if self.name == "preact-resnet18-paper":
            return self._apply_paper_resnet(params, state, x, train)
        h = _conv(params["stem"], _nhwc(x))
        new_state: dict = {}
        h = _preact_stages(params, state, h, train, new_state, _conv, skip_pre=False)
        h, st = _batch_norm(params["bn"], state["bn"], h, train)
        new_state["bn"] = st
        h = jnp.mean(jax.nn.relu(h), axis=(1, 2))
        return _dense(params["fc"], h), new_state

    def _apply_paper_resnet(self, params, state, x, train):
        h = _conv_same(params["stem"], _nhwc(x))
        h, st = _batch_norm(params["stem_bn"], state["stem_bn"], h, train)
        h = jax.nn.relu(h)
        new_state: dict = {"stem_bn": st}
        h = _preact_stages(params, state, h, train, new_state, _conv_same, skip_pre=True)
        h, st = _batch_norm(params["bn"], state["bn"], h, train)
        new_state["bn"] = st
        h = jnp.mean(jax.nn.relu(h), axis=(1, 2))
        return _dense(params["fc"], h), new_state


def _preact_stages(params, state, h, train: bool, new_state: dict, conv, *, skip_pre: bool):
    """The four stages of pre-activation blocks of both ResNet-18s, on NHWC ``h``; fills ``new_state``.

    A block is ``conv2(relu(bn2(conv1(relu(bn1(h)))))) + skip``, the skip a
    strided 1x1 ``shortcut`` convolution of the pre-activated input where the
    block has one, otherwise the block's input ``h`` (``skip_pre=False``, the
    standard network) or its pre-activated input (``skip_pre=True``, the
    published code).  ``conv`` is ``_conv`` or the TensorFlow-padded
    ``_conv_same``.
    """
    for si, count in enumerate(_RESNET_BLOCKS):
        for bi in range(count):
            name = f"s{si}b{bi}"
            p, s = params[name], state[name]
            stride = (1 if si == 0 else 2) if bi == 0 else 1
            pre, st1 = _batch_norm(p["bn1"], s["bn1"], h, train)
            pre = jax.nn.relu(pre)
            skip = conv(p["shortcut"], pre, stride) if "shortcut" in p else (pre if skip_pre else h)
            out = conv(p["conv1"], pre, stride)
            out, st2 = _batch_norm(p["bn2"], s["bn2"], out, train)
            h = conv(p["conv2"], jax.nn.relu(out)) + skip
            new_state[name] = {"bn1": st1, "bn2": st2}
    return h


@functools.partial(jax.jit, static_argnums=0)
def _init_jit(model: JaxModel, key):
    # One compiled computation instead of one per random draw (much faster eagerly).
    return model._init(key)


def count_params(params) -> int:
    """Number of scalars in a parameter pytree.

    Examples
    --------
    >>> import jax
    >>> count_params(build_model("mlp", (2,), 2, hidden=(4,)).init(jax.random.key(0))[0])
    22
    """
    return int(sum(np.prod(np.shape(p)) for p in jax.tree_util.tree_leaves(params)))


def build_model(
    name: str,
    in_shape: Sequence[int],
    num_classes: int,
    *,
    width: int | None = None,
    hidden: Sequence[int] | None = None,
) -> JaxModel:
    """Describe a network by name for inputs of shape ``in_shape``.

    Parameters
    ----------
    name : {"cnn", "mlp", "preact-resnet18", "preact-resnet18-paper"}
        Architecture (case-insensitive; ``_`` and ``-`` are interchangeable).
    in_shape : sequence of int
        ``(C, H, W)`` for images or ``(D,)`` for features (the MLP flattens
        images).
    num_classes : int
        Number of logits.
    width : int, optional
        Channels of the CNN's first block (default 32).
    hidden : sequence of int, optional
        Hidden sizes of the MLP (default ``(64, 64)``).

    Returns
    -------
    JaxModel

    Examples
    --------
    >>> import jax
    >>> m = build_model("cnn", (1, 28, 28), 10, width=8)
    >>> jax.eval_shape(lambda k: m.apply(*m.init(k), jax.numpy.zeros((2, 1, 28, 28)), train=False)[0],
    ...                jax.random.key(0)).shape
    (2, 10)
    """
    key, shape = model_key(name, in_shape)
    if int(num_classes) < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    kwargs: dict = {}
    if key == "mlp":
        if width is not None:
            raise ValueError("the mlp takes hidden=, not width=")
        if hidden is not None:
            hid = tuple(int(h) for h in hidden)
            if any(h < 1 for h in hid):
                raise ValueError(f"hidden sizes must be positive, got {hid}")
            kwargs["hidden"] = hid
    else:
        if hidden is not None:
            raise ValueError(f"model {key!r} takes no hidden=")
        if len(shape) != 3:
            raise ValueError(f"model {key!r} needs image inputs (C, H, W), got in_shape {shape}")
        if key == "cnn":
            if shape[1] < 4 or shape[2] < 4:
                raise ValueError(f"the cnn needs inputs of at least 4x4, got {shape[1]}x{shape[2]}")
            if width is not None:
                if int(width) < 1:
                    raise ValueError(f"width must be positive, got {width}")
                kwargs["width"] = int(width)
        elif width is not None:
            raise ValueError("width applies to the cnn and mlp models only")
    return JaxModel(name=key, in_shape=shape, num_classes=int(num_classes), **kwargs)
