"""Weighted vs standard convolution: forward+backward time on ResNet-56 stage shapes.

For each shape (16/32/64 channels at 32/16/8 px, batch 128, kernels 3 and 5) the two layers hold
the same weights and run interleaved (standard, weighted, standard, ...) so drift in machine load
hits both; the printed ratio is the median of per-pair ratios. A third column times the folded
weighted layer in inference (no grad) against the standard one. Writes
results/benchmarks/layer_overhead.csv.

    python benchmarks/layer_overhead.py [--device cuda] [--repeats 30] [--batch 128]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from wconv.io import write_csv
from wconv.nn import WeightedConv2d

SHAPES = [(16, 32), (32, 16), (64, 8)]  # (channels, pixels) of ResNet-56's three stages


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def measure(
    channels: int, pixels: int, kernel: int, batch: int, repeats: int, device: torch.device
) -> dict[str, float]:
    torch.manual_seed(0)
    standard = nn.Conv2d(channels, channels, kernel, padding=kernel // 2, bias=False).to(device)
    density = [0.8] if kernel == 3 else [0.5, 0.9]
    weighted = WeightedConv2d.from_conv(standard, density=density).to(device)
    folded = weighted.fold()
    x = torch.randn(batch, channels, pixels, pixels, device=device, requires_grad=True)
    grad = torch.randn(batch, channels, pixels, pixels, device=device)

    def train_step(layer: nn.Module):
        return lambda: layer(x).backward(grad)

    def infer(layer: nn.Module):
        def run() -> None:
            with torch.no_grad():
                layer(x)

        return run

    for fn in (train_step(standard), train_step(weighted), infer(folded), infer(standard)):
        for _ in range(3):  # warm-up: allocator, cuDNN algorithm choice
            fn()
    train_ratios, fold_ratios, std_times = [], [], []
    for _ in range(repeats):
        t_std = _time(train_step(standard), device)
        t_w = _time(train_step(weighted), device)
        train_ratios.append(t_w / t_std)
        std_times.append(t_std)
        t_inf = _time(infer(standard), device)
        t_fold = _time(infer(folded), device)
        fold_ratios.append(t_fold / t_inf)
    return {
        "channels": channels,
        "pixels": pixels,
        "kernel": kernel,
        "batch": batch,
        "standard_ms": 1000 * statistics.median(std_times),
        "weighted_over_standard": statistics.median(train_ratios),
        "folded_over_standard_inference": statistics.median(fold_ratios),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/layer_overhead.csv"))
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device: {name}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    rows = []
    for kernel in (3, 5):
        for channels, pixels in SHAPES:
            row = measure(channels, pixels, kernel, args.batch, args.repeats, device)
            row["device"] = name
            rows.append(row)
            print(
                f"{kernel}x{kernel} C={channels:3d} {pixels:2d}px: standard "
                f"{row['standard_ms']:8.2f} ms  weighted/standard "
                f"{row['weighted_over_standard']:.3f}  folded/standard (inference) "
                f"{row['folded_over_standard_inference']:.3f}"
            )
    write_csv(args.out, rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
