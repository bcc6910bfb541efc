"""VGG-16 with batch normalisation, CIFAR head (Simonyan & Zisserman, ICLR 2015, config "D").

Paper: https://arxiv.org/abs/1409.1556.  Thirteen 3×3 conv-BN-ReLU layers in five groups (64, 128,
256, 512, 512 channels), each group closed by a 2×2 max-pool, so a 32×32 image ends as 1×1×512;
BN after every conv (Ioffe & Szegedy 2015) as in torchvision's ``vgg16_bn``, whose convs keep their
bias.  The CIFAR head is a single linear layer 512 → classes (the ImageNet head's two 4096-wide
layers would add about 19 M parameters on a 1×1 map).  14,774,436 parameters for 100 classes.

``kernel_size`` sets all thirteen convs (3 in the paper); ``conv="weighted"`` weights all of them.
"""

from __future__ import annotations

from torch import Tensor, nn

from wconv.models.classification_common import check_odd_kernel_size
from wconv.models.init import kaiming_init_
from wconv.models.registry import register
from wconv.nn import ConvFactory

VGG16_LAYOUT: tuple[tuple[int, int], ...] = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
"""(width, convs) of each group of VGG configuration D."""


class VGG(nn.Module):
    """Groups of conv-BN-ReLU closed by max-pooling, then a linear classifier on the pooled map."""

    def __init__(
        self,
        conv: ConvFactory,
        layout: tuple[tuple[int, int], ...],
        num_classes: int,
        in_channels: int,
        kernel_size: int,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for width, convs in layout:
            for _ in range(convs):
                layers += [
                    conv(channels, width, kernel_size, padding=kernel_size // 2),
                    nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True),
                ]
                channels = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, num_classes)
        kaiming_init_(self)

    def forward(self, x: Tensor) -> Tensor:
        # Mean over what is left of the map: 1×1 for 32×32 inputs, and larger inputs still work.
        return self.head(self.features(x).mean((2, 3)))


@register("classification")
def vgg16_bn(
    conv: ConvFactory, num_classes: int = 100, in_channels: int = 3, kernel_size: int = 3
) -> nn.Module:
    """VGG-16-BN with a single linear head for 32×32 images: 14,774,436 parameters."""
    check_odd_kernel_size("vgg16_bn", kernel_size)
    return VGG(conv, VGG16_LAYOUT, num_classes, in_channels, kernel_size)
