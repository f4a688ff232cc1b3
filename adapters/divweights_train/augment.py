"""Batched image augmentation and normalisation in torch.

Both functions work on whole mini-batches ``(N, C, H, W)`` with no per-example
Python loop, on whatever device the batch lives on.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["normalize", "random_crop_flip"]


def _check_images(x: torch.Tensor, what: str = "x") -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{what} must have shape (N, C, H, W), got {tuple(x.shape)}")


def random_crop_flip(
    x: torch.Tensor,
    pad: int = 4,
    *,
    generator: torch.Generator | None,
    flip: bool = True,
) -> torch.Tensor:
    """Random crop after zero padding, then random horizontal flip, per image.

    Each image is padded with ``pad`` zeros on every side and a window of the
    original size is cut at a uniformly random offset in ``[0, 2 * pad]`` along
    each axis; with probability 1/2 the result is mirrored left-right. This is
    the standard CIFAR augmentation ("pad 4, random crop 32, flip").

    Parameters
    ----------
    x : torch.Tensor
        Images ``(N, C, H, W)``; apply before :func:`normalize` so the padding
        is black.
    pad : int, default 4
        Padding (and hence maximal shift) in pixels; ``0`` disables cropping.
    generator : torch.Generator or None
        Source of randomness (pass ``None`` explicitly to use torch's global
        generator). It may live on the CPU or on ``x``'s device.
    flip : bool, default True
        Whether to apply random horizontal flips.

    Returns
    -------
    torch.Tensor
        Augmented images with the shape, dtype and device of ``x``.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.rand(8, 3, 32, 32)
    >>> random_crop_flip(x, 4, generator=g).shape
    torch.Size([8, 3, 32, 32])
    """
    _check_images(x)
    pad = int(pad)
    if pad < 0:
        raise ValueError(f"pad must be non-negative, got {pad}")
    n, _, h, w = x.shape
    gen_device = generator.device if generator is not None else torch.device("cpu")
    if pad > 0:
        offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=generator, device=gen_device)
    else:
        offsets = torch.zeros((2, n), dtype=torch.long, device=gen_device)
    if flip:
        flips = torch.rand(n, generator=generator, device=gen_device) < 0.5
    else:
        flips = torch.zeros(n, dtype=torch.bool, device=gen_device)
    offsets = offsets.to(x.device)
    flips = flips.to(x.device)

    # Source coordinates in the unpadded image; out-of-range ones read padding.
    rows = torch.arange(h, device=x.device) + (offsets[0, :, None] - pad)  # (N, H)
    cols = torch.arange(w, device=x.device) + (offsets[1, :, None] - pad)  # (N, W)
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    row_ok = (rows >= 0) & (rows < h)
    col_ok = (cols >= 0) & (cols < w)
    rows = rows.clamp(0, h - 1)
    cols = cols.clamp(0, w - 1)

    # Two gathers: first pick rows, then columns (no padded copy of the batch).
    out = torch.gather(x, 2, rows[:, None, :, None].expand(n, x.shape[1], h, w))
    out = torch.gather(out, 3, cols[:, None, None, :].expand(n, x.shape[1], h, w))
    if pad > 0:
        valid = row_ok[:, None, :, None] & col_ok[:, None, None, :]
        out = out * valid.to(out.dtype) if out.is_floating_point() else out.masked_fill(~valid, 0)
    return out


def normalize(
    x: torch.Tensor,
    mean: Sequence[float] | torch.Tensor,
    std: Sequence[float] | torch.Tensor,
) -> torch.Tensor:
    """Subtract ``mean`` and divide by ``std`` per channel (or per feature).

    Parameters
    ----------
    x : torch.Tensor
        Images ``(N, C, H, W)`` or features ``(N, D)``.
    mean, std : sequence of float or torch.Tensor
        One value per channel ``C`` (or feature ``D``); a single value is
        broadcast to all of them. Empty sequences return ``x`` unchanged.

    Returns
    -------
    torch.Tensor
        Normalised tensor, same shape as ``x``.

    Examples
    --------
    >>> import torch
    >>> x = torch.full((1, 2, 1, 1), 0.5)
    >>> normalize(x, (0.5, 0.25), (0.5, 0.25)).flatten().tolist()
    [0.0, 1.0]
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim not in (2, 4):
        raise ValueError(f"x must have shape (N, C, H, W) or (N, D), got {tuple(x.shape)}")
    dtype = x.dtype if x.is_floating_point() else torch.float32
    m = torch.as_tensor(mean, dtype=dtype, device=x.device).reshape(-1)
    s = torch.as_tensor(std, dtype=dtype, device=x.device).reshape(-1)
    if m.numel() == 0 and s.numel() == 0:
        return x
    channels = x.shape[1]
    for name, t in (("mean", m), ("std", s)):
        if t.numel() not in (1, channels):
            raise ValueError(f"{name} has {t.numel()} entries but x has {channels} channels/features")
    if torch.any(s <= 0):
        raise ValueError("std entries must be positive")
    shape = (1, -1, 1, 1) if x.ndim == 4 else (1, -1)
    return (x.to(dtype) - m.reshape(shape)) / s.reshape(shape)
