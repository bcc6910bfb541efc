"""`convert()` and `fold()` on third-party timm models: mixed kernels, strides, depthwise convs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from wconv.nn import WeightedConv2d, convert, count_weighted, fold, is_weighted

# timm is a dev requirement (pyproject `dev` extra, pinned in requirements/constraints.txt), so
# `make test` always has it; the skip only spares a library-only install running this file.
timm = pytest.importorskip("timm")

# (model, convertible convs, of which depthwise), counted by hand from the architectures:
# resnet18: 7×7 stem + 16 3×3 in the blocks (1×1 downsamples stay plain);
# efficientnet_b0: 3×3 stem + one 3×3/5×5 depthwise conv per block (16 blocks);
# convnext_atto: one 7×7 depthwise conv per block (2+2+6+2); its 4×4 stem and 2×2 downsamples are
# even kernels and stay plain.
KNOWN = {"resnet18": (17, 0), "efficientnet_b0": (17, 16), "convnext_atto": (12, 12)}


def _expected(model: nn.Module, skip_depthwise: bool) -> int:
    """The documented rule, applied independently of `convert`'s own code."""
    count = 0
    for module in model.modules():
        if type(module) is not nn.Conv2d:
            continue
        kernel = module.kernel_size
        if max(kernel) == 1 or any(k % 2 == 0 for k in kernel):
            continue
        if skip_depthwise and module.groups > 1 and module.groups == module.in_channels:
            continue
        count += 1
    return count


def _model(name: str) -> nn.Module:
    # ConvNeXt's layer scale starts at 1e-6, which would make its blocks (and so its 7×7 depthwise
    # convs) invisible in the output; a scale of 1 lets the comparisons see every conv.
    options = {"ls_init_value": 1.0} if name.startswith("convnext") else {}
    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False, num_classes=10, **options).eval()


def _features(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.forward_features(image)


def _assert_same(actual: torch.Tensor, expected: torch.Tensor, rtol: float) -> None:
    # Tolerance relative to the output's scale: timm's initialisation leaves some models (e.g.
    # efficientnet_b0) with features of order 1e-5, where a fixed atol would accept anything.
    scale = expected.abs().max().item()
    assert scale > 0
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=rtol * scale)


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_all_ones_density_reproduces_the_model(name: str, image: torch.Tensor) -> None:
    model = _model(name)
    converted = _model(name)
    expected = _expected(converted, skip_depthwise=False)
    assert expected == KNOWN[name][0]
    reference = _features(model, image)
    assert convert(converted, density=1.0) == expected
    assert count_weighted(converted) == expected
    _assert_same(_features(converted, image), reference, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_skip_depthwise_leaves_depthwise_convs_plain(name: str) -> None:
    model = _model(name)
    expected = _expected(model, skip_depthwise=True)
    assert expected == KNOWN[name][0] - KNOWN[name][1]
    assert convert(model, density=0.8, skip_depthwise=True) == expected
    for module in model.modules():
        if is_weighted(module):
            assert not (module.groups > 1 and module.groups == module.in_channels)


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_fold_gives_plain_convs_with_the_same_outputs(name: str, image: torch.Tensor) -> None:
    original = _model(name)
    model = _model(name)
    # A scalar density fits every ring of the 3×3, 5×5 and 7×7 kernels these models mix.
    n = convert(model, density=0.7)
    weighted = _features(model, image)
    reference = _features(original, image)
    # The density really changed the model (else the fold check below would prove nothing).
    assert (weighted - reference).abs().max() > 1e-2 * reference.abs().max()
    assert fold(model) == n
    assert count_weighted(model) == 0
    assert not any(isinstance(m, WeightedConv2d) for m in model.modules())
    assert sum(type(m) is nn.Conv2d for m in model.modules()) == sum(
        type(m) is nn.Conv2d for m in original.modules()
    )
    _assert_same(_features(model, image), weighted, rtol=1e-4)
