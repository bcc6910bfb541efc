"""The position signal that 'same' padding leaks into stacked convolutions (CoordGate paper,
arXiv 2401.04680, Fig. 1).

Every convolution here is the 3×3 uniform kernel (all taps 1/9) with 'same' padding, so a constant
input stays exactly constant wherever the padding is out of reach; any structure in the output is
information about the distance to the border, available to every CNN that pads with zeros.

* (a) a uniform ``size × size`` input convolved 5 times: the map after every convolution;
* (b, c) two parameter-free U-Nets with 2 and 4 down/up steps: three convolutions before every
  resolution change (2× average pooling down, nearest 2× up) and after every merge, skips merged
  as the mean of the upsampled and skip maps; the bottleneck of the shallower net gets 12 extra
  convolutions so both apply the same number of convolutions (``3·(2d + 1)`` plus the extras,
  i.e. 27 each for d = 2 and d = 4).

``padding_mode`` other than ``zeros`` (``reflect``, ``replicate``, ``circular``) shows that the
signal vanishes when the border carries no zeros.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from wconv.io import atomic_open, write_json
from wconv.vocabulary import PADDING_MODES


def uniform_conv(x: Tensor, padding_mode: str = "zeros") -> Tensor:
    """One 3×3 convolution with all taps 1/9 and 'same' padding of the given mode."""
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"unknown padding_mode {padding_mode!r}; choose one of {PADDING_MODES}")
    mode = "constant" if padding_mode == "zeros" else padding_mode
    weight = torch.full((1, 1, 3, 3), 1.0 / 9.0, dtype=x.dtype)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode=mode), weight)


def stacked(size: int, convolutions: int, padding_mode: str = "zeros") -> np.ndarray:
    """Fig. 1a: maps ``(convolutions, size, size)`` after each convolution of a uniform input."""
    x = torch.ones(1, 1, size, size, dtype=torch.float64)
    maps = []
    for _ in range(convolutions):
        x = uniform_conv(x, padding_mode)
        maps.append(x[0, 0].numpy().copy())
    return np.stack(maps)


def uniform_unet(
    size: int,
    steps: int,
    convs_per_stage: int = 3,
    extra_middle: int = 0,
    padding_mode: str = "zeros",
) -> tuple[np.ndarray, int]:
    """Fig. 1b/c: output of the parameter-free U-Net with ``steps`` down/up steps on a uniform
    input, and the number of convolutions it applied."""
    if size % 2**steps:
        raise ValueError(f"size {size} must be a multiple of 2**steps = {2**steps}")
    count = 0

    def convs(x: Tensor, times: int) -> Tensor:
        nonlocal count
        for _ in range(times):
            x = uniform_conv(x, padding_mode)
            count += 1
        return x

    x = torch.ones(1, 1, size, size, dtype=torch.float64)
    skips = []
    for _ in range(steps):
        x = convs(x, convs_per_stage)
        skips.append(x)
        x = F.avg_pool2d(x, 2)
    x = convs(x, convs_per_stage + extra_middle)
    for _ in range(steps):
        x = (F.interpolate(x, scale_factor=2, mode="nearest") + skips.pop()) / 2
        x = convs(x, convs_per_stage)
    return x[0, 0].numpy().copy(), count


def run_padding_signal(
    out_dir: Path, *, size: int = 128, convolutions: int = 5, padding_mode: str = "zeros"
) -> dict[str, Any]:
    """Compute Fig. 1's three panels; write ``out_dir/padding_signal.npz`` (arrays ``stacked``
    (5, size, size), ``unet2``, ``unet4``) and a ``results.json`` summary (convolution
    counts and each map's deviation from 1), atomically.  Returns the summary."""
    if size < 16 or size % 16:
        raise ValueError(f"size must be a multiple of 16 (>= 16) for the 4-step U-Net, got {size}")
    maps = stacked(size, convolutions, padding_mode)
    shallow, shallow_count = uniform_unet(size, 2, extra_middle=12, padding_mode=padding_mode)
    deep, deep_count = uniform_unet(size, 4, padding_mode=padding_mode)
    summary = {
        "size": size,
        "padding_mode": padding_mode,
        "convolutions": {"stacked": convolutions, "unet2": shallow_count, "unet4": deep_count},
        "max_deviation": {
            "stacked": float(np.abs(maps[-1] - 1).max()),
            "unet2": float(np.abs(shallow - 1).max()),
            "unet4": float(np.abs(deep - 1).max()),
        },
        "affected_fraction": {  # pixels that differ from 1 by more than 1 %
            "stacked": float((np.abs(maps[-1] - 1) > 0.01).mean()),
            "unet2": float((np.abs(shallow - 1) > 0.01).mean()),
            "unet4": float((np.abs(deep - 1) > 0.01).mean()),
        },
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_open(out_dir / "padding_signal.npz", "wb") as handle:
        np.savez(handle, stacked=maps, unet2=shallow, unet4=deep)
    write_json(out_dir / "results.json", summary)
    return summary
