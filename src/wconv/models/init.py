"""Initialisation shared by the model zoo."""

from torch import nn


def kaiming_init_(model: nn.Module) -> None:
    """Kaiming-normal (fan_out, ReLU) convs, unit/zero norms, default linears — as in the paper.

    Weighted convs are ``nn.ConvNd`` subclasses and their density is not random, so the standard
    and weighted twins of one seed draw the same numbers in the same order: identical initial W.
    """
    for module in model.modules():
        if any(p.is_meta for p in module.parameters(recurse=False)):
            # A meta tensor has no values to draw (grid validation builds models on ``meta``), and
            # torch runs random init on meta through slow Python decompositions: skip it.
            continue
        if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d | nn.GroupNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def identity_head_(head: nn.Module) -> None:
    """Zero the last conv of a residual restoration network so it starts as the identity map.

    With Kaiming (fan_out) init the noise head of DnCNN/NAFNet starts with a residual several times
    larger than the image; short runs then end below the noisy input's own PSNR (measured on the
    embedded demo set: 20.3 dB with Kaiming vs 28.0 dB with a zero head after 1,500 Adam steps, the
    noisy input being 21.0 dB). Zeroing it is the restoration analogue of NAFNet's β = γ = 0 and is
    identical for standard and weighted twins; the gradient of a zero weighted kernel is not zero.
    """
    # nn.Module.__getattr__ is typed Tensor | Module: mypy cannot see a conv's weight and bias.
    nn.init.zeros_(head.weight)  # type: ignore[arg-type]
    if head.bias is not None:
        nn.init.zeros_(head.bias)  # type: ignore[arg-type]
