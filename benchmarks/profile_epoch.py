"""Where one epoch of the real engine spends its time: ``torch.profiler`` around one training epoch
of ``wconv``'s own epoch function (after two warm-up epochs: compilation, CUDA-graph recording).

Prints the wall seconds of the epoch, the device's busy seconds (the sum of its kernels' times),
their ratio (how far the step is from keeping the device busy: a low ratio means the host or the
launches set the pace, not the kernels), kernels per training step, and the operations and
kernels that take the most device time. Data: ``engine_speed.py``'s synthetic CIFAR-100 of the
paper's size (45,000 train images).

    python benchmarks/profile_epoch.py --setting bf16+cl+compile+stepgraph --kind standard
    python benchmarks/profile_epoch.py --device cpu --max-images 512    # a quick check here
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from wconv.train.engine import static_batches

sys.path.insert(0, str(Path(__file__).resolve().parent))
import engine_speed  # the benchmark's data writer and engine-epoch builder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model", default="resnet56", choices=["resnet56", "vgg16_bn"])
    parser.add_argument("--kind", default="standard", choices=engine_speed.KINDS)
    parser.add_argument("--setting", default="bf16+cl+compile+stepgraph")
    parser.add_argument("--max-images", type=int, default=engine_speed.CIFAR_TRAIN,
                        help="train images (default: the paper's 45,000)")  # fmt: skip
    parser.add_argument("--rows", type=int, default=20)
    args = parser.parse_args()
    # engine_speed's run configuration reads these.
    run_args = argparse.Namespace(epochs=3, device=args.device, threads=None)
    compute = engine_speed.parse_setting(args.setting)
    with tempfile.TemporaryDirectory(prefix="profile_epoch_") as scratch:
        root = Path(scratch) / "data"
        engine_speed.write_cifar(root, args.max_images, 1024)
        epoch = engine_speed.engine_epochs(root, Path(scratch) / "run", args.model, args.kind,
                                           compute, run_args)  # fmt: skip
        for _ in range(2):
            epoch()
        activities = [ProfilerActivity.CPU]
        if args.device == "cuda":
            activities.append(ProfilerActivity.CUDA)
        started = time.perf_counter()
        with profile(activities=activities) as prof:
            seconds = epoch()
        wall = time.perf_counter() - started
    # CUDA graphs replay one shape: the short last batch is dropped (docs/performance.md).
    static = static_batches({"compute": compute})
    steps = args.max_images // 128 if static else -(-args.max_images // 128)
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    busy = sum(e.time_range.elapsed_us() for e in kernels) / 1e6
    name = engine_speed.device_name(torch.device(args.device))
    print(f"{args.model} {args.kind} {args.setting} on {name}")
    print(f"epoch: {seconds:.3f} s (engine's timer; {wall:.3f} s with the profiler's own costs)")
    print(f"device busy: {busy:.3f} s = {busy / seconds:.1%} of the epoch; "
          f"{len(kernels) / steps:.0f} kernels per step over {steps} steps")  # fmt: skip
    sort = "device_time_total" if kernels else "cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=args.rows, max_name_column_width=60))


if __name__ == "__main__":
    main()
