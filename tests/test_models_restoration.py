"""The denoising zoo (DnCNN, NAFNet, CGNet): sizes, shapes, twins, dtypes and layouts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from wconv.models import create, list_models, model_task
from wconv.models.cgnet import GlobalContextExtractor
from wconv.models.nafnet import ChannelAttention, NAFBlock
from wconv.nn import WeightedConv2d, count_weighted, fold, is_weighted
from wconv.study import resolve_params

REPO = Path(__file__).resolve().parents[1]

SMALL = ("dncnn", "nafnet", "cgnet")
PUBLISHED = ("nafnet_width32", "cgnet_sidd")
DENSITY = {3: 0.8, 5: (0.3, 0.9)}

# Which convs the study changes: DnCNN all 17; NAFNet/CGNet intro + ending + one depthwise conv
# per block (4 encoder + 1 middle + 4 decoder blocks by default), never CGNet's context cascades.
EXPECTED_WEIGHTED = {"dncnn": 17, "nafnet": 11, "cgnet": 11}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def head(model: nn.Module) -> nn.Module:
    return model.body[-1] if hasattr(model, "body") else model.ending


def twin(name: str, kind: str, seed: int = 0, **options) -> nn.Module:
    """A model of ``seed`` whose zero-initialised head is redrawn (identically for every conv
    kind), so comparisons of outputs are not trivially ``output == input``."""
    torch.manual_seed(seed)
    model = create(name, conv=kind, **options)
    torch.manual_seed(seed + 1)
    with torch.no_grad():
        nn.init.normal_(head(model).weight, std=0.05)
    return model


@pytest.mark.parametrize("name", SMALL)
def test_identity_init_starts_as_the_identity_map(name: str) -> None:
    model = create(name, conv="weighted", density=0.8).eval()
    x = torch.rand(1, 3, 37, 53)
    torch.testing.assert_close(model(x), x)
    assert torch.count_nonzero(head(model).weight) == 0


def test_registered_for_restoration() -> None:
    assert set(SMALL + PUBLISHED) <= set(list_models("restoration"))
    assert all(model_task(name) == "restoration" for name in SMALL + PUBLISHED)


@pytest.mark.parametrize(("in_channels", "expected"), [(1, 556_096), (3, 558_400)])
def test_dncnn_parameter_count_matches_study(in_channels: int, expected: int) -> None:
    # As the paper (arXiv 2505.24558) counts: trainable parameters, BN γ/β in, BN running
    # statistics (buffers) out.
    assert n_params(create("dncnn", in_channels=in_channels)) == expected


@pytest.mark.parametrize(
    ("name", "in_channels", "expected"),
    # Counts of the official code (NAFNet_arch.NAFNet, CGNet_arch.CascadedGaze) built with the
    # same configs: a different count means a different architecture.
    [
        ("nafnet", 3, 1_137_203),
        ("cgnet", 3, 1_592_771),
        ("nafnet_width32", 1, 29_158_561),
        ("nafnet_width32", 3, 29_159_715),
        ("cgnet_sidd", 3, 119_223_063),
    ],
)
def test_nafnet_cgnet_parameter_counts_match_official_code(
    name: str, in_channels: int, expected: int
) -> None:
    with torch.device("meta"):  # the published sizes without allocating them
        assert n_params(create(name, in_channels=in_channels)) == expected


@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("kernel_size", [3, 5])
def test_forward_backward_any_size(name: str, kernel_size: int) -> None:
    for (height, width), channels in (((37, 53), 1), ((64, 64), 3)):
        model = create(
            name,
            conv="weighted",
            density=DENSITY[kernel_size],
            kernel_size=kernel_size,
            in_channels=channels,
        )
        x = torch.rand(2, channels, height, width, requires_grad=True)
        out = model(x)
        assert out.shape == x.shape
        out.square().mean().backward()
        assert torch.isfinite(x.grad).all()
        for pname, p in model.named_parameters():
            assert p.grad is not None, pname
            assert torch.isfinite(p.grad).all(), pname


@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("kernel_size", [3, 5])
def test_twins_start_identical_and_ones_density_is_standard(name: str, kernel_size: int) -> None:
    standard = twin(name, "standard", kernel_size=kernel_size)
    weighted = twin(name, "weighted", kernel_size=kernel_size)
    learned = twin(name, "learned", kernel_size=kernel_size)
    reference = standard.state_dict()
    for other in (weighted, learned):
        state = {k: v for k, v in other.state_dict().items() if not k.endswith("density")}
        assert state.keys() == reference.keys()
        for key, value in reference.items():
            assert torch.equal(state[key], value), key
    x = torch.rand(1, 3, 37, 53)
    expected = standard.eval()(x)
    torch.testing.assert_close(weighted.eval()(x), expected)
    torch.testing.assert_close(learned.eval()(x), expected)
    # The density really enters the forward pass (the comparison above could otherwise pass
    # trivially).
    dense = twin(name, "weighted", density=DENSITY[kernel_size], kernel_size=kernel_size).eval()
    weighted_out = dense(x)
    assert not torch.allclose(weighted_out, expected)
    # Folding Φ into the kernels gives a plain model with the same outputs.
    assert fold(dense) == EXPECTED_WEIGHTED[name]
    assert count_weighted(dense) == 0
    torch.testing.assert_close(dense(x), weighted_out)


@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("kernel_size", [3, 5])
def test_weighted_layers_are_the_study_convs(name: str, kernel_size: int) -> None:
    model = create(name, conv="weighted", kernel_size=kernel_size)
    assert count_weighted(model) == EXPECTED_WEIGHTED[name]
    assert count_weighted(create(name, kernel_size=kernel_size)) == 0
    for module in model.modules():
        if isinstance(module, WeightedConv2d):
            assert module.kernel_size == (kernel_size, kernel_size)
        elif isinstance(module, nn.Conv2d):
            assert max(module.kernel_size) < 3 or module.groups > 1  # 1×1, 2×2 or the cascade
        if isinstance(module, GlobalContextExtractor):
            cascade = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
            assert not any(is_weighted(m) for m in cascade)
            assert [m.kernel_size[0] for m in cascade if m.groups > 1] in ([3, 3], [3, 3, 5])


@pytest.mark.parametrize("name", ["nafnet", "cgnet"])
def test_naf_blocks_start_as_identity(name: str) -> None:
    model = create(name, conv="weighted", density=0.8)
    blocks = [m for m in model.modules() if isinstance(m, NAFBlock)]
    assert len(blocks) == 9
    x = torch.randn(2, 16, 64, 64)  # the first encoder block runs at width 16
    torch.testing.assert_close(blocks[0](x), x, rtol=0, atol=0)
    for block in blocks:
        assert not block.beta.any() and not block.gamma.any()


def test_cgnet_pads_small_inputs_to_its_minimum_side() -> None:
    model = create("cgnet")
    assert model.min_side == 64  # level 1 runs the 3-step cascade, which needs 31 px
    with torch.device("meta"):
        assert create("cgnet_sidd").min_side == 64
    for size in ((8, 8), (48, 20)):
        x = torch.rand(1, 3, *size)
        assert model(x).shape == x.shape
    replicate = create("cgnet", pad_mode="replicate")
    assert replicate(torch.rand(1, 3, 8, 8)).shape == (1, 3, 8, 8)
    reflect = create("cgnet", pad_mode="reflect")
    assert reflect(torch.rand(1, 3, 37, 53)).shape == (1, 3, 37, 53)
    with pytest.raises(ValueError, match="reflect padding"):
        reflect(torch.rand(1, 3, 8, 8))


@pytest.mark.parametrize("name", SMALL)
def test_channels_last_and_bf16_autocast(name: str) -> None:
    model = twin(name, "weighted", density=0.8).eval()
    x = torch.rand(1, 3, 29, 35)
    expected = model(x)
    model = model.to(memory_format=torch.channels_last)
    out = model(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        low = model(x).float()
    assert (low - expected).abs().max() <= 0.05 * expected.abs().max()
    # Training step under autocast (last: train mode updates BN running statistics).
    xr = x.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = model.train()(xr)
    assert low.shape == x.shape
    low.float().square().mean().backward()
    assert torch.isfinite(xr.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("kernel_size", [1, 4, 7])
def test_unsupported_kernel_size_lists_valid_ones(name: str, kernel_size: int) -> None:
    with pytest.raises(ValueError, match=r"valid kernel sizes: \[3, 5\]"):
        create(name, kernel_size=kernel_size)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("nafnet", {"dec_blocks": (1, 1)}, "same length"),
        ("nafnet", {"enc_blocks": (1, -1, 1, 1)}, "integers >= 0"),
        ("nafnet", {"width": 0}, "width must be"),
        ("nafnet", {"pad_mode": "circular"}, "unknown pad_mode"),
        ("cgnet", {"gce_steps": (3, 3, 2)}, "one entry per encoder level"),
        ("cgnet", {"gce_steps": (3, 3, 4, 2)}, "must be one of"),
        ("dncnn", {"depth": 1}, "depth must be"),
        ("dncnn", {"in_channels": 0}, "in_channels must be"),
    ],
)
def test_bad_options_raise(name: str, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create(name, **options)


def _flops(name: str, **options) -> int:
    with torch.device("meta"):
        model = create(name, **options)
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model.eval()(torch.empty(1, 3, 64, 64))
    return counter.get_total_flops()


@pytest.mark.parametrize("name", ["nafnet", "cgnet"])
def test_enlarge_all_widens_the_blocks_feature_convs(name: str) -> None:
    spatial = _flops(name, kernel_size=5) / _flops(name)
    everything = _flops(name, kernel_size=5, enlarge="all") / _flops(name, enlarge="all")
    assert spatial < 1.2 < 2.5 < everything  # the 1×1 convs carry most of the FLOPs
    assert _flops(name, enlarge="all") > 5 * _flops(name)  # k = 3 "all": those convs are 3×3
    for k in (3, 5):
        model = create(name, conv="weighted", kernel_size=k, enlarge="all")
        # intro, ending + per block: expansion, depthwise, projection and the two FFN convs
        assert count_weighted(model) == 2 + 9 * 5
        blocks = [m for m in model.modules() if isinstance(m, NAFBlock)]
        for block in blocks:
            for conv in (block.expand, block.mixer[-1], block.ffn[0], block.ffn[2]):
                assert is_weighted(conv) and conv.kernel_size == (k, k), name
                assert conv.padding == (k // 2, k // 2)
        for module in model.modules():  # the designed convs stay: CA, downs, ups, the cascade
            if isinstance(module, ChannelAttention | GlobalContextExtractor):
                assert not any(is_weighted(m) for m in module.modules())
        for conv in [*model.downs, *(up[0] for up in model.ups)]:
            assert not is_weighted(conv) and max(conv.kernel_size) <= 2
    x = torch.rand(1, 3, 37, 53)
    assert create(name, kernel_size=5, enlarge="all")(x).shape == x.shape


@pytest.mark.parametrize("name", ["nafnet", "cgnet"])
def test_enlarge_all_twins_start_identical(name: str) -> None:
    standard = twin(name, "standard", kernel_size=5, enlarge="all")
    weighted = twin(name, "weighted", kernel_size=5, enlarge="all")
    reference = standard.state_dict()
    state = {k: v for k, v in weighted.state_dict().items() if not k.endswith("density")}
    assert state.keys() == reference.keys()
    assert all(torch.equal(state[key], value) for key, value in reference.items())
    x = torch.rand(1, 3, 37, 53)
    torch.testing.assert_close(weighted.eval()(x), standard.eval()(x))


@pytest.mark.parametrize("name", ["nafnet", "nafnet_width32", "cgnet", "cgnet_sidd"])
def test_bad_enlarge_names_the_allowed_values(name: str) -> None:
    with torch.device("meta"), pytest.raises(ValueError, match=r"\['spatial', 'all'\]"):
        create(name, enlarge="pointwise")


@pytest.mark.parametrize("preset", ["paper", "paper_picks"])
@pytest.mark.parametrize(
    ("model", "published"), [("nafnet", "nafnet_width32"), ("cgnet", "cgnet_sidd")]
)
def test_paper_study_trains_the_published_configs(preset: str, model: str, published: str) -> None:
    params = resolve_params(yaml.safe_load((REPO / "params.yaml").read_text()), preset)
    assert model in params["denoising"]["models"]
    options = params["denoising"]["model_options"][model]
    with torch.device("meta"):
        for k in (3, 5):
            ours = create(model, kernel_size=k, **options)
            reference = create(published, kernel_size=k)
            assert n_params(ours) == n_params(reference)
            assert str(ours) == str(reference)  # the same layers, not only the same count
