"""The 1D synthetic spatially-varying convolution task of the CoordGate paper (arXiv 2401.04680,
Fig. 3), whose exact definition is not public; this is our documented version.

**Task.**  Signals of ``n`` samples are blurred by a Gaussian whose width depends on the output
position, ``σ(i) = σ_min + (σ_max − σ_min) · s(i / (n − 1))`` with the profile ``s`` a ramp
(``ramp``: s(t) = t) or a bump (``bump``: s(t) = sin²(πt)).  The true operator is the matrix
``A[i, j] = exp(−(i − j)² / 2σ(i)²) / Z_i`` (``Z_i`` the sum over all integers ``j``, so rows
lose weight where the kernel leaves the signal, as with zero padding); ``y = A x``.  Inputs are
white noise smoothed by a Gaussian of ``signal_sigma`` samples and scaled to unit variance.

**Models** (``conv_factory(dims=1)``, so the weighted kinds apply): ``conv`` — a plain conv stack
(Conv1d-ReLU layers); ``coordconv`` — the same with coordinate channels into its first layer;
``coordgate`` — one :class:`~wconv.nn.CoordGate` (k×k conv with ``filters`` channels ⊙ coordinate
gate → 1×1), linear in x; ``unet`` — the study's U-Net in 1D; ``dense`` — one n×n linear layer
(the fully connected bound, n² parameters).  ``shift_invariant`` is no network but the best single
kernel in closed form: least squares of ``y_i ≈ Σ_t h_t x_{i+t}`` over all training pairs, the
limit any shift-invariant linear model (e.g. a linear conv stack) cannot beat.

**Effective matrix.**  Column ``j`` of a model's matrix is ``f(e_j) − f(0)`` (unit impulse
response, bias removed), in eval mode.  This is exact for models linear in x (``coordgate``,
``dense``, ``shift_invariant``) and the impulse response around 0 for the ReLU networks.

**Metrics.**  Held-out PSNR ``10 log10(range² / MSE)`` with ``range`` the peak-to-peak of the
held-out targets; inference time is the median over ``repeats`` timed forward passes of the
whole held-out batch (after warm-up); parameters counted over ``model.parameters()``.
"""

from __future__ import annotations

import itertools
import math
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wconv.io import atomic_open, write_json
from wconv.models.unet import UNet
from wconv.nn import ConvFactory, CoordConv, CoordGate, conv_factory

MODELS_1D: tuple[str, ...] = ("conv", "coordconv", "coordgate", "unet", "dense")
PROFILES: tuple[str, ...] = ("ramp", "bump")


def sigma_profile(n: int, sigma_min: float, sigma_max: float, profile: str) -> np.ndarray:
    """``σ(i)`` for ``i = 0 … n − 1`` (module docstring)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {list(PROFILES)}")
    if not 0 < sigma_min <= sigma_max:
        raise ValueError(f"need 0 < sigma_min <= sigma_max, got {sigma_min}, {sigma_max}")
    t = np.linspace(0.0, 1.0, n)
    shape = t if profile == "ramp" else np.sin(math.pi * t) ** 2
    return sigma_min + (sigma_max - sigma_min) * shape


def true_matrix(sigmas: np.ndarray) -> np.ndarray:
    """``A[i, j] = exp(−(i − j)² / 2σ(i)²) / Z_i`` with ``Z_i`` summed over all integers."""
    n = len(sigmas)
    offsets = np.arange(n)[None, :] - np.arange(n)[:, None]
    rows = np.exp(-(offsets**2) / (2 * sigmas[:, None] ** 2))
    wide = np.arange(-4 * n, 4 * n + 1)
    norm = np.exp(-(wide[None, :] ** 2) / (2 * sigmas[:, None] ** 2)).sum(1, keepdims=True)
    return rows / norm


def random_signals(count: int, n: int, signal_sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``count`` smooth random signals ``(count, n)``: smoothed white noise, unit variance."""
    pad = math.ceil(4 * signal_sigma)
    noise = rng.standard_normal((count, n + 2 * pad))
    taps = np.exp(-(np.arange(-pad, pad + 1) ** 2) / (2 * signal_sigma**2))
    smooth = np.stack([np.convolve(row, taps / taps.sum(), mode="valid") for row in noise])
    return smooth / smooth.std()


def shift_invariant_fit(x: np.ndarray, y: np.ndarray, size: int) -> np.ndarray:
    """The single kernel ``h`` (odd ``size``) minimising ``Σ ||y − h ⋆ x||²`` over all pairs,
    with zero padding: an ordinary least-squares solve over the ``size`` taps."""
    half = size // 2
    padded = np.pad(x, ((0, 0), (half, half)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, size, axis=1)  # (N, n, size)
    kernel, *_ = np.linalg.lstsq(windows.reshape(-1, size), y.reshape(-1), rcond=None)
    return kernel


def kernel_matrix(kernel: np.ndarray, n: int) -> np.ndarray:
    """The n×n matrix of correlating with ``kernel`` under zero padding."""
    half = len(kernel) // 2
    matrix = np.zeros((n, n))
    for t, tap in enumerate(kernel):
        matrix += tap * np.eye(n, k=t - half)
    return matrix


class ConvStack(nn.Sequential):
    """``layers`` 'same' convs (1 → width → … → 1) with ReLU between; optionally CoordConv first."""

    def __init__(
        self, conv: ConvFactory, layers: int, width: int, kernel_size: int, coord: bool
    ) -> None:
        modules: list[nn.Module] = []
        channels = [1] + [width] * (layers - 1) + [1]
        for i, (cin, cout) in enumerate(itertools.pairwise(channels)):
            if coord and i == 0:
                modules.append(CoordConv(cin, cout, kernel_size, conv=conv))
            else:
                modules.append(conv(cin, cout, kernel_size, padding=kernel_size // 2))
            if i < layers - 1:
                modules.append(nn.ReLU())
        super().__init__(*modules)


class Dense(nn.Module):
    """One n×n linear map (no structure): the fully connected reference."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n, n)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x.flatten(1)).unsqueeze(1)


def build_model(name: str, n: int, conv: ConvFactory, options: dict[str, Any]) -> nn.Module:
    """One model of :data:`MODELS_1D` for signals of ``n`` samples (``conv.dims`` must be 1)."""
    if conv.dims != 1:
        raise ValueError(f"the 1D task needs a ConvFactory with dims=1, got dims={conv.dims}")
    if name in ("conv", "coordconv"):
        return ConvStack(
            conv, options["stack_layers"], options["width"], options["stack_kernel"],
            coord=name == "coordconv",
        )  # fmt: skip
    if name == "coordgate":
        return CoordGate(
            1, 1, options["gate_kernel"], conv=conv, filters=options["filters"],
            encoder_width=options["encoder_width"], encoder_depth=options["encoder_depth"],
        )  # fmt: skip
    if name == "unet":
        return UNet(conv, 1, 1, options["unet_depth"], options["width"], residual=True)
    if name == "dense":
        return Dense(n)
    raise ValueError(f"unknown 1D model {name!r}; choose from {list(MODELS_1D)}")


def effective_matrix(model: nn.Module, n: int, device: torch.device) -> np.ndarray:
    """Column ``j`` = ``f(e_j) − f(0)`` (module docstring), float64 ``(n, n)``."""
    model.eval()
    with torch.no_grad():
        dtype = next(model.parameters()).dtype
        impulses = torch.cat([torch.zeros(1, n), torch.eye(n)]).unsqueeze(1).to(device, dtype)
        out = model(impulses).squeeze(1).double().cpu()
    return (out[1:] - out[:1]).T.numpy()


def psnr(prediction: np.ndarray, target: np.ndarray) -> float:
    """``10 log10(range² / MSE)`` with ``range`` = peak-to-peak of ``target``."""
    mse = float(np.mean((prediction - target) ** 2))
    return 10 * math.log10(float(np.ptp(target)) ** 2 / mse) if mse > 0 else math.inf


def median_seconds(model: nn.Module, x: Tensor, repeats: int) -> float:
    """Median wall time of ``model(x)`` over ``repeats`` runs after 3 warm-up runs."""
    model.eval()
    times = []
    with torch.inference_mode():
        for i in range(repeats + 3):
            if x.device.type == "cuda":
                torch.cuda.synchronize(x.device)
            start = time.perf_counter()
            model(x)
            if x.device.type == "cuda":
                torch.cuda.synchronize(x.device)
            if i >= 3:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_coordgate_1d(
    out_dir: Path,
    *,
    models: Sequence[str] = MODELS_1D,
    n: int = 64,
    sigma_min: float = 0.5,
    sigma_max: float = 4.0,
    profile: str = "ramp",
    signal_sigma: float = 1.0,
    train_signals: int = 2048,
    test_signals: int = 512,
    steps: int = 400,
    batch_size: int = 64,
    lr: float = 3e-3,
    conv: str = "standard",
    density: float = 1.0,
    stack_layers: int = 4,
    stack_kernel: int = 7,
    width: int = 16,
    gate_kernel: int = 25,
    filters: int = 8,
    encoder_width: int = 32,
    encoder_depth: int = 2,
    unet_depth: int = 2,
    repeats: int = 20,
    seed: int = 0,
    device: str = "cpu",
) -> dict[str, Any]:
    """Train every model in ``models`` on the task, then write ``out_dir/results.json`` (metrics
    per model and of the shift-invariant least-squares fit) and ``out_dir/matrices.npz``
    (``true``, ``<model>`` effective matrices, ``shift_invariant``, ``sigma``, and held-out
    examples ``x``, ``y``, ``pred_<model>``), both atomically.  Returns the results dict."""
    unknown = sorted(set(models) - set(MODELS_1D))
    if unknown or not models:
        raise ValueError(f"unknown 1D model(s) {unknown}; choose from {list(MODELS_1D)}")
    if n < 4 or steps < 1 or train_signals < 1 or test_signals < 1 or gate_kernel % 2 == 0:
        raise ValueError("need n >= 4, steps, train/test signals >= 1 and an odd gate_kernel")
    out_dir = Path(out_dir)
    dev = torch.device(device)
    rng = np.random.default_rng(seed)
    sigmas = sigma_profile(n, sigma_min, sigma_max, profile)
    matrix = true_matrix(sigmas)
    x_train = random_signals(train_signals, n, signal_sigma, rng)
    x_test = random_signals(test_signals, n, signal_sigma, rng)
    y_train, y_test = x_train @ matrix.T, x_test @ matrix.T

    ls_size = 2 * math.ceil(3 * sigma_max) + 1
    kernel = shift_invariant_fit(x_train, y_train, ls_size)
    ls_matrix = kernel_matrix(kernel, n)
    ls_pred = x_test @ ls_matrix.T
    results: dict[str, Any] = {
        "task": {
            "n": n, "sigma_min": sigma_min, "sigma_max": sigma_max, "profile": profile,
            "signal_sigma": signal_sigma, "train_signals": train_signals,
            "test_signals": test_signals, "seed": seed, "steps": steps, "conv": conv,
            "density": density, "device": device, "threads": torch.get_num_threads(),
        },
        "shift_invariant": {
            "psnr": psnr(ls_pred, y_test), "mse": float(np.mean((ls_pred - y_test) ** 2)),
            "params": ls_size,
        },
        "models": {},
    }  # fmt: skip
    arrays: dict[str, np.ndarray] = {
        "true": matrix, "shift_invariant": ls_matrix, "sigma": sigmas,
        "x": x_test[:4], "y": y_test[:4], "pred_shift_invariant": ls_pred[:4],
    }  # fmt: skip

    options = {
        "stack_layers": stack_layers, "stack_kernel": stack_kernel, "width": width,
        "gate_kernel": gate_kernel, "filters": filters, "encoder_width": encoder_width,
        "encoder_depth": encoder_depth, "unet_depth": unet_depth,
    }  # fmt: skip
    factory = conv_factory(conv, density, dims=1)  # type: ignore[arg-type]
    xt = torch.as_tensor(x_train, dtype=torch.float32, device=dev).unsqueeze(1)
    yt = torch.as_tensor(y_train, dtype=torch.float32, device=dev).unsqueeze(1)
    xv = torch.as_tensor(x_test, dtype=torch.float32, device=dev).unsqueeze(1)
    for name in models:
        torch.manual_seed(seed)
        model = build_model(name, n, factory, options).to(dev)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
        generator = torch.Generator().manual_seed(seed)
        model.train()
        start = time.perf_counter()
        for _ in range(steps):
            batch = torch.randint(0, train_signals, (batch_size,), generator=generator).to(dev)
            loss = F.mse_loss(model(xt[batch]), yt[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        train_seconds = time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            pred = model(xv).squeeze(1).double().cpu().numpy()
        results["models"][name] = {
            "psnr": psnr(pred, y_test),
            "mse": float(np.mean((pred - y_test) ** 2)),
            "params": sum(p.numel() for p in model.parameters()),
            "inference_seconds": median_seconds(model, xv, repeats),
            "train_seconds": train_seconds,
            "final_train_loss": float(loss.item()),
        }
        arrays[name] = effective_matrix(model, n, dev)
        arrays[f"pred_{name}"] = pred[:4]

    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "results.json", results)
    with atomic_open(out_dir / "matrices.npz", "wb") as handle:
        np.savez(handle, **arrays)
    return results
