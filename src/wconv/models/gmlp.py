"""gMLP for 32×32 images (Liu, Dai, So & Le, "Pay Attention to MLPs", NeurIPS 2021).

Paper: https://arxiv.org/abs/2105.08050.  The image is cut into p×p patches (a stride-p conv) and
each token goes through ``depth`` blocks::

    z = GELU(LayerNorm(x) W_in)             # d → d_ffn = ratio · d
    u, v = split(z)                          # two halves of d_ffn / 2 channels
    x = x + (u ⊙ (W_tok LayerNorm(v) + b)) W_out   # spatial gating unit, n×n token mixing

with ``W_tok`` near zero and ``b = 1`` at initialisation so every block starts close to a plain
MLP.  Head: LayerNorm → mean over tokens → linear.

Where the weighted conv goes (a decision, see docs/models.md): gMLP has no odd spatial conv — its
only conv is the p×p, stride-p patch embedding, which has even sides for p = 4 and whose "rings"
would be patch borders, not a neighbourhood.  So both conv kinds get the same small stem in front
of the patch embedding: a k×k conv (3 → ``stem_width``, stride 1) → BN → GELU.  The stem is the one
weighted layer of ``conv="weighted"``; it exists in the standard twin too, so both have the same
parameters and initial weights.  With ``stem_width = 16`` it adds 27,088 parameters
(4,652,596 in all for 100 classes against 4,625,508 for the plain gMLP); ``stem_width=0`` builds the
plain gMLP, which has no weighted layer.  ``kernel_size`` sets the stem conv (3 by default).
An odd ``patch_size`` would make the patch embedding an odd conv, which ``conv="weighted"`` weights
too, like every odd conv > 1 of the zoo.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from wconv.models.classification_common import check_odd_kernel_size, conv_bn
from wconv.models.init import kaiming_init_
from wconv.models.registry import register
from wconv.nn import ConvFactory


class SpatialGatingUnit(nn.Module):
    """``u ⊙ (W LayerNorm(v) + b)`` where ``W`` (n×n) mixes tokens; W ≈ 0 and b = 1 at init."""

    def __init__(self, channels: int, tokens: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels // 2)
        self.token_mix = nn.Linear(tokens, tokens)
        # Near-zero W and unit bias make the gate ≈ 1, so training starts from an MLP (paper §2.1).
        bound = 1e-3 / tokens
        nn.init.uniform_(self.token_mix.weight, -bound, bound)
        nn.init.ones_(self.token_mix.bias)

    def forward(self, x: Tensor) -> Tensor:
        u, v = x.chunk(2, dim=-1)
        v = self.token_mix(self.norm(v).transpose(1, 2)).transpose(1, 2)
        return u * v


class GMLPBlock(nn.Module):
    """Pre-norm residual block: LayerNorm → Linear d→d_ffn → GELU → SGU → Linear d_ffn/2→d."""

    def __init__(self, dim: int, ffn: int, tokens: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.proj_in = nn.Linear(dim, ffn)
        self.act = nn.GELU()
        self.sgu = SpatialGatingUnit(ffn, tokens)
        self.proj_out = nn.Linear(ffn // 2, dim)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.proj_out(self.sgu(self.act(self.proj_in(self.norm(x)))))


class GMLP(nn.Module):
    """Optional conv stem → patch embedding → gMLP blocks → LayerNorm → token mean → linear."""

    def __init__(
        self,
        conv: ConvFactory,
        num_classes: int,
        in_channels: int,
        image_size: int,
        patch_size: int,
        dim: int,
        depth: int,
        ratio: int,
        stem_width: int,
        kernel_size: int,
    ) -> None:
        super().__init__()
        self.stem = (
            conv_bn(conv, in_channels, stem_width, kernel_size, activation=nn.GELU)
            if stem_width
            else nn.Identity()
        )
        self.patch_embed = conv(
            stem_width or in_channels, dim, patch_size, stride=patch_size, bias=True
        )
        self.image_size = image_size
        tokens = (image_size // patch_size) ** 2
        self.blocks = nn.Sequential(*(GMLPBlock(dim, dim * ratio, tokens) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        kaiming_init_(self)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"gmlp: the token-mixing layers were built for {self.image_size}×{self.image_size} "
                f"images, got {tuple(x.shape[-2:])}; build with image_size={x.shape[-1]}"
            )
        tokens = torch.flatten(self.patch_embed(self.stem(x)), 2).transpose(1, 2)
        return self.head(self.norm(self.blocks(tokens)).mean(1))


@register("classification")
def gmlp(
    conv: ConvFactory,
    num_classes: int = 100,
    in_channels: int = 3,
    kernel_size: int = 3,
    image_size: int = 32,
    patch_size: int = 4,
    dim: int = 128,
    depth: int = 30,
    ratio: int = 6,
    stem_width: int = 16,
) -> nn.Module:
    """gMLP (patch 4, width 128, 30 blocks, ratio 6) after a k×k conv stem: 4,652,596 params."""
    check_odd_kernel_size("gmlp", kernel_size)
    if image_size % patch_size:
        raise ValueError(
            f"gmlp: image_size {image_size} is not a multiple of patch_size {patch_size}"
        )
    if (dim * ratio) % 2:
        raise ValueError(f"gmlp: dim·ratio = {dim * ratio} must be even (the SGU splits it)")
    if stem_width < 0:
        raise ValueError(f"gmlp: stem_width must be >= 0 (0 = no conv stem), got {stem_width}")
    return GMLP(
        conv,
        num_classes,
        in_channels,
        image_size,
        patch_size,
        dim,
        depth,
        ratio,
        stem_width,
        kernel_size,
    )
