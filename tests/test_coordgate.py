"""CoordGate / CoordConv layers: exactness with a constant gate, gradients, any size, caching."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wconv.nn import CoordConv, CoordGate, conv_factory, coordinate_grid, is_weighted

FUNCTIONAL = {1: F.conv1d, 2: F.conv2d}


def _constant_gate_(layer: CoordGate, value: float) -> None:
    """Make the MLP output ``value`` everywhere: last layer weight 0, bias ``value``."""
    last = layer.encoder[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(value)


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("kind", ["standard", "weighted"])
def test_gate_of_one_is_the_plain_conv(dims: int, kind: str) -> None:
    torch.manual_seed(0)
    factory = conv_factory(kind, 0.7, dims=dims)
    layer = CoordGate(3, 5, 3, conv=factory, project=False).double()
    _constant_gate_(layer, 1.0)
    x = torch.randn(2, 3, *([11] * dims), dtype=torch.float64)
    weight = layer.conv.weighted_weight() if is_weighted(layer.conv) else layer.conv.weight
    expected = FUNCTIONAL[dims](x, weight, layer.conv.bias, padding=1)
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-12)
    if kind == "weighted":  # the density really is applied inside the gated layer
        assert not torch.allclose(layer(x), FUNCTIONAL[dims](x, layer.conv.weight, padding=1))

    # with the output projection: 1×1 conv of the plain conv
    projected = CoordGate(3, 4, 3, conv=factory, filters=5).double()
    _constant_gate_(projected, 1.0)
    inner = projected.conv(x)
    expected = FUNCTIONAL[dims](inner, projected.project.weight, projected.project.bias)
    torch.testing.assert_close(projected(x), expected, rtol=0, atol=1e-12)
    # a constant gate g scales the filters by g: no position dependence
    _constant_gate_(projected, 2.5)
    torch.testing.assert_close(
        projected(x),
        FUNCTIONAL[dims](2.5 * inner, projected.project.weight, projected.project.bias),
    )


def test_gradients_reach_every_mlp_parameter() -> None:
    torch.manual_seed(0)
    layer = CoordGate(2, 4, 3)
    layer(torch.randn(2, 2, 9, 13)).square().mean().backward()
    for name, param in layer.encoder.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    # with the constant gate the last layer still learns (its gradient is the coordinate features)
    layer.zero_grad()
    _constant_gate_(layer, 1.0)
    layer(torch.randn(2, 2, 9, 13)).square().mean().backward()
    assert layer.encoder[-1].weight.grad.abs().sum() > 0


def test_gate_varies_with_position_and_any_size_works() -> None:
    torch.manual_seed(0)
    layer = CoordGate(1, 2, 3)
    for shape in [(1, 1), (7, 5), (16, 33)]:
        out = layer(torch.randn(3, 1, *shape))
        assert out.shape == (3, 2, *shape)
    gate = layer.gate((16, 33), torch.empty(0))
    assert gate.shape == (1, 2, 16, 33)
    assert gate.std(dim=(2, 3)).min() > 1e-3  # spatially varying, per channel
    # gate starts near 1 so that a fresh layer behaves like a conv (see reset_encoder)
    assert 0.3 < gate.mean() < 1.7


def test_coordinate_grid_values_and_cache() -> None:
    grid = coordinate_grid((3, 5))
    assert grid.shape == (1, 2, 3, 5)
    torch.testing.assert_close(grid[0, 0, :, 0], torch.tensor([-1.0, 0.0, 1.0]))
    torch.testing.assert_close(grid[0, 1, 0], torch.linspace(-1, 1, 5))
    assert coordinate_grid((3, 5)) is grid  # cached
    assert coordinate_grid((3, 5), dtype=torch.float64).dtype == torch.float64
    assert coordinate_grid((1,)).item() == 0.0
    with pytest.raises(ValueError, match="side"):
        coordinate_grid((0, 4))


def test_grid_made_in_inference_mode_does_not_break_training() -> None:
    layer = CoordGate(1, 2, 3)
    with torch.inference_mode():
        layer(torch.randn(1, 1, 6, 10))
    # a grid cached under inference_mode cannot be saved for backward (the MLP's first conv
    # saves it); the cache keys on the mode
    layer(torch.randn(1, 1, 6, 10)).sum().backward()
    assert layer.encoder[0].weight.grad is not None


def test_coordconv_is_a_conv_over_input_and_coordinates() -> None:
    torch.manual_seed(0)
    layer = CoordConv(2, 3, 5, conv=conv_factory("weighted", [0.5, 0.9])).double()
    x = torch.randn(2, 2, 8, 9, dtype=torch.float64)
    grid = coordinate_grid((8, 9), dtype=torch.float64).expand(2, -1, -1, -1)
    expected = F.conv2d(
        torch.cat([x, grid], 1), layer.conv.weighted_weight(), layer.conv.bias, padding=2
    )
    torch.testing.assert_close(layer(x), expected)
    # a constant input gives a position-dependent output in the interior (unlike a plain conv)
    out = layer(torch.ones(1, 2, 8, 9, dtype=torch.float64))
    assert not torch.allclose(out[..., 3, 3], out[..., 4, 5])


def test_mlp_is_1x1_convs_and_options_are_checked() -> None:
    layer = CoordGate(4, 4, 3, encoder_width=8, encoder_depth=3, activation="tanh", gate="sigmoid")
    convs = [m for m in layer.encoder if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(1, 1)] * 4
    assert [c.out_channels for c in convs] == [8, 8, 8, 4]
    gate = layer.gate((5, 5), torch.empty(0))
    assert (gate > 0).all() and (gate < 1).all()
    with pytest.raises(ValueError, match="activation"):
        CoordGate(1, 1, 3, activation="swish")
    with pytest.raises(ValueError, match="gate"):
        CoordGate(1, 1, 3, gate="softmax")
    with pytest.raises(ValueError, match="project"):
        CoordGate(1, 2, 3, filters=4, project=False)
    with pytest.raises(ValueError, match="odd"):
        CoordGate(1, 1, 4)
