"""Deblurring models: U-Net / CG U-Net / CoordConv U-Net / MultiWienerNet and the Wiener stage."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from wconv.data.deblur import sample_psfs
from wconv.models import create, list_models, model_task
from wconv.models.multiwiener import WienerDeconvolution, gaussian_psfs
from wconv.models.unet import UNet
from wconv.nn import CoordConv, CoordGate, conv_factory, count_weighted

DEBLURRING = list_models("deblurring")
SMALL = {"depth": 2, "base_width": 4}
# Residual models start as the identity (zero output conv): tests of what the layers compute switch
# the residual off so that every layer shows in the output.
LAYERS = {**SMALL, "residual": False}


def test_registry_has_the_study_models() -> None:
    assert {"unet", "cg_unet", "coordconv_unet", "multiwienernet"} <= set(DEBLURRING)
    assert all(model_task(name) == "deblurring" for name in DEBLURRING)


@pytest.mark.parametrize("name", DEBLURRING)
def test_odd_sizes_forward_backward(name: str) -> None:
    torch.manual_seed(0)
    model = create(name, **LAYERS)
    for shape in [(2, 1, 13, 19), (1, 1, 5, 7)]:
        x = torch.randn(*shape, requires_grad=True)
        out = model(x)
        assert out.shape == x.shape
        out.square().mean().backward()
        assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", DEBLURRING)
def test_weighted_twin_with_unit_density_and_same_seed(name: str) -> None:
    x = torch.randn(2, 1, 11, 14)
    models = {}
    for kind in ("standard", "weighted"):
        torch.manual_seed(3)
        models[kind] = create(name, conv=kind, density=1.0, **LAYERS).eval()
    standard, weighted = models["standard"], models["weighted"]
    assert count_weighted(standard) == 0 and count_weighted(weighted) > 0
    torch.testing.assert_close(weighted(x), standard(x), rtol=0, atol=1e-6)
    std_state, w_state = standard.state_dict(), weighted.state_dict()
    assert set(w_state) - set(std_state) == {k for k in w_state if k.endswith(".density")}
    for key, value in std_state.items():
        assert torch.equal(value, w_state[key]), key
    torch.manual_seed(3)
    again = create(name, conv="standard", **LAYERS).state_dict()
    assert all(torch.equal(again[k], v) for k, v in std_state.items())


def test_cg_unet_structure_and_weighted_combination() -> None:
    depth = 3
    torch.manual_seed(0)
    model = create(
        "cg_unet", conv="weighted", density=0.8, depth=depth, base_width=4, residual=False
    )
    gates = [m for m in model.modules() if isinstance(m, CoordGate)]
    assert len(gates) == 2 * depth + 1  # before each down step, each up step and the output conv
    assert all(g.conv.__class__.__name__ == "WeightedConv2d" for g in gates)
    x = torch.randn(2, 1, 17, 23)
    out = model(x)
    out.mean().backward()
    assert out.shape == x.shape
    assert all(g.encoder[0].weight.grad.abs().sum() > 0 for g in gates)
    torch.manual_seed(0)
    standard = create("cg_unet", depth=depth, base_width=4, residual=False)
    assert not torch.allclose(standard(x), out)  # the density changes the function
    coordconv = create("coordconv_unet", depth=depth, base_width=4)
    assert sum(isinstance(m, CoordConv) for m in coordconv.modules()) == 2 * depth + 1
    params = {n: sum(p.numel() for p in create(n, **SMALL).parameters()) for n in DEBLURRING}
    assert params["unet"] < params["coordconv_unet"] < params["cg_unet"]


@pytest.mark.parametrize("name", DEBLURRING)
def test_residual_models_start_as_the_identity(name: str) -> None:
    model = create(name, **SMALL)
    x = torch.rand(2, 1, 12, 9)
    torch.testing.assert_close(model(x), x)
    with pytest.raises(ValueError, match="residual"):
        UNet(conv_factory(), 1, 2, 2, 4, residual=True)


def _blobs(size: int = 64) -> torch.Tensor:
    """A smooth image of Gaussian spots on a dark background (zero near the border)."""
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(float(size)), torch.arange(float(size)), indexing="ij")
    image = torch.zeros(size, size)
    for _ in range(30):
        cy, cx = torch.rand(2, generator=g) * (size - 24) + 12
        width = 1.5 + torch.rand(1, generator=g)
        image += (0.2 + 0.8 * torch.rand(1, generator=g)) * torch.exp(
            -((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width**2)
        )
    return (image / image.max())[None, None]


def _psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / F.mse_loss(x, y).item())


def test_wiener_stage_inverts_a_known_psf() -> None:
    image = _blobs()
    psf = gaussian_psfs([2.0], 15)
    blurred = F.conv2d(image, psf[None], padding=7)
    with torch.no_grad():
        restored = WienerDeconvolution(psf, regularizer=1e-5)(blurred)
        wrong = WienerDeconvolution(gaussian_psfs([0.7], 15), regularizer=1e-5)(blurred)
    assert restored.shape == image.shape
    assert _psnr(blurred, image) < 30
    assert _psnr(restored, image) > 35
    assert _psnr(wrong, image) < 32  # the PSF matters: a wrong one does not invert the blur


def test_wiener_bank_regulariser_stays_positive_and_learns() -> None:
    wiener = WienerDeconvolution(gaussian_psfs([1.0, 2.0, 3.0], 9), regularizer=[1e-2, 1e-3, 1.0])
    torch.testing.assert_close(wiener.regularizer, torch.tensor([1e-2, 1e-3, 1.0]))
    out = wiener(torch.rand(2, 3, 10, 12))
    assert out.shape == (2, 9, 10, 12)
    optimizer = torch.optim.SGD(wiener.parameters(), lr=100.0)
    wiener(torch.rand(1, 1, 10, 12)).sum().backward()  # a huge step on K
    assert wiener.psfs.grad.abs().sum() > 0 and wiener.log_regularizer.grad.abs().sum() > 0
    optimizer.step()
    assert (wiener.regularizer >= 0).all()
    with pytest.raises(ValueError, match="regularizer"):
        WienerDeconvolution(gaussian_psfs([1.0], 9), regularizer=-1.0)
    with pytest.raises(ValueError, match="odd"):
        WienerDeconvolution(torch.ones(1, 4, 4))


def test_multiwienernet_from_field_psfs() -> None:
    psfs = sample_psfs({"field_size": 32}, grid=3)
    assert psfs.shape == (9, 21, 21)
    torch.manual_seed(0)
    model = create("multiwienernet", psfs=psfs, **SMALL)
    torch.testing.assert_close(model.wiener.psfs.detach(), torch.as_tensor(psfs))
    assert model(torch.rand(1, 1, 32, 32)).shape == (1, 1, 32, 32)
    with pytest.raises(ValueError, match="psfs"):
        create("multiwienernet", psfs=psfs[0])


def _run_config(model: str, data: dict, **options) -> dict:
    return {
        "model": model,
        "model_options": {**SMALL, **options},
        "kernel_size": 3,
        "seed": 0,
        "conv": "standard",
        "density": 1.0,
        "density_range": None,
        "data": data,
    }


def test_training_builds_multiwienernet_from_the_datas_psfs() -> None:
    from types import SimpleNamespace

    from wconv.train.engine import build_model

    data = SimpleNamespace(num_classes=None, in_channels=1)
    deblur = {"dataset": "deblur", "field_size": 32, "psf": {"sigma_center": 1.0}}
    model = build_model(_run_config("multiwienernet", deblur), data)  # type: ignore[arg-type]
    expected = torch.as_tensor(sample_psfs(deblur, grid=3))
    assert expected.shape == (9, 21, 21)
    torch.testing.assert_close(model.wiener.psfs.detach(), expected, rtol=0, atol=0)
    two = build_model(_run_config("multiwienernet", deblur, num_psfs=4), data)  # type: ignore[arg-type]
    torch.testing.assert_close(two.wiener.psfs.detach(), torch.as_tensor(sample_psfs(deblur, 2)))
    with pytest.raises(ValueError, match="square"):
        build_model(_run_config("multiwienernet", deblur, num_psfs=5), data)  # type: ignore[arg-type]
    # By name alone (model card, meta-device grid check) the bank stays the generic Gaussians.
    generic = create("multiwienernet", **SMALL)
    assert generic.wiener.psfs.shape == (4, 15, 15)
    torch.testing.assert_close(
        generic.wiener.psfs.detach(), gaussian_psfs(torch.linspace(0.5, 3.0, 4).tolist(), 15)
    )


def test_multiwienernet_original_refiner_is_an_option() -> None:
    from wconv.models.unet import UNet

    study = create("multiwienernet", depth=3)
    original = create("multiwienernet", depth=3, refiner="original", conv="weighted", density=0.8)
    refiner = original.refiner
    assert isinstance(refiner, UNet) and isinstance(refiner.pool, torch.nn.AvgPool2d)
    assert [e[0].out_channels for e in refiner.encoders] == [24, 64, 128]
    assert refiner.middle[0].out_channels == 256
    # three conv → BN → ReLU per decoder level, two per encoder level
    assert len(refiner.decoders[0]) == 9 and len(refiner.encoders[0]) == 6
    count = sum(p.numel() for p in original.parameters())
    assert count > 4 * sum(p.numel() for p in study.parameters())
    assert original(torch.rand(1, 1, 24, 24)).shape == (1, 1, 24, 24)
    with pytest.raises(ValueError, match="unknown refiner 'wide'; choose one of"):
        create("multiwienernet", refiner="wide")
    with pytest.raises(ValueError, match="depth must be at most 5"):
        create("multiwienernet", refiner="original", depth=6)
