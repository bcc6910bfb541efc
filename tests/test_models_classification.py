"""The classification zoo: sizes, twins, weighted-layer placement, spiking dynamics, dtypes."""

from __future__ import annotations

import importlib.util
import itertools
import re
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from wconv.models import create, list_models
from wconv.models.gac_snn import LIF, TriangleSpike
from wconv.nn import convert, count_weighted, is_weighted

CLASSIFIERS = list_models("classification")
CLASSES = 100
# Options that keep the forward/backward tests fast; parameter counts use the defaults.  Tests
# that only compare the two conv kinds or check shapes run the SNN for a single time step.
FAST = {"gac_snn": {"time_steps": 2}}
ONE_STEP = {"gac_snn": {"time_steps": 1}}

# Standard twins at their defaults, 100 classes: (reference, relative tolerance, source).
REFERENCE_PARAMS = {
    "resnet56": (858_868, 0.0, "the paper (arXiv 2505.24558), option-A shortcuts"),
    "nin": (984_356, 0.0, "the paper (arXiv 2505.24558)"),
    "gac_snn": (12_679_368, 0.0, "the paper / the reference implementation (bollossom/GAC)"),
    "gmlp": (4_630_000, 0.02, "the paper (arXiv 2505.24558): 4.63 M, + the 3×3 conv stem"),
}


def build(name: str, conv: str = "standard", seed: int = 0, **options) -> nn.Module:
    torch.manual_seed(seed)
    return create(name, conv=conv, num_classes=CLASSES, **{**FAST.get(name, {}), **options})


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def run(model: nn.Module, x: torch.Tensor, seed: int = 1) -> torch.Tensor:
    torch.manual_seed(seed)  # dropout / stochastic depth draw the same masks for both twins
    return model(x)


def images(batch: int = 2, seed: int = 2) -> torch.Tensor:
    return torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_every_published_classifier_is_registered():
    expected = {"resnet56", "vgg16_bn", "nin", "gmlp", "gac_snn", "efficientnet_b0", "small_cnn"}
    assert expected <= set(CLASSIFIERS)


@pytest.mark.parametrize("name", sorted(REFERENCE_PARAMS))
def test_parameter_count_matches_reference(name):
    reference, tolerance, source = REFERENCE_PARAMS[name]
    count = n_params(create(name))
    assert abs(count - reference) <= tolerance * reference, f"{name}: {count:,} vs {source}"


def test_vgg16_bn_size_is_in_the_study_range():
    # The paper (arXiv 2505.24558): VGG-16-BN with a single linear head ≈ 15.0–15.3 M; 2 % either
    # side.
    assert 15.0e6 * 0.98 <= n_params(create("vgg16_bn")) <= 15.3e6 * 1.02


def test_efficientnet_b0_matches_torchvision():
    # Only strides differ from torchvision's B0, so the parameter layout must be identical.
    reference = torchvision.models.efficientnet_b0(num_classes=CLASSES)
    assert n_params(create("efficientnet_b0")) == n_params(reference)
    assert 3.9e6 <= n_params(reference) <= 4.2e6  # "≈ 4 M" in the paper (arXiv 2505.24558)


def test_plain_gmlp_without_stem_has_the_papers_size():
    model = create("gmlp", conv="weighted", stem_width=0)
    assert count_weighted(model) == 0
    assert abs(n_params(model) - 4_630_000) <= 0.001 * 4_630_000


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_forward_backward_on_cpu(name):
    model = build(name)
    out = run(model, images())
    assert out.shape == (2, CLASSES)
    F.cross_entropy(out, torch.tensor([3, 7])).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_weighted_twin_starts_identical(name):
    options = ONE_STEP.get(name, {})
    standard, weighted = build(name, **options), build(name, "weighted", density=1.0, **options)
    assert count_weighted(standard) == 0 and count_weighted(weighted) > 0
    assert n_params(standard) == n_params(weighted)
    plain = standard.state_dict()
    twin = {k: v for k, v in weighted.state_dict().items() if not k.endswith(".density")}
    assert plain.keys() == twin.keys()
    assert all(torch.equal(plain[k], twin[k]) for k in plain)

    x = images()
    with torch.no_grad():
        reference = run(standard, x)
        torch.testing.assert_close(run(weighted, x), reference, rtol=0, atol=0)
        # The density is really applied: another value changes the output.
        other = build(name, "weighted", density=0.5, **options)
        assert not torch.allclose(run(other, x), reference)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_channels_last_and_bfloat16_autocast(name):
    model = build(name)
    x = images()
    x_last = x.contiguous(memory_format=torch.channels_last)
    # Not compared for the SNN: a ~1e-7 change can flip a spike at the threshold and move the
    # logits.  Eval mode: dropout masks are drawn in memory order, so they differ by layout.
    if name != "gac_snn":
        with torch.no_grad():
            reference = model.eval()(x)
            out = model.to(memory_format=torch.channels_last)(x_last)
        torch.testing.assert_close(out, reference, rtol=1e-4, atol=1e-4)
    model = model.to(memory_format=torch.channels_last).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = run(model, x_last)
    assert out.shape == (2, CLASSES) and out.dtype == torch.bfloat16
    assert torch.isfinite(out).all()
    out.float().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_every_odd_conv_is_built_by_the_factory(name):
    # convert() weights every odd k×k conv it finds: it must find exactly the factory's layers.
    standard, weighted = create(name, **ONE_STEP.get(name, {})), create(name, conv="weighted")
    converted = convert(standard)
    assert converted == count_weighted(weighted) > 0
    assert [n for n, m in standard.named_modules() if is_weighted(m)] == [
        n for n, m in weighted.named_modules() if is_weighted(m)
    ]


def _kernel_sides(model: nn.Module) -> Counter:
    return Counter(m.kernel_size[0] for m in model.modules() if is_weighted(m))


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_kernel_size_5_replaces_the_3x3_convs(name):
    at3 = _kernel_sides(build(name, "weighted"))
    model = build(name, "weighted", kernel_size=5, **ONE_STEP.get(name, {}))
    assert _kernel_sides(model) == Counter({5: at3[3] + at3[5]})
    with torch.no_grad():
        assert run(model.eval(), images(batch=1)).shape == (1, CLASSES)


@pytest.mark.parametrize("name", sorted(set(CLASSIFIERS) - {"small_cnn"}))
@pytest.mark.parametrize("kernel_size", [1, 2, 4])
def test_invalid_kernel_size_names_the_valid_ones(name, kernel_size):
    with pytest.raises(ValueError, match=r"odd size >= 3"):
        create(name, kernel_size=kernel_size)


def test_registry_errors_list_the_valid_choices():
    with pytest.raises(ValueError, match=r"unknown model 'resnet57'.*resnet56.*vgg16_bn"):
        create("resnet57")
    with pytest.raises(ValueError, match=r"\['depth'\].*kernel_size"):
        create("resnet56", depth=20)
    with pytest.raises(ValueError, match=r"unknown conv kind 'weigthed'.*weighted"):
        create("nin", conv="weigthed")


def test_nin_density_scalar_broadcasts_and_mapping_splits():
    layers = [m for m in create("nin", conv="weighted", density=0.8).modules() if is_weighted(m)]
    assert [m.kernel_size[0] for m in layers] == [5, 5, 3]
    assert torch.cat([m.density for m in layers]).tolist() == pytest.approx([0.8] * 5)
    mapping = {3: [0.9], 5: [0.2, 0.7]}
    layers = [
        m for m in create("nin", conv="weighted", density=mapping).modules() if is_weighted(m)
    ]
    assert torch.cat([m.density for m in layers]).tolist() == pytest.approx([0.2, 0.7] * 2 + [0.9])


def test_gmlp_weights_only_its_conv_stem():
    model = create("gmlp", conv="weighted")
    assert [n for n, m in model.named_modules() if is_weighted(m)] == ["stem.0"]


def test_efficientnet_weights_stem_and_every_depthwise_conv():
    model = create("efficientnet_b0", conv="weighted")
    depthwise = [
        m
        for m in model.modules()
        if isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels
    ]
    assert len(depthwise) == 16 and all(is_weighted(m) for m in depthwise)
    assert is_weighted(model.stem[0]) and count_weighted(model) == 17


def test_triangle_surrogate_forward_is_a_step_and_backward_a_triangle():
    v = torch.tensor([-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5], requires_grad=True)
    spikes = TriangleSpike.apply(v, 1.0)
    assert spikes.tolist() == [0, 0, 0, 1, 1, 1, 1]
    spikes.sum().backward()
    assert v.grad.tolist() == pytest.approx([0, 0, 0.5, 1, 0.5, 0, 0])
    v.grad = None
    TriangleSpike.apply(v, 2.0).sum().backward()  # max(0, 2 - |v|) / 4
    assert v.grad.tolist() == pytest.approx([0.125, 0.25, 0.375, 0.5, 0.375, 0.25, 0.125])


def test_lif_leaks_fires_at_threshold_and_resets_hard():
    # u = 0.6, 0.9, 1.05 → spike and reset to 0 → 0.6, 0.9, 1.05 → spike.
    spikes = LIF(leak=0.5, threshold=1.0, surrogate_width=1.0)(torch.full((6, 1), 0.6))
    assert spikes.flatten().tolist() == [0, 0, 1, 0, 0, 1]


def test_gac_snn_spikes_are_binary_and_gradients_flow_through_the_surrogate():
    model = build("gac_snn", "weighted", density=0.8)
    outputs: list[torch.Tensor] = []
    for module in model.modules():
        if isinstance(module, LIF):
            module.register_forward_hook(lambda _m, _i, out: outputs.append(out.detach()))
    run(model, images()).sum().backward()
    assert len(outputs) == 1 + 2 * 8 + 1  # coding layer, two per block, before the head
    spikes = torch.cat([o.flatten() for o in outputs])
    assert set(spikes.unique().tolist()) == {0.0, 1.0}
    # Every path from a block to the logits crosses the last LIF (and most cross several): a
    # non-zero gradient there can only come from the surrogate, the step's own gradient being 0.
    # (Block 0's convs may get none at T = 2: its first LIF integrates gated inputs below 1.)
    for conv in (model.blocks[1].conv1[0], model.blocks[-1].conv2[0]):
        assert torch.isfinite(conv.weight.grad).all() and conv.weight.grad.abs().sum() > 0


def _load_model_card():
    path = Path(__file__).resolve().parent.parent / "scripts" / "model_card.py"
    spec = importlib.util.spec_from_file_location("model_card", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def _expand(pattern: str) -> set[str]:
    """Invert the model card's notation: ``a.{0-2}.conv{1,2}`` → the names it stands for."""
    choices = []
    for segment in pattern.split("."):
        match = re.fullmatch(r"([^{]*)\{(.*)\}", segment)
        if not match:
            choices.append([segment])
            continue
        values = []
        for part in match.group(2).split(","):
            low, _, high = part.partition("-")
            if high and low.isdigit() and high.isdigit():
                values += [str(i) for i in range(int(low), int(high) + 1)]
            else:
                values.append(part)
        choices.append([match.group(1) + v for v in values])
    return {".".join(c) for c in itertools.product(*choices)}


@pytest.mark.parametrize("name", ["resnet56", "gac_snn", "efficientnet_b0", "nin"])
def test_model_card_compresses_layer_names_exactly(name):
    card = _load_model_card()
    names = [n for n, m in create(name, conv="weighted").named_modules() if is_weighted(m)]
    patterns = card.compress_names(names)
    assert len(patterns) < len(names) or len(names) <= 3
    expanded = [_expand(p) for p in patterns]
    assert sum(len(e) for e in expanded) == len(names)
    assert set().union(*expanded) == set(names)


def test_drop_path_is_torchvision_stochastic_depth():
    from torchvision.ops import stochastic_depth

    from wconv.models.efficientnet import drop_path

    x = torch.randn(16, 4, 3, 3)
    torch.manual_seed(0)
    expected = stochastic_depth(x, 0.3, "row", True)
    torch.manual_seed(0)
    assert torch.equal(drop_path(x, 0.3, True), expected)
    assert torch.equal(drop_path(x, 0.3, False), x)


def test_model_card_shows_the_weighted_convs_at_k5_and_the_flops_ratio():
    card = _load_model_card()
    nin = card.measure("nin")
    assert nin.weighted_kernels == "3×3: 1, 5×5: 2" and nin.k5_kernels == "5×5: 3"
    assert nin.k5_flops_ratio is not None and nin.k5_flops_ratio > 1
    resnet = card.measure("resnet56")  # every conv is 3×3: at k = 5 each costs 25/9 as much
    assert resnet.k5_flops_ratio is not None and 2.5 < resnet.k5_flops_ratio < 25 / 9 + 1e-6
    row = next(line for line in card.render([nin]).splitlines() if line.startswith("| `nin`"))
    assert row.endswith(f"| 5×5: 3 | {nin.k5_flops_ratio:.2f} |")


def test_model_card_shows_the_plain_gmlp_beside_the_stem_one():
    card = _load_model_card()
    assert card.VARIANTS["gmlp(stem_width=0)"] == ("gmlp", {"stem_width": 0})
    plain = card.measure("gmlp", {"stem_width": 0}, "gmlp(stem_width=0)")
    stem = card.measure("gmlp")
    assert (plain.params, plain.weighted, plain.weighted_kernels) == (4_625_508, 0, "")
    assert (stem.params, stem.weighted, stem.weighted_kernels) == (4_652_596, 1, "3×3: 1")
    lines = card.render([stem, plain]).splitlines()
    row = next(line for line in lines if line.startswith("| `gmlp(stem_width=0)`"))
    assert "| 4,625,508 |" in row and "| 0 | – | – |" in row
    assert "- `gmlp(stem_width=0)` (0): none" in lines
