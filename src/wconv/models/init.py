"""Initialisation shared by the model zoo."""

from torch import nn


def kaiming_init_(model: nn.Module) -> None:
    """Kaiming-normal (fan_out, ReLU) convs, unit/zero norms, default linears — as in the paper.

    Weighted convs are ``nn.ConvNd`` subclasses and their density is not random, so the standard
    and weighted twins of one seed draw the same numbers in the same order: identical initial W.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d | nn.GroupNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
