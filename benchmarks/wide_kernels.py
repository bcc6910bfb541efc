"""What does a 5×5 NAFNet / CGNet cost over its 3×3 twin? Both readings of ``kernel_size``, timed.

The paper times its 5×5 denoising networks at ×4.3 (NAFNet), ×3.6 (CGNet) and ×3.9 (DnCNN) the
seconds per epoch of their 3×3 twins (Table 6, read from ``wconv/report/published.yaml``). This
script measures the same ratio here for DnCNN (every conv widens) and for NAFNet / CGNet under
both readings of their ``enlarge`` option: ``spatial`` (the convs that are 3×3 in the published
design) and ``all`` (also every block's expansion, projection and FFN conv; at k = 3 these are
3×3 too). Printed per model and reading: FLOPs per 64×64 image and their ratio k5/k3
(``torch.utils.flop_counter.FlopCounterMode``, counted on the meta device), the measured seconds
per training step (forward, MSE loss, backward, Adam step; standard conv; batch 16 of 3×64×64 as
the paper's recipe) and their ratio k5/k3 beside the published one; also the 5×5 net's FLOPs
over the published 3×3 design (the ``spatial`` k = 3 net: a reading in which only the 5×5 net
widens its 1×1 convs) and the 3×3 net's FLOPs over DnCNN's, beside the paper's 3×3 epoch-time
ratio to DnCNN.

Timing: every variant of a model (k = 3 / 5 × reading) first runs ``--warmup`` steps, then
``--repeats`` rounds in which each variant runs ``--steps`` steps in turn (interleaved, so machine
load hits all variants alike); a step's time is the median over rounds and the ratio the median
of the per-round ratios k5/k3 (also given: fastest k5 step over fastest k3 step, which load on a
shared machine disturbs less). Timing is device-synchronised; torch's default thread count.

The published configs (``nafnet_width32``, ``cgnet_sidd``) are the default; where one step of a
variant would take more than ``--limit`` seconds (estimated before running it: one timed step of
the config's k = 3 spatial net, scaled by the FLOPs ratio of the variant), that reading is measured
on the small config (``nafnet``, ``cgnet``) instead and the output says so. Writes
results/benchmarks/wide_kernels.csv (with the device name and thread count).

    .venv/bin/python benchmarks/wide_kernels.py [--device cuda] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from engine_speed import published_seconds  # the sibling benchmark: one reader of the data file
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from train_speed import _sync

from wconv.io import write_csv
from wconv.models import create
from wconv.train.engine import device_name

KERNELS = (3, 5)
READINGS = ("spatial", "all")
ENLARGEABLE = ("nafnet", "nafnet_width32", "cgnet", "cgnet_sidd")
"""Models with the ``enlarge`` option (both readings are measured)."""
SMALL = {"nafnet_width32": "nafnet", "cgnet_sidd": "cgnet"}
"""The small config measured instead of a published one whose step would exceed ``--limit``."""
PAPER_MODEL = {"nafnet_width32": "nafnet", "cgnet_sidd": "cgnet"}
"""The published table's model name of a config (its own name where not listed)."""


def options(reading: str | None, kernel_size: int) -> dict[str, Any]:
    extra: dict[str, Any] = {"kernel_size": kernel_size}
    if reading is not None:  # DnCNN has no reading: every conv is 3×3 and widens
        extra["enlarge"] = reading
    return extra


def flops(name: str, extra: dict[str, Any], side: int) -> int:
    with torch.device("meta"):
        model = create(name, **extra)
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model.eval()(torch.empty(1, 3, side, side))
    return counter.get_total_flops()


class Variant:
    """One net (config, reading, kernel size) with its optimizer and step times."""

    def __init__(self, name: str, reading: str | None, k: int, device: torch.device) -> None:
        self.name, self.reading, self.k = name, reading, k
        torch.manual_seed(0)
        self.model = create(name, **options(reading, k)).to(device).train()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.device = device
        self.times: list[float] = []

    def run(self, x: torch.Tensor, target: torch.Tensor, steps: int) -> float:
        """Seconds per step over ``steps`` training steps (0 for none)."""
        if steps < 1:
            return 0.0
        _sync(self.device)
        start = time.perf_counter()
        for _ in range(steps):
            loss = nn.functional.mse_loss(self.model(x), target)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        _sync(self.device)
        return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", nargs="+", default=["dncnn", "nafnet_width32", "cgnet_sidd"])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--side", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per variant")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved timed rounds")
    parser.add_argument("--steps", type=int, default=1, help="steps per variant and round")
    parser.add_argument("--limit", type=float, default=20.0, help="seconds per step (see doc)")
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/wide_kernels.csv"))
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    where = device_name(device)
    threads = torch.get_num_threads()
    dncnn_flops = flops("dncnn", options(None, 3), args.side)
    x = torch.rand(args.batch, 3, args.side, args.side, device=device)
    target = torch.rand_like(x)
    print(
        f"batch {args.batch} of 3×{args.side}×{args.side}, standard conv, fp32, on {where}, "
        f"{threads} torch threads, torch {torch.__version__}"
    )

    rows: list[dict[str, Any]] = []
    for requested in args.models:
        readings: tuple[str | None, ...] = READINGS if requested in ENLARGEABLE else (None,)
        probe: Variant | None = None
        probe_seconds = 0.0
        groups: dict[str | None, tuple[str, str]] = {}  # reading -> (config, note)
        for reading in readings:
            config, note = requested, ""
            if requested in SMALL:
                if probe is None:  # one timed step of the k = 3 spatial net (also its warm-up)
                    probe = Variant(requested, "spatial", 3, device)
                    probe_seconds = probe.run(x, target, 1)
                base = flops(requested, options("spatial", 3), args.side)
                worst = flops(requested, options(reading, 5), args.side) / base
                estimate = probe_seconds * worst
                if estimate > args.limit:
                    config = SMALL[requested]
                    note = (
                        f"{requested} {reading} k5 step estimated {estimate:.0f} s "
                        f"(> {args.limit:.0f} s): measured on the small config {config}"
                    )
                    print(f"  note: {note}")
            groups[reading] = (config, note)

        variants: list[Variant] = []
        for reading, (config, _) in groups.items():
            for k in KERNELS:
                if probe is not None and (config, reading, k) == (probe.name, "spatial", 3):
                    variants.append(probe)
                else:
                    variants.append(Variant(config, reading, k, device))
        for variant in variants:
            if variant is not probe:
                variant.run(x, target, args.warmup)
        for _ in range(args.repeats):
            for variant in variants:
                variant.times.append(variant.run(x, target, args.steps))

        for reading, (config, note) in groups.items():
            k3, k5 = (
                next(v for v in variants if v.reading == reading and v.k == k) for k in KERNELS
            )
            time_ratio = statistics.median(b / a for a, b in zip(k3.times, k5.times, strict=True))
            fastest = min(k5.times) / min(k3.times)  # robust to load that hits some rounds only
            f3, f5 = (flops(config, options(reading, k), args.side) for k in KERNELS)
            name = PAPER_MODEL.get(requested, requested)
            p3, p5 = (published_seconds("denoising", name, k)["standard"] for k in (3, 5))
            paper_ratio = p5 / p3 if p3 and p5 else None
            # The 5×5 net over the published 3×3 design (the spatial k = 3 net) of the config,
            # and the 3×3 net's FLOPs over DnCNN's beside the paper's epoch-time ratio to DnCNN.
            cross = f5 / (f3 if reading in (None, "spatial") else flops(config, {}, args.side))
            paper_dncnn = published_seconds("denoising", "dncnn")["standard"]
            paper_vs_dncnn = p3 / paper_dncnn if p3 and paper_dncnn else None
            label = reading or "all convs"
            print(
                f"{config:15s} {label:9s}  GFLOPs/image k3 {f3 / 1e9:7.3f} k5 {f5 / 1e9:7.3f}  "
                f"FLOPs k5/k3 ×{f5 / f3:.2f}  s/step k3 {statistics.median(k3.times):7.3f} "
                f"k5 {statistics.median(k5.times):7.3f}  time k5/k3 ×{time_ratio:.2f} "
                f"(fastest ×{fastest:.2f})  "
                f"(published {name}: "
                + ("–" if paper_ratio is None else f"{p5:.2f}/{p3:.2f} s = ×{paper_ratio:.2f}")
                + ")"
            )
            print(
                f"{'':25s}  FLOPs k5 over the spatial 3×3 net (1×1s as designed) ×{cross:.2f}; "
                f"FLOPs k3 over DnCNN's ×{f3 / dncnn_flops:.3f} "
                f"(published 3×3 epoch time {name}/DnCNN: "
                + ("–" if paper_vs_dncnn is None else f"×{paper_vs_dncnn:.2f}")
                + ")"
            )
            rows.append(
                {
                    "model": config,
                    "paper_model": name,
                    "enlarge": reading or "",
                    "gflops_k3": round(f3 / 1e9, 4),
                    "gflops_k5": round(f5 / 1e9, 4),
                    "flops_k5_over_k3": round(f5 / f3, 4),
                    "seconds_per_step_k3": round(statistics.median(k3.times), 4),
                    "seconds_per_step_k5": round(statistics.median(k5.times), 4),
                    "time_k5_over_k3": round(time_ratio, 4),
                    "time_k5_over_k3_fastest": round(fastest, 4),
                    "paper_seconds_per_epoch_k3": "" if p3 is None else p3,
                    "paper_seconds_per_epoch_k5": "" if p5 is None else p5,
                    "paper_k5_over_k3": "" if paper_ratio is None else round(paper_ratio, 4),
                    "flops_k5_over_spatial_k3": round(cross, 4),
                    "flops_k3_over_dncnn_k3": round(f3 / dncnn_flops, 4),
                    "paper_k3_over_dncnn_k3": (
                        "" if paper_vs_dncnn is None else round(paper_vs_dncnn, 4)
                    ),
                    "batch": args.batch,
                    "side": args.side,
                    "repeats": args.repeats,
                    "device": where,
                    "threads": threads,
                    "torch": torch.__version__,
                    "note": note,
                }
            )
        del variants, probe
    write_csv(args.out, rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
