"""Option checks and small blocks shared by the classification zoo."""

from __future__ import annotations

from torch import nn

from wconv.nn import ConvFactory


def check_odd_kernel_size(model: str, kernel_size: int) -> int:
    """Return ``kernel_size`` if it can replace a model's 3×3 convs, else raise ``ValueError``.

    Every classification model reads ``kernel_size`` as "the size of the convs that are 3×3 in the
    published architecture" (the denoising study's 3×3 → 5×5 swap); a density needs an odd side.
    """
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int):
        raise ValueError(f"{model}: kernel_size must be an int, got {kernel_size!r}")
    if kernel_size < 3 or kernel_size % 2 == 0:
        raise ValueError(
            f"{model}: kernel_size {kernel_size} is not valid; use an odd size >= 3 (3, 5, 7, ...)"
        )
    return kernel_size


def conv_bn(
    conv: ConvFactory,
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    groups: int = 1,
    activation: type[nn.Module] | None = None,
) -> nn.Sequential:
    """``conv`` (bias-free, 'same' padding for odd kernels) → BatchNorm → optional activation."""
    layers: list[nn.Module] = [
        conv(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels),
    ]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)
