"""Network in Network for CIFAR (Lin, Chen & Yan, ICLR 2014), after the authors' Caffe model.

Paper: https://arxiv.org/abs/1312.4400.  Three mlpconv blocks, each a k×k conv followed by two 1×1
convs (the "micro MLP"), ReLU after every conv including the class layer, no BN:

- 5×5 192 → 1×1 160 → 1×1 96 → max-pool 3/2/1 → dropout 0.5
- 5×5 192 → 1×1 192 → 1×1 192 → avg-pool 3/2/1 → dropout 0.5
- 3×3 192 → 1×1 192 → 1×1 classes → global average pool (the logits)

984,356 parameters for 100 classes.

Weighted NiN (a decision, see docs/models.md): the two 5×5 convs and the 3×3 conv are all
weighted; the 1×1 convs never are.  A 5×5 density has two rings, so the density given to
``create`` reaches the layers through :class:`~wconv.nn.ConvFactory` as:

- a scalar ``d`` or a 3×3 density ``[d]`` (what a study cell gives) reaches every ring: the 3×3
  conv gets ``a = [d, 1, d]`` and the 5×5 convs ``a = [d, d, 1, d, d]`` (the paper reports one
  density for NiN, so this is its reading; the rule is :func:`wconv.nn.weighted.fit_rings`);
- a mapping ``{3: [d1], 5: [d1, d2]}`` sets each size on its own, and ``{3: [d], 5: [1.0, 1.0]}``
  leaves the 5×5 convs standard (the paper's "only 3×3 kernels" reading).

``kernel_size`` sets the block-3 conv (the only 3×3 of the published model); the 5×5 convs stay.
"""

from __future__ import annotations

from torch import Tensor, nn

from wconv.models.classification_common import check_odd_kernel_size
from wconv.models.init import kaiming_init_
from wconv.models.registry import register
from wconv.nn import ConvFactory


def mlpconv(
    conv: ConvFactory, in_channels: int, widths: tuple[int, int, int], kernel_size: int
) -> nn.Sequential:
    """k×k conv then two 1×1 convs, each followed by ReLU (one mlpconv layer of the paper)."""
    layers: list[nn.Module] = []
    channels = in_channels
    for index, width in enumerate(widths):
        size = kernel_size if index == 0 else 1
        layers += [conv(channels, width, size, padding=size // 2), nn.ReLU(inplace=True)]
        channels = width
    return nn.Sequential(*layers)


class NiN(nn.Module):
    """Three mlpconv blocks with pooling and dropout between them, then a global average pool."""

    def __init__(
        self,
        conv: ConvFactory,
        num_classes: int,
        in_channels: int,
        kernel_size: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            mlpconv(conv, in_channels, (192, 160, 96), 5),
            nn.MaxPool2d(3, stride=2, padding=1),
            nn.Dropout(dropout),
            mlpconv(conv, 96, (192, 192, 192), 5),
            nn.AvgPool2d(3, stride=2, padding=1),
            nn.Dropout(dropout),
            mlpconv(conv, 192, (192, 192, num_classes), kernel_size),
        )
        kaiming_init_(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x).mean((2, 3))


@register("classification")
def nin(
    conv: ConvFactory,
    num_classes: int = 100,
    in_channels: int = 3,
    kernel_size: int = 3,
    dropout: float = 0.5,
) -> nn.Module:
    """NiN for 32×32 images (5×5, 5×5, k×k mlpconv blocks): 984,356 parameters at k = 3."""
    check_odd_kernel_size("nin", kernel_size)
    if not 0 <= dropout < 1:
        raise ValueError(f"nin: dropout must be in [0, 1), got {dropout}")
    return NiN(conv, num_classes, in_channels, kernel_size, dropout)
