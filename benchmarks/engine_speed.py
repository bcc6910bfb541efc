"""Seconds per epoch of the real training engine (``wconv.train.engine.train_run``).

Synthetic data in the study's own prepared format (written where ``wconv data prepare`` would
put it, so the engine loads it through ``load_split`` exactly as in a study run):

* CIFAR-100 shaped: 45,000 train / 5,000 val / 10,000 test uint8 3x32x32 images, 100 classes
  (the paper preset's ``val_fraction: 0.1`` of the 50,000 official train images);
* DIV2K as the paper preset cuts it: 720 train images x 32 patches of 64x64 = 23,040 patches,
  256x256 centre crops for val/test, degraded by Gaussian noise sigma = 0.01 (stored float16).

Pixel content is random: the step's cost does not depend on it. For every model, compute setting
and repeat, the conv kinds (standard / weighted / learned) run one after another (interleaved, in
reverse order every other repeat), so machine load hits all kinds alike; each run trains
``--epochs`` epochs and the first is warm-up (cuDNN autotuning, compilation), excluded. The epoch
time is the engine's own ``epoch_seconds`` (device-synchronised wall time of the training batches
only; validation and testing are not timed and run on ``--eval-images`` images to keep the
benchmark short). Ratios are medians over repeats of the per-repeat ratio kind/standard, with their
quartiles from 4 repeats on. ``--max-steps`` trains only that many batches per epoch (a quick CPU
run); the full-epoch time is then projected linearly and marked ``projected``. ``--minimal`` adds,
per repeat, the same model and optimizer trained by a plain PyTorch loop over the same images
(classification models only: index, flip, normalise, forward, loss, backward, step; no engine,
checkpoints or history) and prints engine/minimal-loop, the engine's own overhead. ``--alternate
K`` measures every ratio more tightly: all kinds (and the minimal loop) are built side by side in
one process and train K rounds of one epoch each, through the engine's own epoch function (see
``run_alternating``); ``--repeats 0`` skips the whole runs. The paper's Table 4/6 seconds per epoch
(A100) are printed beside, read from ``wconv/report/published.yaml``.

    python benchmarks/engine_speed.py --models resnet56 --settings fp32 bf16+cl --epochs 3
    python benchmarks/engine_speed.py --models small_cnn resnet56 --max-steps 4 --device cpu

Settings are ``+``-joined tokens: ``fp32`` | ``bf16`` | ``fp16`` (autocast), ``cl``
(channels_last), ``compile`` (``torch.compile`` as the engine applies it, default mode) or
``graphs`` (``compute.compile: reduce-overhead``: CUDA graphs of the model, the short last batch
dropped), ``stepgraph`` (``compute.cuda_graph``: the whole training step replayed as one CUDA
graph, the short last batch dropped; with ``compile``, of inductor's kernels).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wconv.data import prepared_dir, store
from wconv.data.restoration import DEGRADED_DTYPE
from wconv.io import write_csv
from wconv.models import create
from wconv.train import engine
from wconv.train.engine import _sync, device_name, train_run

KINDS = ("standard", "weighted", "learned")
TASK_OF = {"resnet56": "classification", "vgg16_bn": "classification",
           "small_cnn": "classification", "nafnet": "denoising", "dncnn": "denoising"}  # fmt: skip
CIFAR = {"dataset": "cifar100", "val_fraction": 0.1, "split_seed": 0}
DIV2K = {"dataset": "div2k", "patch_size": 64, "patches_per_image": 32, "eval_crop": 256,
         "grayscale": False, "split_seed": 0,
         "noise": {"model": "gaussian", "sigma": 0.01, "clip": False, "seed": 0}}  # fmt: skip
# Full-size split sizes of the paper preset (see the module docstring).
CIFAR_TRAIN, DIV2K_TRAIN = 45_000, 720 * 32
RECIPE = {"classification": {"name": "paper_classification"},
          "denoising": {"name": "paper_denoising", "lr": 0.001}}  # fmt: skip
DENSITY = {"weighted": 0.75, "learned": 1.0}


def write_cifar(root: Path, n_train: int, n_eval: int) -> None:
    """A classification pool + split folder in the layout of ``wconv.data.classification``."""
    split = prepared_dir(CIFAR, root)
    if store.is_complete(split):
        return
    pool = split.parent
    pool.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    n_val = n_test = n_eval
    n = n_train + n_val + n_test
    store.save_npy(pool / "images.npy", rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8))
    store.save_npy(pool / "labels.npy", rng.integers(0, 100, n).astype(np.int64))
    store.write_manifest(pool, "classification-pool", {"synthetic": True}, n_test=n_test,
                         num_classes=100, class_names=[f"c{i}" for i in range(100)])  # fmt: skip
    split.mkdir(parents=True, exist_ok=True)
    idx = np.arange(n, dtype=np.int64)
    store.save_npz(split / "split_indices.npz", train=idx[:n_train],
                   val=idx[n_train : n_train + n_val], test=idx[n_train + n_val :])  # fmt: skip
    store.write_json(split / "stats.json", {"mean": [0.5] * 3, "std": [0.29] * 3, "from": "train"})
    store.write_manifest(split, "classification-split", {"synthetic": True},
                         sizes={"train": n_train, "val": n_val, "test": n_test})  # fmt: skip


def write_div2k(root: Path, n_train: int, n_eval: int) -> None:
    """Clean crops + float16 degraded images in the layout of ``wconv.data.restoration``."""
    noisy = prepared_dir(DIV2K, root)
    if store.is_complete(noisy):
        return
    crops = noisy.parent
    noisy.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    sizes = {"train": (n_train, 64), "val": (n_eval, 256), "test": (n_eval, 256)}
    for split, (n, s) in sizes.items():
        clean = rng.integers(0, 256, (n, 3, s, s), dtype=np.uint8)
        store.save_npy(crops / f"{split}_clean.npy", clean)
        noise = rng.standard_normal(clean.shape, dtype=np.float32) * np.float32(0.01)
        degraded = (clean / np.float32(255) + noise).astype(DEGRADED_DTYPE)
        store.save_npy(noisy / f"{split}_degraded.npy", degraded)
    store.write_manifest(crops, "restoration-crops", {"synthetic": True})
    store.write_manifest(noisy, "noise", {"synthetic": True}, description="gaussian sigma=0.01")


def parse_setting(setting: str) -> dict[str, Any]:
    tokens = set(setting.split("+"))
    # compile: torch.compile's default mode; graphs: reduce-overhead (CUDA graphs of the model,
    # static batches); stepgraph: compute.cuda_graph (the whole step one CUDA graph)
    unknown = tokens - {"fp32", "bf16", "fp16", "cl", "compile", "graphs", "stepgraph"}
    if (unknown or len(tokens & {"fp32", "bf16", "fp16"}) > 1 or {"compile", "graphs"} <= tokens
            or {"graphs", "stepgraph"} <= tokens):  # fmt: skip
        raise SystemExit(f"bad setting {setting!r}: tokens are fp32|bf16|fp16, cl, "
                         "compile|graphs, stepgraph (not with graphs)")  # fmt: skip
    amp = "bf16" if "bf16" in tokens else "fp16" if "fp16" in tokens else "none"
    compile_mode: bool | str = "reduce-overhead" if "graphs" in tokens else "compile" in tokens
    return {"amp": amp, "channels_last": "cl" in tokens, "compile": compile_mode,
            "cuda_graph": "stepgraph" in tokens}  # fmt: skip


def published_seconds(task: str, model: str, kernel_size: int = 3) -> dict[str, float | None]:
    """The paper's seconds per epoch (Table 4 / 6) from ``wconv/report/published.yaml``.

    Read directly from the data file: importing ``wconv.report`` would pull in pandas and
    seaborn, which a bare GPU image may lack and training does not need."""
    import yaml

    text = (resources.files("wconv") / "report" / "published.yaml").read_text()
    for entry in yaml.safe_load(text).get(task, []):
        names = (entry["model"], *entry.get("aliases", []))
        if entry.get("kernel_size") == kernel_size and model in names:
            return {k: entry[k].get("seconds_per_epoch") for k in ("standard", "weighted")}
    return {"standard": None, "weighted": None}


def run_config(
    root: Path, model: str, kind: str, compute: dict[str, Any], args: argparse.Namespace,
    run_id: str,
) -> dict[str, Any]:  # fmt: skip
    task = TASK_OF[model]
    config: dict[str, Any] = {
        "run_id": run_id,
        "task": task,
        "model": model,
        "conv": kind,
        "seed": 0,
        "data": CIFAR if task == "classification" else DIV2K,
        "data_root": str(root),
        "recipe": {**RECIPE[task], "epochs": args.epochs, "patience": args.epochs + 1},
        "compute": {"device": args.device, **compute, "threads": args.threads},
    }
    if kind != "standard":
        config["density"] = DENSITY[kind]
    if kind == "learned":
        config["density_range"] = [0.05, 1.5]
    return config


def run_once(
    root: Path, out: Path, model: str, kind: str, compute: dict[str, Any], args: argparse.Namespace
) -> list[float]:
    train_run(run_config(root, model, kind, compute, args, out.name), out)
    with (out / "history.csv").open() as f:
        return [float(r["epoch_seconds"]) for r in csv.DictReader(f) if r["epoch_seconds"]]


class MinimalLoop:
    """A plain PyTorch loop doing the engine's step for the paper recipe (index, flip, normalise,
    forward, label-smoothed loss, backward, the engine's SGD kernels; no engine, checkpoints or
    history) over the first ``n_train`` synthetic CIFAR images."""

    def __init__(self, root: Path, model: str, compute: dict[str, Any], device: torch.device,
                 n_train: int) -> None:  # fmt: skip
        pool = prepared_dir(CIFAR, root).parent
        self.images = torch.from_numpy(np.load(pool / "images.npy")[:n_train]).to(device)
        self.labels = torch.from_numpy(np.load(pool / "labels.npy")[:n_train]).to(device)
        self.device = device
        torch.manual_seed(0)
        self.memory_format = (torch.channels_last if compute["channels_last"]
                              else torch.contiguous_format)  # fmt: skip
        net = create(model, num_classes=100).to(device, memory_format=self.memory_format)
        mode = compute["compile"]  # False, True (default mode) or a torch.compile mode
        self.forward = (torch.compile(net, mode=mode if isinstance(mode, str) else None)
                        if mode else net)  # fmt: skip
        kernels = {"fused": True} if device.type == "cuda" else {"foreach": True}  # as the engine
        self.optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9,
                                         weight_decay=5e-5, **kernels)  # fmt: skip
        self.criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
        self.amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(compute["amp"])

    def epoch(self) -> float:
        """Train one epoch; its device-synchronised seconds."""
        device, n, batch = self.device, len(self.images), 128
        order = torch.randperm(n, device=device)
        _sync(device)
        started = time.perf_counter()
        for i in range(0, n, batch):
            idx = order[i : i + batch]
            x = self.images[idx].float().div_(255)
            flip = torch.rand(len(idx), 1, 1, 1, device=device) < 0.5
            x = torch.where(flip, x.flip(3), x).sub_(0.5).div_(0.29)
            x = x.contiguous(memory_format=self.memory_format)
            amp = self.amp
            with torch.autocast(device.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
                loss = self.criterion(self.forward(x).float(), self.labels[idx])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        _sync(device)
        return time.perf_counter() - started


def run_minimal(
    root: Path, model: str, compute: dict[str, Any], args: argparse.Namespace, n_train: int
) -> list[float]:
    """Seconds per epoch of the minimal loop, ``--epochs`` epochs."""
    if args.threads:
        torch.set_num_threads(args.threads)
    loop = MinimalLoop(root, model, compute, torch.device(args.device), n_train)
    return [loop.epoch() for _ in range(args.epochs)]


def engine_epochs(
    root: Path, out: Path, model: str, kind: str, compute: dict[str, Any],
    args: argparse.Namespace,
) -> Callable[[], float]:  # fmt: skip
    """One run's engine state, and a function training one more epoch through the engine's own
    ``_train_epoch`` (its loader, compiled or eager step, schedule, projection and loss
    accumulation) and returning its device-synchronised seconds."""
    cfg = engine.resolve(run_config(root, model, kind, compute, args, out.name))
    engine._configure(cfg)
    device = torch.device(args.device)
    data = engine.load_data(cfg, device)
    state = engine.TrainState.build(cfg, data, device)
    run = engine.Run(cfg, engine.RunFolder(out), device, data, engine.StopFlag())
    step = engine._optimizer_step(run, state, engine.compiled(cfg, state.model))
    state.model.train()
    return lambda: float(engine._train_epoch(run, state, step)[1])


def run_alternating(
    root: Path, out: Path, model: str, kinds: list[str], compute: dict[str, Any],
    args: argparse.Namespace, n_train: int,
) -> dict[str, list[float]]:  # fmt: skip
    """``--alternate K``: every kind's engine state (and the minimal loop) built side by side in
    one process, then K rounds of one epoch each, in reverse order every other round, after one
    warm-up epoch each. Seconds apart, the kinds of a round share the machine's load, which whole
    runs a minute apart do not: on a shared CPU the epoch time wanders by ±10 % within a minute."""
    epoch = {kind: MinimalLoop(root, model, compute, torch.device(args.device), n_train).epoch
             if kind == "minimal" else engine_epochs(root, out / kind, model, kind, compute, args)
             for kind in kinds}  # fmt: skip
    for kind in kinds:
        epoch[kind]()  # warm-up: allocator, cuDNN autotuning, compilation
    seconds: dict[str, list[float]] = {kind: [] for kind in kinds}
    for round_ in range(args.alternate):
        for kind in kinds if round_ % 2 == 0 else kinds[::-1]:
            seconds[kind].append(epoch[kind]())
    return seconds


def whole_runs(epochs: dict[str, list[list[float]]]) -> dict[str, list[float]]:
    """Per kind, the median timed epoch of each finished run, over the repeats every kind that has
    run has finished (all of them once the block is complete)."""
    done = {kind: runs for kind, runs in epochs.items() if runs}
    repeats = min((len(runs) for runs in done.values()), default=0)
    return {kind: [statistics.median(v) for v in runs[:repeats]] for kind, runs in done.items()}


def summarise(
    block: dict[str, Any], method: str, seconds: dict[str, list[float]], scale: float,
    images: int, paper: dict[str, float | None],
) -> list[dict[str, Any]]:  # fmt: skip
    """CSV rows of one model and setting: per kind the median epoch seconds (scaled to a full
    epoch), images per second, and the median and quartiles of the per-round ratio to standard."""
    rows = []
    for kind, values in seconds.items():
        sec = statistics.median(values) * scale
        ratio, quartiles = "", ("", "")
        if "standard" in seconds:
            ratios = [a / b for a, b in zip(values, seconds["standard"], strict=True)]
            ratio = round(statistics.median(ratios), 4)
            if len(ratios) >= 4:  # the spread of the per-round ratios: how sure the median is
                quartiles = tuple(round(q, 4) for q in statistics.quantiles(ratios, n=4)[::2])
        published = paper.get(kind)  # the paper has no learned-density timing, nor a minimal loop
        rows.append({
            **block, "kind": kind, "method": method, "rounds": len(values),
            "seconds_per_epoch": round(sec, 4), "images_per_second": round(images / sec, 1),
            "ratio_vs_standard": ratio, "ratio_q1": quartiles[0], "ratio_q3": quartiles[1],
            "paper_a100_seconds_per_epoch": "" if published is None else published,
        })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", nargs="+", default=["resnet56", "vgg16_bn", "nafnet"])
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--settings", nargs="+", default=["fp32"])
    parser.add_argument("--epochs", type=int, default=3, help="per run; the first is warm-up")
    parser.add_argument("--repeats", type=int, default=1, help="interleaved rounds of kinds")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="batches per epoch (projects a full epoch linearly)")  # fmt: skip
    parser.add_argument("--eval-images", type=int, default=None,
                        help="val/test size (untimed); default 1000 CIFAR, 16 DIV2K")  # fmt: skip
    parser.add_argument("--minimal", action="store_true",
                        help="also time a plain PyTorch loop (classification models)")  # fmt: skip
    parser.add_argument("--alternate", type=int, default=0, metavar="K",
                        help="also time K rounds of one epoch per kind alternating in one "
                             "process (tighter ratios; see run_alternating)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--data-root", type=Path, default=None, help="synthetic data cache")
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/engine_speed.csv"))
    args = parser.parse_args()
    if args.epochs < 2:
        raise SystemExit("--epochs must be >= 2: the first epoch is warm-up and not counted")
    unknown = sorted(set(args.models) - set(TASK_OF))
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}; choose from {sorted(TASK_OF)}")
    device = torch.device(args.device)
    name = device_name(device)
    scratch = tempfile.TemporaryDirectory(prefix="engine_speed_")
    # The data's train size follows --max-steps, so each value gets its own synthetic data.
    root = (args.data_root or Path(scratch.name) / "data") / f"max-steps-{args.max_steps or 'all'}"
    batch = {"classification": 128, "denoising": 16}
    full = {"classification": CIFAR_TRAIN, "denoising": DIV2K_TRAIN}
    n_train = {t: full[t] if args.max_steps is None else min(full[t], args.max_steps * batch[t])
               for t in full}  # fmt: skip
    tasks = {TASK_OF[m] for m in args.models}
    started = time.perf_counter()
    if "classification" in tasks:
        write_cifar(root, n_train["classification"], args.eval_images or 1000)
    if "denoising" in tasks:
        write_div2k(root, n_train["denoising"], args.eval_images or 16)
    print(f"device: {name}; synthetic data ready in {time.perf_counter() - started:.1f} s",
          flush=True)  # fmt: skip

    rows: list[dict[str, Any]] = []
    for model in args.models:
        task = TASK_OF[model]
        steps = -(-n_train[task] // batch[task])
        full_steps = -(-full[task] // batch[task])
        scale = full_steps / steps
        paper = published_seconds(task, model)
        for setting in args.settings:
            compute = parse_setting(setting)
            minimal = ["minimal"] if args.minimal and task == "classification" else []
            # The minimal loop runs next to the standard run it is compared with.
            kinds = [*minimal, *args.kinds]
            epochs: dict[str, list[list[float]]] = {k: [] for k in kinds}
            block = {"device": name, "model": model, "task": task, "setting": setting,
                     "batch_size": batch[task], "steps_timed": steps,
                     "full_epoch_steps": full_steps, "projected": scale != 1.0}  # fmt: skip
            for repeat in range(args.repeats):
                # Interleaved: every kind once per repeat, in reverse order every other repeat, so
                # a machine slowing down or speeding up over minutes hits every kind alike.
                for kind in kinds if repeat % 2 == 0 else kinds[::-1]:
                    out = Path(scratch.name) / "runs" / f"{model}-{setting}-{kind}-{repeat}"
                    if kind == "minimal":
                        seconds = run_minimal(root, model, compute, args, n_train[task])
                    else:
                        seconds = run_once(root, out, model, kind, compute, args)
                    epochs[kind].append(seconds[1:])  # drop the warm-up epoch
                    timed = " ".join(f"{s:.3f}" for s in seconds)
                    print(f"  {model} {setting} {kind} r{repeat}: {timed} s/epoch", flush=True)
                    # A GPU check runs under a time limit: a cut keeps every finished run.
                    partial = summarise(block, "whole runs", whole_runs(epochs), scale,
                                        full[task], paper)  # fmt: skip
                    write_csv(args.out, rows + partial)
            if args.repeats:
                rows += summarise(block, "whole runs", whole_runs(epochs), scale, full[task], paper)
            if args.alternate:
                out = Path(scratch.name) / "runs" / f"{model}-{setting}-alternating"
                alternating = run_alternating(root, out, model, kinds, compute, args, n_train[task])
                for kind, seconds in alternating.items():
                    timed = " ".join(f"{s:.3f}" for s in seconds)
                    print(f"  {model} {setting} {kind} alternating: {timed} s/epoch", flush=True)
                rows += summarise(block, "alternating epochs", alternating, scale, full[task],
                                  paper)  # fmt: skip
            write_csv(args.out, rows)  # after every block: a run cut short keeps what it measured

    print(
        f"\n{'model':<10} {'setting':<14} {'method':<18} {'kind':<9} {'s/epoch':>9} "
        f"{'img/s':>7}  {'x std [quartiles]':<23} paper A100 s/epoch (published, Table 4/6)"
    )
    for r in rows:
        mark = "*" if r["projected"] else ""
        ratio = "" if r["ratio_vs_standard"] == "" else f"{r['ratio_vs_standard']:.3f}"
        if r["ratio_q1"]:
            ratio += f" [{r['ratio_q1']:.3f}, {r['ratio_q3']:.3f}]"
        print(f"{r['model']:<10} {r['setting']:<14} {r['method']:<18} {r['kind']:<9} "
              f"{r['seconds_per_epoch']:>8.2f}{mark:1} {r['images_per_second']:>7.0f}  "
              f"{ratio:<23} {r['paper_a100_seconds_per_epoch']}")  # fmt: skip
    for r in rows:
        if r["kind"] == "minimal" and r["ratio_vs_standard"]:
            engine = 1 / r["ratio_vs_standard"]
            spread = f" [{1 / r['ratio_q3']:.3f}, {1 / r['ratio_q1']:.3f}]" if r["ratio_q1"] else ""
            print(f"engine/minimal-loop {r['model']} {r['setting']} ({r['method']}): "
                  f"{engine:.3f}{spread} (standard conv; median [quartiles])")  # fmt: skip
    if any(r["projected"] for r in rows):
        print("* projected to a full epoch from --max-steps batches")
    print(f"wrote {args.out}", file=sys.stderr)
    scratch.cleanup()


if __name__ == "__main__":
    main()
