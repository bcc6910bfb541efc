"""Training speed of ResNet-56 (batch 128, 32×32 input, 100 classes): standard vs weighted conv.

Both twins start from the same weights and train interleaved, a block of steps each, so machine
load hits both alike; the ratio is the median of per-block ratios. Timing is device-synchronised
and covers forward, backward and the SGD step (the data are on the device already, as in the
engine). Prints images/s and the projected seconds per CIFAR-100 epoch (45,000 training images
after the validation split) beside the paper's published Table 4 seconds per epoch (A100-64GB),
read from ``wconv/report/published.yaml``.
Writes results/benchmarks/train_speed.csv.

    python benchmarks/train_speed.py [--device cuda] [--amp bf16] [--channels-last] [--compile]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from pathlib import Path

import torch
from engine_speed import published_seconds  # the sibling benchmark: one reader of the data file
from torch import nn

from wconv.io import write_csv
from wconv.models import create

TRAIN_IMAGES = 45_000


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model", default="resnet56")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5, help="steps per timed block")
    parser.add_argument("--blocks", type=int, default=6, help="interleaved blocks per twin")
    parser.add_argument("--amp", choices=["none", "bf16", "fp16"], default="none")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/train_speed.csv"))
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    memory = torch.channels_last if args.channels_last else torch.contiguous_format
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    twins: dict[str, tuple[nn.Module, torch.optim.Optimizer]] = {}
    for kind in ("standard", "weighted"):
        torch.manual_seed(0)
        model = create(args.model, conv=kind, density=0.75, num_classes=100)
        model = model.to(device, memory_format=memory)
        step_model = torch.compile(model) if args.compile else model
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        twins[kind] = (step_model, optimizer)

    x = torch.randn(args.batch, 3, 32, 32, device=device).contiguous(memory_format=memory)
    y = torch.randint(0, 100, (args.batch,), device=device)
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp)

    def block(kind: str, steps: int) -> float:
        model, optimizer = twins[kind]
        model.train()
        _sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            autocast = (
                torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
            )
            with autocast:
                loss = criterion(model(x).float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        _sync(device)
        return time.perf_counter() - start

    for kind in twins:  # warm-up: cuDNN autotuning, compilation, allocator
        block(kind, 3)
    times: dict[str, list[float]] = {"standard": [], "weighted": []}
    for _ in range(args.blocks):
        for kind in ("standard", "weighted"):
            times[kind].append(block(kind, args.steps))
    ratios = [w / s for s, w in zip(times["standard"], times["weighted"], strict=True)]
    rows = []
    print(
        f"{args.model} batch {args.batch} on {name} (amp {args.amp}, channels_last "
        f"{args.channels_last}, compile {args.compile}), torch {torch.__version__}"
    )
    paper = published_seconds("classification", args.model)
    for kind, values in times.items():
        published = paper.get(kind)
        per_image = statistics.median(values) / (args.steps * args.batch)
        epoch = per_image * TRAIN_IMAGES
        rows.append(
            {
                "model": args.model,
                "conv": kind,
                "device": name,
                "amp": args.amp,
                "images_per_s": 1 / per_image,
                "seconds_per_epoch": epoch,
                "paper_a100_seconds_per_epoch": "" if published is None else published,
            }
        )
        shown = "not published" if published is None else f"{published:.0f} s"
        print(
            f"  {kind:9s} {1 / per_image:9.1f} img/s  projected {epoch:8.1f} s/epoch "
            f"(published, A100: {shown})"
        )
    ratio = statistics.median(ratios)
    paper_ratio = (
        f"{paper['weighted'] / paper['standard']:.3f}"
        if paper["weighted"] and paper["standard"]
        else "not published"
    )
    print(
        f"  weighted/standard time ratio (median of {len(ratios)} interleaved blocks): "
        f"{ratio:.3f}  (published: {paper_ratio})"
    )
    for row in rows:
        row["weighted_over_standard"] = ratio
    write_csv(args.out, rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
