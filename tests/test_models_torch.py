"""Tests for divweights_train.models_torch and divweights_train.augment."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from divweights_train.augment import normalize, random_crop_flip
from divweights_train.models_torch import (
    MLP,
    PreActResNet18,
    SmallCNN,
    build_model,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- #
# Augmentation
# --------------------------------------------------------------------------- #
def test_random_crop_flip_keeps_shape_dtype():
    x = torch.rand(6, 3, 8, 8, generator=_gen())
    out = random_crop_flip(x, 2, generator=_gen(1))
    assert out.shape == x.shape and out.dtype == x.dtype


def test_random_crop_flip_is_deterministic_for_seeded_generator():
    x = torch.rand(16, 3, 8, 8, generator=_gen())
    a = random_crop_flip(x, 2, generator=_gen(5))
    b = random_crop_flip(x, 2, generator=_gen(5))
    c = random_crop_flip(x, 2, generator=_gen(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_flip_mirrors_a_known_image():
    img = torch.arange(12.0).reshape(1, 1, 3, 4)
    batch = img.expand(64, 1, 3, 4).contiguous()
    out = random_crop_flip(batch, 0, generator=_gen())
    mirrored = torch.tensor([[3.0, 2, 1, 0], [7, 6, 5, 4], [11, 10, 9, 8]])
    is_flipped = torch.tensor([torch.equal(o[0], mirrored) for o in out])
    is_same = torch.tensor([torch.equal(o[0], img[0, 0]) for o in out])
    assert bool((is_flipped | is_same).all())
    assert 0 < int(is_flipped.sum()) < 64


def test_flip_false_and_no_pad_is_identity():
    x = torch.rand(4, 2, 5, 5, generator=_gen())
    assert torch.equal(random_crop_flip(x, 0, generator=_gen(), flip=False), x)


def test_crop_shifts_content_with_zero_padding():
    # A single bright pixel must move by the crop offset (at most `pad` in each
    # direction) and every output is either that shifted pixel or all zeros
    # when it was shifted out of view (not possible here: pixel in the middle).
    pad = 2
    img = torch.zeros(1, 1, 7, 7)
    img[0, 0, 3, 3] = 1.0
    out = random_crop_flip(img.expand(200, 1, 7, 7).contiguous(), pad, generator=_gen(2), flip=False)
    assert torch.all(out.sum(dim=(1, 2, 3)) == 1.0)
    pos = out.reshape(200, -1).argmax(1)
    rows, cols = pos // 7, pos % 7
    assert int((rows - 3).abs().max()) <= pad and int((cols - 3).abs().max()) <= pad
    shifts = set(zip((rows - 3).tolist(), (cols - 3).tolist()))
    assert len(shifts) == (2 * pad + 1) ** 2  # every offset occurs with 200 draws


def test_crop_brings_in_zero_padding_at_the_border():
    x = torch.ones(100, 1, 6, 6)
    out = random_crop_flip(x, 3, generator=_gen(3), flip=False)
    zero_fraction = (out == 0).float().mean(dim=(1, 2, 3))
    # Content is only ones, so zeros come from the padding; offset 0 rows/cols
    # keeps the image intact, any other offset reveals some padding.
    assert bool((zero_fraction > 0).any()) and bool((zero_fraction == 0).any())
    assert torch.all((out == 0) | (out == 1))


def test_random_crop_flip_rejects_non_images():
    with pytest.raises(ValueError, match="N, C, H, W"):
        random_crop_flip(torch.zeros(3, 4), 2, generator=_gen())


def test_normalize_per_channel():
    x = torch.ones(2, 3, 2, 2)
    out = normalize(x, (0.5, 1.0, 0.0), (0.5, 1.0, 2.0))
    assert torch.allclose(out[:, 0], torch.ones(2, 2, 2))
    assert torch.allclose(out[:, 1], torch.zeros(2, 2, 2))
    assert torch.allclose(out[:, 2], torch.full((2, 2, 2), 0.5))


def test_normalize_tabular_and_scalar_broadcast():
    x = torch.tensor([[1.0, 3.0]])
    assert normalize(x, (1.0,), (2.0,)).tolist() == [[0.0, 1.0]]


def test_normalize_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match="channels"):
        normalize(torch.ones(1, 3, 2, 2), (0.1, 0.2), (1.0, 1.0))


# --------------------------------------------------------------------------- #
# Models
# --------------------------------------------------------------------------- #
def _backward_works(model, x, num_classes):
    logits = model(x)
    assert logits.shape == (x.shape[0], num_classes)
    loss = torch.nn.functional.cross_entropy(logits, torch.zeros(x.shape[0], dtype=torch.long))
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    return all(g is not None and torch.isfinite(g).all() for g in grads)


def test_small_cnn_forward_backward():
    torch.manual_seed(0)
    assert _backward_works(SmallCNN(1, 10, width=8), torch.rand(4, 1, 28, 28), 10)


def test_small_cnn_other_input_size():
    model = SmallCNN(3, 5, width=4, input_size=(32, 16))
    assert model(torch.rand(2, 3, 32, 16)).shape == (2, 5)


def test_mlp_forward_backward():
    torch.manual_seed(0)
    assert _backward_works(MLP(2, 2, hidden=(16, 16)), torch.rand(8, 2), 2)


def test_mlp_without_hidden_layers_is_linear():
    model = MLP(3, 4, hidden=())
    assert sum(isinstance(m, torch.nn.Linear) for m in model.modules()) == 1


def test_preact_resnet18_forward_backward():
    torch.manual_seed(0)
    model = PreActResNet18(num_classes=10)
    assert _backward_works(model, torch.rand(2, 3, 32, 32), 10)


def test_preact_resnet18_architecture():
    model = PreActResNet18(num_classes=100, in_channels=3)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) == 1 + 2 * 8  # stem + two 3x3 convs per block, 8 blocks
    assert [s[-1].conv2.out_channels for s in model.stages] == [64, 128, 256, 512]
    assert model.linear.out_features == 100
    n_params = sum(p.numel() for p in model.parameters())
    assert 11_000_000 < n_params < 11_300_000


@pytest.mark.parametrize(
    ("name", "in_shape", "cls"),
    [
        ("cnn", (1, 28, 28), SmallCNN),
        ("mlp", (2,), MLP),
        ("preact-resnet18", (3, 32, 32), PreActResNet18),
        ("PreAct_ResNet18", (3, 32, 32), PreActResNet18),
    ],
)
def test_build_model_by_name(name, in_shape, cls):
    assert isinstance(build_model(name, in_shape, 10), cls)


def test_build_model_mlp_flattens_images():
    model = build_model("mlp", (1, 8, 8), 10, hidden=(8,))
    assert model(torch.rand(3, 1, 8, 8)).shape == (3, 10)


def test_build_model_cnn_on_digits_size():
    model = build_model("cnn", (1, 8, 8), 10, width=4)
    assert model(torch.rand(3, 1, 8, 8)).shape == (3, 10)


def test_build_model_rejects_unknown_name():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("vgg", (3, 32, 32), 10)


def test_build_model_rejects_tabular_for_cnn():
    with pytest.raises(ValueError, match="C, H, W"):
        build_model("cnn", (2,), 2)
