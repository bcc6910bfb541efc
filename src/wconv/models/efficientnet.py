"""EfficientNet-B0 for 32×32 images (Tan & Le, ICML 2019).

Paper: https://arxiv.org/abs/1905.11946.  Stem 3×3 conv (32) → seven stages of MBConv blocks →
1×1 conv to 1280 → global average pool → dropout 0.2 → linear.  An MBConv block (MobileNetV2's
inverted residual, Sandler et al. 2018) is: 1×1 expansion (×e, skipped when e = 1) → depthwise
k×k → squeeze-and-excitation (Hu et al. 2018; squeeze to a quarter of the block's *input* width,
SiLU, sigmoid gate) → 1×1 projection, with BN after every conv, SiLU after the first two, and an
identity shortcut (with stochastic depth, rate rising linearly to 0.2) when the shape is kept.

The stages are B0's (expansion, kernel, stride, width, repeats): (1, 3, 1, 16, 1),
(6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3), (6, 5, 2, 192, 4),
(6, 3, 1, 320, 1).  CIFAR variant: the stem has stride 1 instead of 2 (a 32×32 image would
otherwise end as 1×1), so the last stage sees 2×2.  Strides change no weight, so the parameter count
equals torchvision's ``efficientnet_b0(num_classes=100)``: 4,135,648.

``conv="weighted"`` weights the stem and all sixteen depthwise convs (3×3 and 5×5 — depthwise convs
are odd k×k convs like any other); a scalar density or a 3×3 density ``[d]`` reaches both rings
of the 5×5s as ``[d, d]`` (:func:`wconv.nn.weighted.fit_rings`), a mapping ``{3: ..., 5: ...}``
sets them apart.  ``kernel_size`` sets the convs that are 3×3 in B0
(stem and the depthwise convs of stages 1, 2, 4 and 7); the 5×5 ones stay.

The paper reports that EfficientNet did not converge under its shared recipe (SGD lr 0.1, cosine
schedule) with either conv kind; it is kept so that this can be reproduced and reported.
"""

from __future__ import annotations

from torch import Tensor, nn

from wconv.models.classification_common import check_odd_kernel_size, conv_bn
from wconv.models.init import kaiming_init_
from wconv.models.registry import register
from wconv.nn import ConvFactory

B0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
"""(expansion, kernel, stride, output width, repeats) of each EfficientNet-B0 stage."""


def drop_path(x: Tensor, rate: float, training: bool) -> Tensor:
    """Stochastic depth, per sample ("row"): ``x * m / (1 - rate)``, ``m ~ Bernoulli(1 - rate)``
    per sample; the identity in eval mode. torchvision's ``stochastic_depth`` does the same, but
    importing ``torchvision.ops`` costs every job of the study about 2 s (detection models,
    torch._dynamo)."""
    if not training or rate == 0.0:
        return x
    keep = 1.0 - rate
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * mask.div_(keep) if keep > 0 else x * mask


class SqueezeExcitation(nn.Module):
    """``x · σ(W₂ SiLU(W₁ mean(x)))`` with 1×1 convs (a per-channel gate from global context)."""

    def __init__(self, conv: ConvFactory, channels: int, squeezed: int) -> None:
        super().__init__()
        self.reduce = conv(channels, squeezed, 1)
        self.act = nn.SiLU(inplace=True)
        self.expand = conv(squeezed, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        scale = self.expand(self.act(self.reduce(x.mean((2, 3), keepdim=True))))
        return x * scale.sigmoid()


class MBConv(nn.Module):
    """Inverted residual block: [1×1 expand] → depthwise k×k → SE → 1×1 project (+ shortcut)."""

    def __init__(
        self,
        conv: ConvFactory,
        in_channels: int,
        out_channels: int,
        expansion: int,
        kernel_size: int,
        stride: int,
        drop_rate: float,
    ) -> None:
        super().__init__()
        hidden = in_channels * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(conv_bn(conv, in_channels, hidden, 1, activation=nn.SiLU))
        layers += [
            conv_bn(conv, hidden, hidden, kernel_size, stride, groups=hidden, activation=nn.SiLU),
            SqueezeExcitation(conv, hidden, max(1, in_channels // 4)),
            conv_bn(conv, hidden, out_channels, 1),
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and in_channels == out_channels
        self.drop_rate = drop_rate

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        if self.residual:
            out = drop_path(out, self.drop_rate, self.training) + x
        return out


class EfficientNet(nn.Module):
    """Stem → MBConv stages → 1×1 head conv → pool → dropout → linear."""

    def __init__(
        self,
        conv: ConvFactory,
        num_classes: int,
        in_channels: int,
        kernel_size: int,
        dropout: float,
        stochastic_depth_rate: float,
    ) -> None:
        super().__init__()
        # Only the convs that are 3×3 in B0 follow kernel_size (see the module docstring).
        resize = {3: kernel_size}
        self.stem = conv_bn(conv, in_channels, 32, kernel_size, activation=nn.SiLU)
        total = sum(stage[-1] for stage in B0_STAGES)
        blocks: list[nn.Module] = []
        channels = 32
        for expansion, kernel, stride, width, repeats in B0_STAGES:
            for index in range(repeats):
                rate = stochastic_depth_rate * len(blocks) / total
                blocks.append(
                    MBConv(
                        conv,
                        channels,
                        width,
                        expansion,
                        resize.get(kernel, kernel),
                        stride if index == 0 else 1,
                        rate,
                    )
                )
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.head_conv = conv_bn(conv, channels, 1280, 1, activation=nn.SiLU)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(1280, num_classes)
        kaiming_init_(self)

    def forward(self, x: Tensor) -> Tensor:
        features = self.head_conv(self.blocks(self.stem(x)))
        return self.head(self.dropout(features.mean((2, 3))))


@register("classification")
def efficientnet_b0(
    conv: ConvFactory,
    num_classes: int = 100,
    in_channels: int = 3,
    kernel_size: int = 3,
    dropout: float = 0.2,
    stochastic_depth_rate: float = 0.2,
) -> nn.Module:
    """EfficientNet-B0 with a stride-1 stem for 32×32 images: 4,135,648 parameters."""
    check_odd_kernel_size("efficientnet_b0", kernel_size)
    for option, value in (("dropout", dropout), ("stochastic_depth_rate", stochastic_depth_rate)):
        if not 0 <= value < 1:
            raise ValueError(f"efficientnet_b0: {option} must be in [0, 1), got {value}")
    return EfficientNet(conv, num_classes, in_channels, kernel_size, dropout, stochastic_depth_rate)
