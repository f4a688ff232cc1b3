"""Network architectures used by the training program (torch).

* :class:`SmallCNN` -- two conv blocks and a linear head; fast on a CPU for
  28x28 Fashion-MNIST.
* :class:`MLP` -- fully connected network for two-moons and other tabular data.
* :class:`PreActResNet18` -- pre-activation ResNet-18 for 32x32 CIFAR images.
* :class:`PaperPreActResNet18` -- the published code's PreAct ResNet-18
  (``--model preact-resnet18-paper``, selected by ``--protocol paper``).
* :func:`build_model` -- construct one of them by name from an input shape.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .model_names import MODEL_NAMES, model_key

__all__ = [
    "MLP",
    "MODEL_NAMES",
    "PaperPreActBlock",
    "PaperPreActResNet18",
    "PreActBlock",
    "PreActResNet18",
    "SmallCNN",
    "build_model",
    "keras_he_normal_",
]


def _pair(size) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


class SmallCNN(nn.Module):
    """Two convolutional blocks followed by a linear classifier.

    Each block is ``conv3x3 -> BatchNorm -> ReLU -> maxpool2``; the first has
    ``width`` channels and the second ``2 * width``. The pooled feature map is
    flattened and fed to a dropout + linear layer.

    Parameters
    ----------
    in_channels : int, default 1
        Input channels.
    num_classes : int, default 10
        Number of output logits.
    width : int, default 32
        Channels of the first block.
    input_size : int or (int, int), default 28
        Spatial size of the inputs (needed to size the linear layer).
    dropout : float, default 0.25
        Dropout probability before the linear layer.

    Examples
    --------
    >>> import torch
    >>> SmallCNN(1, 10)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        width: int = 32,
        *,
        input_size: int | Sequence[int] = 28,
        dropout: float = 0.25,
    ):
        super().__init__()
        h, w = _pair(input_size)
        if h < 4 or w < 4:
            raise ValueError(f"SmallCNN needs inputs of at least 4x4, got {h}x{w}")
        if width < 1 or num_classes < 1 or in_channels < 1:
            raise ValueError("in_channels, num_classes and width must be positive")
        self.input_size = (h, w)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(2 * width * (h // 4) * (w // 4), num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class MLP(nn.Module):
    """Fully connected ReLU network.

    Parameters
    ----------
    in_features : int
        Input dimension; inputs with more than two dimensions are flattened.
    num_classes : int
        Number of output logits.
    hidden : sequence of int, default (64, 64)
        Sizes of the hidden layers (may be empty for a linear model).

    Examples
    --------
    >>> import torch
    >>> MLP(2, 2)(torch.zeros(5, 2)).shape
    torch.Size([5, 2])
    """

    def __init__(self, in_features: int, num_classes: int, hidden: Sequence[int] = (64, 64)):
        super().__init__()
        sizes = [int(in_features), *(int(h) for h in hidden)]
        if any(s < 1 for s in sizes) or num_classes < 1:
            raise ValueError("in_features, num_classes and hidden sizes must be positive")
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in itertools.pairwise(sizes):
            layers += [nn.Linear(a, b), nn.ReLU(inplace=True)]
        layers.append(nn.Linear(sizes[-1], int(num_classes)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PreActBlock(nn.Module):
    """Pre-activation residual block: ``BN-ReLU-conv3x3-BN-ReLU-conv3x3``.

    The shortcut is the identity, or a strided 1x1 convolution of the
    pre-activated input when the shape changes.
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.shortcut = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = torch.relu(self.bn1(x))
        skip = self.shortcut(pre) if self.shortcut is not None else x
        out = self.conv1(pre)
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + skip


class _ResNet18(nn.Module):
    """What both ResNet-18s share: four stages of two pre-activation blocks with 64, 128, 256 and 512 channels."""

    widths = (64, 128, 256, 512)
    blocks = (2, 2, 2, 2)

    def __init__(self, num_classes: int, in_channels: int):
        super().__init__()
        if num_classes < 1 or in_channels < 1:
            raise ValueError("num_classes and in_channels must be positive")

    def _add_stages(self, block: type[nn.Module]) -> int:
        """Set ``self.stages`` (stages 2-4 start with a stride-2 block); return their output channels."""
        stages = []
        in_planes = self.widths[0]
        for i, (planes, count) in enumerate(zip(self.widths, self.blocks)):
            layers = []
            for j in range(count):
                layers.append(block(in_planes, planes, (1 if i == 0 else 2) if j == 0 else 1))
                in_planes = planes
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        return in_planes


class PreActResNet18(_ResNet18):
    """Pre-activation ResNet-18 for 32x32 images.

    A 3x3 stem convolution with 64 channels, four stages of two
    :class:`PreActBlock` each with 64, 128, 256 and 512 channels (stages 2-4
    halve the resolution), a final BN-ReLU, global average pooling and a
    linear classifier.

    Parameters
    ----------
    num_classes : int, default 10
        Number of output logits.
    in_channels : int, default 3
        Input channels.

    Examples
    --------
    >>> import torch
    >>> PreActResNet18(10)(torch.zeros(1, 3, 32, 32)).shape
    torch.Size([1, 10])
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__(num_classes, in_channels)
        self.stem = nn.Conv2d(in_channels, self.widths[0], 3, padding=1, bias=False)
        in_planes = self._add_stages(PreActBlock)
        self.bn = nn.BatchNorm2d(in_planes)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(in_planes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stages(self.stem(x))
        out = self.pool(torch.relu(self.bn(out)))
        return self.linear(torch.flatten(out, 1))


#: The standard deviation of a unit normal truncated to [-2, 2] (Keras' ``he_normal`` divides by it).
TRUNCATED_NORMAL_STD = 0.87962566103423978


def keras_he_normal_(weight: torch.Tensor) -> torch.Tensor:
    r"""Keras' ``he_normal`` initialisation, in place: a normal truncated at two standard deviations.

    The standard deviation is :math:`\sqrt{2 / \mathrm{fan\_in}} / 0.8796`
    (``fan_in`` = input channels x kernel area), so that the truncated draws
    have variance :math:`2 / \mathrm{fan\_in}`; values beyond two standard
    deviations are redrawn.

    Examples
    --------
    >>> w = keras_he_normal_(torch.empty(64, 64, 3, 3))
    >>> bound = 2 * math.sqrt(2 / (64 * 9)) / TRUNCATED_NORMAL_STD
    >>> bool(w.abs().max() <= bound)
    True
    """
    fan_in = weight[0].numel()
    std = math.sqrt(2.0 / fan_in) / TRUNCATED_NORMAL_STD
    with torch.no_grad():
        return nn.init.trunc_normal_(weight, 0.0, std, -2.0 * std, 2.0 * std)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's ``padding='same'``: (before, after) along one axis; the extra pixel goes after.

    Examples
    --------
    >>> same_padding(32, 3, 1), same_padding(32, 3, 2), same_padding(32, 1, 2)
    ((1, 1), (0, 1), (0, 0))
    """
    out = -(-int(size) // int(stride))
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _SameConv2d(nn.Conv2d):
    """A bias-free convolution with TensorFlow's ``'same'`` padding (asymmetric for strided kernels)."""

    def __init__(self, in_planes: int, planes: int, kernel: int, stride: int = 1):
        pad = (kernel - 1) // 2 if stride == 1 else 0
        super().__init__(in_planes, planes, kernel, stride=stride, padding=pad, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        if s != 1:
            top, bottom = same_padding(x.shape[-2], k, s)
            left, right = same_padding(x.shape[-1], k, s)
            if top or bottom or left or right:
                x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


class PaperPreActBlock(nn.Module):
    """The published code's pre-activation block.

    ``pre = ReLU(BN(x))``; ``out = conv3x3(ReLU(BN(conv3x3_stride(pre))))``;
    the shortcut is ``pre`` itself (the *pre-activated* input) or a strided
    1x1 convolution of it when the shape changes; the block returns
    ``out + shortcut``. Convolutions pad as TensorFlow's ``'same'``.
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = _SameConv2d(in_planes, planes, 3, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = _SameConv2d(planes, planes, 3, 1)
        self.shortcut = None
        if stride != 1 or in_planes != planes:
            self.shortcut = _SameConv2d(in_planes, planes, 1, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = torch.relu(self.bn1(x))
        skip = self.shortcut(pre) if self.shortcut is not None else pre
        out = self.conv2(torch.relu(self.bn2(self.conv1(pre))))
        return out + skip


class PaperPreActResNet18(_ResNet18):
    """PreAct ResNet-18 as in the published code (``preact_resnet_models.create_resnet18``).

    The differences from :class:`PreActResNet18` are the published ones: a
    BN-ReLU after the 3x3 stem convolution, identity shortcuts that add the
    pre-activated input (:class:`PaperPreActBlock`), TensorFlow ``'same'``
    padding (strided 3x3 convolutions pad one pixel after, none before),
    Keras ``he_normal`` convolutions (:func:`keras_he_normal_`) and a dense
    layer initialised N(0, 0.01) with zero bias. Batch norm: momentum 0.1
    in torch's convention (Keras 0.9), epsilon 1e-5.

    Examples
    --------
    >>> import torch
    >>> model = PaperPreActResNet18(10)
    >>> model(torch.zeros(1, 3, 32, 32)).shape, int(torch.count_nonzero(model.linear.bias))  # the bias starts at 0
    (torch.Size([1, 10]), 0)
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__(num_classes, in_channels)
        self.stem = _SameConv2d(in_channels, self.widths[0], 3, 1)
        self.stem_bn = nn.BatchNorm2d(self.widths[0])
        in_planes = self._add_stages(PaperPreActBlock)
        self.bn = nn.BatchNorm2d(in_planes)
        self.linear = nn.Linear(in_planes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                keras_he_normal_(m.weight)
        nn.init.normal_(self.linear.weight, 0.0, 0.01)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.stem_bn(self.stem(x)))
        out = torch.relu(self.bn(self.stages(out)))
        return self.linear(out.mean(dim=(2, 3)))


def build_model(name: str, in_shape: Sequence[int], num_classes: int, **kwargs) -> nn.Module:
    """Build a network by name for inputs of shape ``in_shape``.

    Parameters
    ----------
    name : {"cnn", "mlp", "preact-resnet18", "preact-resnet18-paper"}
        Architecture (case-insensitive; ``_`` and ``-`` are interchangeable).
    in_shape : sequence of int
        Shape of one input without the batch axis: ``(C, H, W)`` for images,
        ``(D,)`` for tabular data (an MLP also accepts images and flattens
        them).
    num_classes : int
        Number of output logits.
    **kwargs
        Passed to the model's constructor (e.g. ``width`` or ``hidden``).

    Returns
    -------
    torch.nn.Module

    Examples
    --------
    >>> build_model("mlp", (2,), 2, hidden=(16,))(__import__("torch").zeros(3, 2)).shape
    torch.Size([3, 2])
    """
    key, in_shape = model_key(name, in_shape)
    if key == "mlp":
        features = 1
        for d in in_shape:
            features *= d
        return MLP(features, num_classes, **kwargs)
    if len(in_shape) != 3:
        raise ValueError(f"model {key!r} needs image inputs (C, H, W), got in_shape {in_shape}")
    c, h, w = in_shape
    if key == "cnn":
        return SmallCNN(c, num_classes, input_size=(h, w), **kwargs)
    if key == "preact-resnet18-paper":
        return PaperPreActResNet18(num_classes, in_channels=c, **kwargs)
    return PreActResNet18(num_classes, in_channels=c, **kwargs)
