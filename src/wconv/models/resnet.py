"""CIFAR ResNet (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, §4.2).

Paper: https://arxiv.org/abs/1512.03385.  A 3×3 stem (16 channels) and three stages of ``n`` basic
blocks at widths 16/32/64 (stride 1/2/2), global average pooling and one linear layer: depth
``6n + 2`` (``n = 9`` gives ResNet-56).  Shortcuts are the paper's option A: identity, or — when a
block halves the resolution and doubles the width — stride-2 subsampling padded with zero channels,
so shortcuts add no parameters (858,868 for 100 classes).

``kernel_size`` sets every k×k conv (stem and blocks, 3 in the paper); ``conv="weighted"`` weights
all of them.  There are no 1×1 convs in option A.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from wconv.models.classification_common import check_odd_kernel_size, conv_bn
from wconv.models.init import kaiming_init_
from wconv.models.registry import register
from wconv.nn import ConvFactory


class BasicBlock(nn.Module):
    """``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))`` with an option-A shortcut."""

    def __init__(
        self, conv: ConvFactory, in_channels: int, out_channels: int, stride: int, kernel_size: int
    ) -> None:
        super().__init__()
        self.conv1 = conv_bn(
            conv, in_channels, out_channels, kernel_size, stride, activation=nn.ReLU
        )
        self.conv2 = conv_bn(conv, out_channels, out_channels, kernel_size)
        self.stride = stride
        self.pad_channels = out_channels - in_channels

    def shortcut(self, x: Tensor) -> Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.pad_channels:
            # Option A: the new channels are zeros, split evenly before and after the old ones.
            half = self.pad_channels // 2
            x = F.pad(x, (0, 0, 0, 0, half, self.pad_channels - half))
        return x

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class CifarResNet(nn.Module):
    """Stem → 3 stages × ``blocks`` basic blocks (16/32/64 wide) → global average pool → linear."""

    def __init__(
        self,
        conv: ConvFactory,
        blocks: int,
        num_classes: int,
        in_channels: int,
        kernel_size: int,
    ) -> None:
        super().__init__()
        self.stem = conv_bn(conv, in_channels, 16, kernel_size, activation=nn.ReLU)
        stages: list[nn.Module] = []
        channels = 16
        for index, width in enumerate((16, 32, 64)):
            layers = []
            for block in range(blocks):
                stride = 2 if index > 0 and block == 0 else 1
                layers.append(BasicBlock(conv, channels, width, stride, kernel_size))
                channels = width
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(channels, num_classes)
        kaiming_init_(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.stages(self.stem(x)).mean((2, 3)))


@register("classification")
def resnet56(
    conv: ConvFactory, num_classes: int = 100, in_channels: int = 3, kernel_size: int = 3
) -> nn.Module:
    """ResNet-56 for 32×32 images (9 blocks per stage, option-A shortcuts): 858,868 parameters."""
    check_odd_kernel_size("resnet56", kernel_size)
    return CifarResNet(conv, 9, num_classes, in_channels, kernel_size)
