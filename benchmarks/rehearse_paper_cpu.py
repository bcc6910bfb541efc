"""Rehearse the paper preset's cells on this CPU, on full-size data in the prepared format.

No machine here reaches the data hosts and no GPU is lent, so this gives what a CPU can say about
the paper grid: seconds per optimizer step of every paper model (fp32, eager), steps per epoch
at full size, and the peak host memory of a training process holding the full-size data (CIFAR-100
45,000 train images; DIV2K 720 x 32 patches of 64x64 plus 256x256 val/test crops, as the paper
preset cuts them). The data are written by ``engine_speed.write_cifar`` / ``write_div2k``
(synthetic pixels in the study's own prepared layout; the step's cost does not depend on them);
the download/prepare path itself is measured by ``prepare_fullsize.py``.

Each run id goes through ``wconv rehearse --config`` in its own process (its rehearsal.json
records its peak RSS), then ``wconv estimate`` tabulates them. CPU seconds are not GPU seconds:
the estimate counts these hours apart from GPU-hours.

    .venv/bin/python benchmarks/rehearse_paper_cpu.py --out results/rehearsals/paper-cpu
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_speed import CIFAR_TRAIN, DIV2K_TRAIN, write_cifar, write_div2k

from wconv.study import load_params, run_config

REPO = Path(__file__).resolve().parents[1]
WCONV = str(Path(sys.executable).parent / "wconv")  # the CLI of this environment
# One cell per paper model: the step's cost is the model's, the same for every density and seed.
RUN_IDS = [
    "cls/resnet56/standard/k3/s0",
    "cls/resnet56/weighted-d0.8/k3/s0",
    "cls/vgg16_bn/standard/k3/s0",
    "cls/nin/standard/k3/s0",
    "cls/gmlp/standard/k3/s0",
    "cls/gac_snn/standard/k3/s0",
    "cls/efficientnet_b0/standard/k3/s0",
    "den/dncnn/standard/k3/s0",
    "den/nafnet/standard/k3/s0",
    "den/nafnet/standard/k5/s0",
    "den/cgnet/standard/k3/s0",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "results/rehearsals/paper-cpu")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--max-val-batches", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--run-ids", nargs="+", default=RUN_IDS)
    # For a model whose paper batch does not fit this machine; rehearsal.json records the batch.
    parser.add_argument("--batch-size", type=int, default=None, help="override the recipe's batch")
    args = parser.parse_args()
    params = load_params(REPO / "params.yaml", "paper")
    with tempfile.TemporaryDirectory(prefix="rehearse_paper_") as scratch:
        root = Path(scratch) / "data"
        write_cifar(root, CIFAR_TRAIN, 10_000)  # val gets 10,000 too (the paper: 5,000)
        write_div2k(root, DIV2K_TRAIN, 100)
        for run_id in args.run_ids:
            config = run_config(params, run_id)
            config["data_root"] = str(root)
            config["compute"] = {**config["compute"], "device": "cpu", "amp": "none",
                                 "channels_last": False, "compile": False, "cuda_graph": False,
                                 "threads": args.threads}  # fmt: skip
            if args.batch_size is not None:
                config["recipe"] = {**config["recipe"], "batch_size": args.batch_size}
            path = Path(scratch) / "configs" / f"{run_id.replace('/', '_')}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(yaml.safe_dump(config, sort_keys=False))
            command = [WCONV, "rehearse", "--config", str(path),
                       "--out", str(args.out / run_id), "--steps", str(args.steps),
                       "--max-val-batches", str(args.max_val_batches)]  # fmt: skip
            print(f"{run_id}: rehearsing", flush=True)
            subprocess.run(command, check=True)
    subprocess.run([WCONV, "estimate", "--rehearsals", str(args.out),
                    "--out", str(args.out / "estimate.csv")], check=True)  # fmt: skip


if __name__ == "__main__":
    main()
