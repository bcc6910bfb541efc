"""Checks and input padding shared by the restoration (denoising) models DnCNN, NAFNet and CGNet."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

RESTORATION_KERNEL_SIZES: tuple[int, ...] = (3, 5)
"""The kernel sizes of the paper's denoising study (Table 5: the 3×3 and the 5×5 study)."""

PAD_MODES: tuple[str, ...] = ("zeros", "reflect", "replicate")


def check_study_kernel_size(model: str, kernel_size: int) -> int:
    """Return ``kernel_size`` if the study uses it, else raise ``ValueError`` listing valid ones."""
    if isinstance(kernel_size, bool) or kernel_size not in RESTORATION_KERNEL_SIZES:
        raise ValueError(
            f"{model}: kernel_size {kernel_size!r} is not supported; valid kernel sizes: "
            f"{list(RESTORATION_KERNEL_SIZES)} (the paper's 3×3 and 5×5 denoising studies)"
        )
    return kernel_size


def check_positive(model: str, **values: int) -> None:
    """Raise ``ValueError`` naming the first option that is not an integer >= 1."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{model}: {name} must be an integer >= 1, got {value!r}")


def check_pad_mode(model: str, pad_mode: str) -> str:
    if pad_mode not in PAD_MODES:
        raise ValueError(f"{model}: unknown pad_mode {pad_mode!r}; choose one of {list(PAD_MODES)}")
    return pad_mode


def padded_side(side: int, multiple: int, min_side: int) -> int:
    """The smallest side >= ``max(side, min_side)`` that is a multiple of ``multiple``."""
    side = max(side, min_side)
    return -(-side // multiple) * multiple


def pad_input(x: Tensor, multiple: int, min_side: int, mode: str) -> Tensor:
    """Pad the bottom and right of ``x`` (N, C, H, W) to :func:`padded_side` on both axes.

    Encoder-decoder networks halve the resolution once per level, so each side must be a multiple
    of ``2**levels``; CGNet's context cascades also need a minimum side.  Padding only the far edges
    keeps pixel (0, 0) in place, so the caller crops the output back with ``[..., :H, :W]``.
    ``mode`` is ``zeros`` (the official NAFNet/CGNet code), ``reflect`` (needs every pad to be
    smaller than the side it extends) or ``replicate``.
    """
    height, width = x.shape[-2:]
    pad_h = padded_side(height, multiple, min_side) - height
    pad_w = padded_side(width, multiple, min_side) - width
    if pad_h == 0 and pad_w == 0:
        return x
    if mode == "reflect" and (pad_h >= height or pad_w >= width):
        raise ValueError(
            f"reflect padding cannot extend a {height}×{width} input by ({pad_h}, {pad_w}) "
            "pixels (each pad must be smaller than its side); use pad_mode='replicate' or "
            "'zeros', or a larger input"
        )
    return F.pad(x, (0, pad_w, 0, pad_h), mode="constant" if mode == "zeros" else mode)
