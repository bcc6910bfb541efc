"""Small fast networks for the demo study and the tests (not part of the paper)."""

from __future__ import annotations

from torch import Tensor, nn

from wconv.models.init import kaiming_init_
from wconv.models.registry import register
from wconv.nn import ConvFactory


class SmallCNN(nn.Module):
    """Three conv-BN-ReLU stages (widths w, 2w, 4w; max-pool between), global pool, linear head."""

    def __init__(
        self,
        conv: ConvFactory,
        num_classes: int,
        in_channels: int,
        width: int,
        kernel_size: int,
        input_pool: int = 1,
    ) -> None:
        super().__init__()
        # The embedded digits are 8x8 images scaled to 32x32: averaging 2x2 first loses nothing
        # they hold and makes every conv 4x cheaper, which is what lets the demo run many seeds.
        layers: list[nn.Module] = [nn.AvgPool2d(input_pool)] if input_pool > 1 else []
        channels = in_channels
        for stage, out in enumerate((width, 2 * width, 4 * width)):
            if stage:
                layers.append(nn.MaxPool2d(2))
            layers += [
                conv(channels, out, kernel_size, padding=kernel_size // 2, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
            ]
            channels = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, num_classes)
        kaiming_init_(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).mean((2, 3)))


@register("classification")
def small_cnn(
    conv: ConvFactory,
    num_classes: int = 10,
    in_channels: int = 3,
    width: int = 16,
    kernel_size: int = 3,
    input_pool: int = 1,
) -> nn.Module:
    """A ~25k-parameter CNN (width 16) that trains in seconds on CPU; ``input_pool`` > 1
    average-pools the input by that factor before the first conv."""
    return SmallCNN(conv, num_classes, in_channels, width, kernel_size, input_pool)
