"""DnCNN: residual learning of a deep CNN for Gaussian denoising.

Zhang, Zuo, Chen, Meng, Zhang, "Beyond a Gaussian Denoiser: Residual Learning of Deep CNN for
Image Denoising", IEEE TIP 26(7), 2017.  Official code: https://github.com/cszn/DnCNN.

``kernel_size`` (3 or 5) sets all 17 convs: the paper's 5×5 study replaces every one of them.
Parameter count: 556,096 (grey) / 558,400 (RGB) for 3×3, exactly the commonly quoted figures, which
count trainable parameters (BN γ/β included, BN running statistics excluded) with a bias on the
first conv only.  Initialisation: Kaiming-normal (fan_out) for every conv, as in the weighted
convolution paper, identical for standard and weighted twins (the official code uses orthogonal
init), except the noise head, which starts at zero so the untrained network is the identity
(``identity_init``, see :func:`wconv.models.init.identity_head_`).  Any input size works (fully
convolutional, 'same' zero padding).
"""

from __future__ import annotations

from torch import Tensor, nn

from wconv.models.init import identity_head_, kaiming_init_
from wconv.models.registry import register
from wconv.models.restoration_common import check_positive, check_study_kernel_size
from wconv.nn import ConvFactory


class DnCNN(nn.Module):
    """``depth`` k×k convs: conv+ReLU, (depth − 2) × (conv+BN+ReLU), conv; returns ``x − noise``.

    The body predicts the noise ``R(y)`` of the noisy image ``y`` (residual learning) and the
    network returns the estimate ``y − R(y)``.  As in the official PyTorch model, only the first
    conv has a bias (the others are followed by BN or are the noise head) and BN uses eps 1e-4 and
    momentum 0.95 (running statistics follow the latest batches: the official code notes that
    the noise target keeps batch statistics stable).
    """

    def __init__(
        self,
        conv: ConvFactory,
        in_channels: int,
        kernel_size: int,
        depth: int,
        width: int,
        identity_init: bool = True,
    ) -> None:
        super().__init__()
        pad = kernel_size // 2
        layers: list[nn.Module] = [
            conv(in_channels, width, kernel_size, padding=pad, bias=True),
            nn.ReLU(inplace=True),
        ]
        for _ in range(depth - 2):
            layers += [
                conv(width, width, kernel_size, padding=pad, bias=False),
                nn.BatchNorm2d(width, eps=1e-4, momentum=0.95),
                nn.ReLU(inplace=True),
            ]
        layers.append(conv(width, in_channels, kernel_size, padding=pad, bias=False))
        self.body = nn.Sequential(*layers)
        kaiming_init_(self)
        if identity_init:
            identity_head_(self.body[-1])

    def forward(self, x: Tensor) -> Tensor:
        return x - self.body(x)


@register("restoration")
def dncnn(
    conv: ConvFactory,
    in_channels: int = 3,
    kernel_size: int = 3,
    depth: int = 17,
    width: int = 64,
    identity_init: bool = True,
) -> nn.Module:
    """DnCNN-S (17 layers, 64 channels, BN); ``kernel_size`` 3 or 5 changes all 17 convs.

    ``identity_init`` zeroes the noise head so the network starts as the identity (see
    :func:`~wconv.models.init.identity_head_`); ``False`` gives plain Kaiming everywhere.
    """
    check_study_kernel_size("dncnn", kernel_size)
    check_positive("dncnn", in_channels=in_channels, width=width)
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 2:
        raise ValueError(
            f"dncnn: depth must be an integer >= 2 (first and last conv), got {depth!r}"
        )
    return DnCNN(conv, in_channels, kernel_size, depth, width, identity_init)
