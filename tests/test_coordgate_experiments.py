"""The CoordGate experiments: the 1D spatially-varying task, the padding signal, the figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from wconv.experiments import run_coordgate_1d, run_padding_signal
from wconv.experiments.coordgate_1d import (
    Dense,
    effective_matrix,
    kernel_matrix,
    random_signals,
    shift_invariant_fit,
    sigma_profile,
    true_matrix,
)
from wconv.nn import CoordGate, conv_factory
from wconv.report.coordgate import (
    plot_deblur_examples,
    plot_matrices,
    plot_padding_signal,
    plot_psnr_vs_params,
    plot_psnr_vs_time,
)


def test_shift_invariant_fit_is_exact_for_a_shift_invariant_operator() -> None:
    # validates the closed-form baseline: with one kernel everywhere it recovers it exactly
    rng = np.random.default_rng(0)
    matrix = true_matrix(sigma_profile(32, 2.0, 2.0, "ramp"))
    x = random_signals(200, 32, 1.0, rng)
    kernel = shift_invariant_fit(x, x @ matrix.T, 21)
    np.testing.assert_allclose(kernel_matrix(kernel, 32), matrix, atol=1e-4)
    ramp = true_matrix(sigma_profile(32, 0.5, 4.0, "ramp"))
    np.testing.assert_allclose(ramp[16].sum(), 1.0, atol=1e-3)
    assert 0.5 < ramp[-1].sum() < 0.6  # the widest kernel, at the edge, loses half its weight


def test_effective_matrix_of_a_linear_model_is_its_matrix() -> None:
    torch.manual_seed(0)
    dense = Dense(8)
    probed = effective_matrix(dense, 8, torch.device("cpu"))
    np.testing.assert_allclose(probed, dense.linear.weight.detach().double().numpy(), atol=1e-6)


def _response_width(matrix: np.ndarray, position: int) -> float:
    """RMS width of the operator's response to a Gaussian spot (σ = 1.5) at ``position``."""
    grid = np.arange(len(matrix))
    response = matrix @ np.exp(-((grid - position) ** 2) / (2 * 1.5**2))
    centre = (response * grid).sum() / response.sum()
    return float(np.sqrt((response * (grid - centre) ** 2).sum() / response.sum()))


def test_probed_matrix_is_exact_for_coordgate() -> None:
    # the 1D CoordGate model is linear in x: f(x) = f(0) + M x with M probed by unit impulses
    torch.manual_seed(0)
    model = CoordGate(1, 1, 9, conv=conv_factory(dims=1), filters=4).double()
    matrix = effective_matrix(model, 16, torch.device("cpu"))
    x = torch.randn(3, 1, 16, dtype=torch.float64)
    with torch.no_grad():
        offset = model(torch.zeros(1, 1, 16, dtype=torch.float64))
        expected = model(x)
    np.testing.assert_allclose(offset[0, 0].numpy() + x[:, 0].numpy() @ matrix.T, expected[:, 0])
    assert not np.allclose(np.diag(matrix)[:8], np.diag(matrix)[8:])  # not shift-invariant


@pytest.fixture
def one_thread():
    """Tiny 1D models gain nothing from intra-op threads, and on a loaded 2-core machine OpenMP
    spin-waiting makes each step ~30× slower; run single-threaded and restore afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_thread")
def test_coordgate_beats_every_shift_invariant_kernel(tmp_path: Path) -> None:
    results = run_coordgate_1d(
        tmp_path, models=("coordgate",), steps=300, train_signals=1024, test_signals=256, repeats=3
    )
    best_kernel = results["shift_invariant"]["mse"]
    coordgate = results["models"]["coordgate"]
    assert coordgate["mse"] < 0.5 * best_kernel
    assert coordgate["psnr"] > results["shift_invariant"]["psnr"] + 3
    assert coordgate["params"] > 0 and coordgate["inference_seconds"] > 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["models"]["coordgate"]["mse"] == pytest.approx(coordgate["mse"])
    with np.load(tmp_path / "matrices.npz") as arrays:
        true, learned = arrays["true"], arrays["coordgate"]
        assert learned.shape == true.shape == (64, 64)
        # the probed operator blurs a spot little on the left and much on the right, as the
        # truth does (the best single kernel blurs both alike)
        widths = {k: [_response_width(arrays[k], p) for p in (12, 52)] for k in arrays.files
                  if k in ("true", "coordgate", "shift_invariant")}  # fmt: skip
        np.testing.assert_allclose(widths["coordgate"], widths["true"], rtol=0.15)
        assert widths["true"][1] > 1.8 * widths["true"][0]
        np.testing.assert_allclose(*widths["shift_invariant"], rtol=0.05)
        assert {"x", "y", "pred_coordgate", "sigma"} <= set(arrays.files)
    with pytest.raises(ValueError, match="unknown 1D model"):
        run_coordgate_1d(tmp_path, models=("transformer",))


def test_padding_signal(tmp_path: Path) -> None:
    summary = run_padding_signal(tmp_path, size=128)
    assert summary["convolutions"] == {"stacked": 5, "unet2": 27, "unet4": 27}
    with np.load(tmp_path / "padding_signal.npz") as arrays:
        stacked = arrays["stacked"]
        assert stacked.shape == (5, 128, 128)
        np.testing.assert_allclose(stacked[-1, 5:-5, 5:-5], 1.0, atol=1e-12)  # out of reach: flat
        assert stacked[-1, 0, 0] < stacked[-1, 0, 64] < 1  # the border leaks a position signal
        assert stacked[0, 1, 1] == pytest.approx(1.0)  # one conv reaches one pixel in
        # the deeper U-Net spreads the signal further from the border
        assert (np.abs(arrays["unet4"] - 1) > 0.01).mean() > (
            np.abs(arrays["unet2"] - 1) > 0.01
        ).mean()
    for mode in ("circular", "reflect"):
        flat = run_padding_signal(tmp_path / mode, size=32, padding_mode=mode)
        assert max(flat["max_deviation"].values()) < 1e-12  # no zeros, no signal


def test_plots_write_png_and_svg(tmp_path: Path) -> None:
    results = {
        "models": {
            "conv": {"psnr": 30.0, "params": 4000, "inference_seconds": 1e-3},
            "coordgate": {"psnr": 42.0, "params": 1600, "inference_seconds": 2e-3},
        },
        "shift_invariant": {"psnr": 29.0},
    }
    eye = np.eye(8)
    image = np.random.default_rng(0).random((1, 16, 16))
    plots = [
        plot_psnr_vs_time(results, tmp_path),
        plot_matrices({"true": eye, "conv": eye, "sigma": np.ones(8)}, folder=tmp_path),
        plot_psnr_vs_params([{"model": "unet", "params": 1e5, "psnr": 25.0}], tmp_path),
        plot_deblur_examples(image, {"cg_unet": image}, image, tmp_path),
        plot_padding_signal({"stacked": np.ones((5, 8, 8)), "unet2": eye, "unet4": eye}, tmp_path),
    ]
    for plot in plots:
        png, svg = tmp_path / f"{plot.stem}.png", tmp_path / f"{plot.stem}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in svg.read_bytes()[:400]
    assert len(plots[1].figure.axes) == 3  # true, conv and the colour bar ("sigma" is no matrix)
