"""The weighted-convolution layer library: exactness, gradients, folding, conversion, errors."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from wconv.nn import (
    WeightedConv1d,
    WeightedConv2d,
    WeightedConv3d,
    conv_factory,
    convert,
    count_weighted,
    fold,
    is_weighted,
    project_densities_,
)

PLAIN = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
WEIGHTED = {1: WeightedConv1d, 2: WeightedConv2d, 3: WeightedConv3d}
FUNCTIONAL = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}

CONFIGS = [
    {"stride": 1, "padding": 1},
    {"stride": 2, "padding": 0, "dilation": 2},
    {"padding": "same", "groups": 2},
    {"padding": 1, "padding_mode": "reflect", "bias": False},
    {"padding": 2, "padding_mode": "circular"},
]


def _input(dims: int, channels: int = 4) -> torch.Tensor:
    return torch.randn(2, channels, *([9] * dims), dtype=torch.float64)


def _twins(dims: int, kernel: int | tuple[int, ...], density, **kwargs):
    torch.manual_seed(0)
    plain = PLAIN[dims](4, 6, kernel, dtype=torch.float64, **kwargs)
    weighted = WEIGHTED[dims](4, 6, kernel, dtype=torch.float64, density=density, **kwargs)
    weighted.load_state_dict(plain.state_dict(), strict=False)
    return plain, weighted


def _phi_reference(per_axis: list[list[float]]) -> torch.Tensor:
    """Φ built the slow, obvious way: loop over every kernel index and multiply the a_i."""
    axes = [[*d, 1.0, *reversed(d)] for d in per_axis]
    shape = [len(a) for a in axes]
    phi = torch.empty(shape, dtype=torch.float64)
    for index in torch.cartesian_prod(*[torch.arange(n) for n in shape]).view(-1, len(shape)):
        value = 1.0
        for axis, i in enumerate(index.tolist()):
            value *= axes[axis][i]
        phi[tuple(index.tolist())] = value
    return phi


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_all_ones_density_is_bit_identical_to_plain_conv(dims, config):
    kernel = 5 if config.get("padding") == 2 else 3
    plain, weighted = _twins(dims, kernel, 1.0, **config)
    x = _input(dims)
    x_plain, x_weighted = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_plain, out_weighted = plain(x_plain), weighted(x_weighted)
    assert torch.equal(out_plain, out_weighted)
    grad = torch.randn_like(out_plain)
    out_plain.backward(grad)
    out_weighted.backward(grad)
    assert torch.equal(x_plain.grad, x_weighted.grad)
    assert torch.equal(plain.weight.grad, weighted.weight.grad)
    if plain.bias is not None:
        assert torch.equal(plain.bias.grad, weighted.bias.grad)


@pytest.mark.parametrize(
    ("dims", "kernel", "density", "per_axis"),
    [
        (1, 3, [0.7], [[0.7]]),
        (1, 5, [0.2, 0.9], [[0.2, 0.9]]),
        (2, 3, 0.75, [[0.75], [0.75]]),
        (2, 5, [0.1, 0.9], [[0.1, 0.9], [0.1, 0.9]]),
        (2, (3, 5), [[0.6], [0.3, 1.2]], [[0.6], [0.3, 1.2]]),
        (2, (5, 5), [[0.5, 0.8], [1.1, 1.3]], [[0.5, 0.8], [1.1, 1.3]]),
        (3, 3, [1.15], [[1.15]] * 3),
        (3, (3, 1, 5), [[0.4], [], [0.2, 0.6]], [[0.4], [], [0.2, 0.6]]),
    ],
)
def test_output_equals_functional_conv_with_weight_times_phi(dims, kernel, density, per_axis):
    _, weighted = _twins(dims, kernel, density, padding="same")
    x = _input(dims)
    phi = _phi_reference(per_axis)
    expected = FUNCTIONAL[dims](x, weighted.weight * phi, weighted.bias, padding="same")
    torch.testing.assert_close(weighted(x), expected, rtol=0, atol=1e-12)


def test_gradcheck_weight_bias_input_and_learned_density():
    torch.manual_seed(0)
    layer = WeightedConv2d(
        2, 3, (3, 5), padding=1, dtype=torch.float64, density=[[0.8], [0.6, 1.2]], learnable=True
    )
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)

    def run(inp, weight, bias, density):
        tensors = {"weight": weight, "bias": bias, "density": density}
        return torch.func.functional_call(layer, tensors, (inp,))

    params = [
        t.detach().clone().requires_grad_() for t in (layer.weight, layer.bias, layer.density)
    ]
    assert torch.autograd.gradcheck(run, (x, *params))


def test_learned_density_receives_gradient_and_is_kept_in_range():
    layer = WeightedConv2d(
        2, 2, 3, padding=1, density=0.9, learnable=True, density_range=(0.5, 1.5)
    )
    assert isinstance(layer.density, nn.Parameter)
    layer(torch.randn(1, 2, 6, 6)).square().sum().backward()
    assert layer.density.grad is not None and layer.density.grad.abs().sum() > 0
    with torch.no_grad():
        layer.density.fill_(3.0)
    model = nn.Sequential(layer)
    project_densities_(model)
    assert layer.density.item() == pytest.approx(1.5)


def test_fixed_density_is_a_buffer_and_cached_phi_follows_in_place_changes():
    layer = WeightedConv2d(2, 2, 3, padding=1, density=0.5)
    assert "density" in dict(layer.named_buffers())
    assert "density" not in dict(layer.named_parameters())
    x = torch.randn(1, 2, 6, 6)
    first = layer(x)
    with torch.no_grad():
        layer.density.fill_(1.0)
    torch.testing.assert_close(layer(x), F.conv2d(x, layer.weight, layer.bias, padding=1))
    assert not torch.equal(first, layer(x))


@pytest.mark.parametrize("learnable", [False, True])
def test_fold_matches_and_state_dict_round_trips(learnable):
    torch.manual_seed(1)
    layer = WeightedConv2d(3, 4, 5, padding=2, density=[0.2, 0.9], learnable=learnable)
    x = torch.randn(2, 3, 11, 11)
    folded = layer.fold()
    assert type(folded) is nn.Conv2d
    torch.testing.assert_close(folded(x), layer(x), rtol=1e-5, atol=1e-6)

    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    buffer.seek(0)
    restored = WeightedConv2d(3, 4, 5, padding=2, density=1.0, learnable=learnable)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(restored.density, layer.density)
    assert torch.equal(restored(x), layer(x))


def test_fold_model_replaces_every_weighted_layer():
    model = nn.Sequential(
        WeightedConv2d(3, 4, 3, padding=1, density=0.7),
        nn.ReLU(),
        nn.Sequential(WeightedConv2d(4, 4, 3, padding=1, density=1.2)),
    )
    x = torch.randn(1, 3, 8, 8)
    expected = model(x)
    assert fold(model) == 2
    assert count_weighted(model) == 0
    torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-6)


def test_convert_resnet18_converts_exactly_the_odd_spatial_convs():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    expected_names = {
        name
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d) and max(m.kernel_size) > 1 and m.kernel_size[0] % 2 == 1
    }
    assert len(expected_names) == 17  # stem 7×7 + 16 block 3×3 convs; the 1×1 downsamples stay
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
    assert convert(model, density=1.0) == 17
    converted = {name for name, m in model.named_modules() if is_weighted(m)}
    assert converted == expected_names
    with torch.no_grad():
        assert torch.equal(model(x), before)


def test_convert_options_skip_depthwise_and_mapping_density():
    model = nn.Sequential(
        nn.Conv2d(4, 4, 3, padding=1, groups=4),
        nn.Conv2d(4, 8, 5, padding=2),
        nn.Conv2d(8, 8, 1),
        nn.Conv2d(8, 8, 2),
    )
    assert convert(model, density={3: [0.8], 5: [0.1, 0.9]}, skip_depthwise=True) == 1
    assert not is_weighted(model[0]) and is_weighted(model[1])
    assert model[1].density.tolist() == pytest.approx([0.1, 0.9])
    assert convert(model, density=0.5, include=lambda name, m: name == "0") == 1
    assert is_weighted(model[0])


@pytest.mark.parametrize("kind", ["standard", "weighted", "learned"])
def test_conv_factory_kinds(kind):
    make = conv_factory(kind, density={3: 0.8, 5: [0.1, 0.9]})
    three, five, one = make(4, 4, 3, padding=1), make(4, 4, 5, padding=2), make(4, 4, 1)
    assert type(one) is nn.Conv2d
    assert is_weighted(three) == is_weighted(five) == (kind != "standard")
    if kind == "learned":
        assert isinstance(five.density, nn.Parameter)


def test_repr_names_density():
    text = repr(WeightedConv2d(2, 2, (3, 5), padding=1, density=[[0.5], [0.25, 0.75]]))
    assert "kernel_size=(3, 5)" in text and "density=[0.5, 0.25, 0.75] (fixed, per-axis)" in text


def test_dtype_and_device_follow_the_module():
    layer = WeightedConv2d(2, 2, 3, density=0.8, dtype=torch.float64)
    assert layer.density.dtype == torch.float64
    layer = layer.float()
    assert layer(torch.randn(1, 2, 5, 5)).dtype == torch.float32


# --- bad input: one clear error each -------------------------------------------------------


def test_error_density_length_mismatch():
    with pytest.raises(ValueError, match=r"WeightedConv2d: density \[0.1, 0.9\] has 2 value"):
        WeightedConv2d(2, 2, 3, density=[0.1, 0.9])


def test_error_non_finite_density():
    with pytest.raises(ValueError, match="WeightedConv1d: density values must be finite"):
        WeightedConv1d(2, 2, 3, density=[float("nan")])


def test_error_negative_density():
    with pytest.raises(ValueError, match=r"finite and >= 0, got -0.5"):
        WeightedConv2d(2, 2, 3, density=-0.5)


def test_error_even_kernel():
    with pytest.raises(ValueError, match=r"WeightedConv2d: kernel_size \(4, 4\) has an even side"):
        WeightedConv2d(2, 2, 4)


def test_error_wrong_number_of_axes():
    with pytest.raises(ValueError, match="per-axis density needs one vector per spatial axis"):
        WeightedConv2d(2, 2, 3, density=[[0.5], [0.5], [0.5]])


def test_error_ambiguous_flat_density_for_rectangular_kernel():
    with pytest.raises(ValueError, match="rectangular"):
        WeightedConv2d(2, 2, (3, 5), density=[0.5])


def test_error_bad_range_and_unknown_kind():
    with pytest.raises(ValueError, match="density_range"):
        WeightedConv2d(2, 2, 3, learnable=True, density_range=(1.5, 0.5))
    with pytest.raises(ValueError, match="unknown conv kind 'wieghted'"):
        conv_factory("wieghted")
