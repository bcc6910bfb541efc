"""Train and evaluate one run of the study: resumable, honest about time and divergence.

``train_run(config, out)`` is idempotent: a finished run (``metrics.json`` present) is a no-op; a
killed run continues from ``checkpoints/last.pt``, which lives outside the files a workflow declares
as outputs so a failed job's cleanup never deletes it.  A NaN/inf loss ends the run as
``diverged`` (not an error) so the rest of the study goes on.  A configured signal (SLURM's
time-out/preemption warning) makes the run checkpoint at the next batch and exit with
``EXIT_REQUEUE`` so the job is retried and resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import json
import logging
import math
import os
import shutil
import signal
import socket
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from wconv import __version__
from wconv.data import ClassificationSplit, RestorationSplit, load_split
from wconv.data.deblur import sample_psfs
from wconv.data.loader import DeviceBatches
from wconv.errors import UserError
from wconv.io import atomic_open, write_csv, write_json, write_text, write_yaml
from wconv.metrics import IMAGE_METRICS, classification_metrics, identity_metrics, image_metrics
from wconv.metrics.lazy import piq  # imported at the first PSNR: a classification run never
from wconv.models import create
from wconv.nn import count_weighted, project_densities_, ranged_layers
from wconv.runfolder import run_lock
from wconv.runfolder import sidecar as checkpoint_sidecar
from wconv.train.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_latest,
    remove_checkpoint,
    save_checkpoint,
)
from wconv.train.checkpoint import previous as previous_checkpoint
from wconv.train.config import resolve
from wconv.vocabulary import FINISHED_STATUSES, SPLITS, RunId

log = logging.getLogger("wconv.train")

STATUS_OK, STATUS_STOPPED, STATUS_DIVERGED = FINISHED_STATUSES  # "ok", "stopped_early", "diverged"
HISTORY_FIELDS = [
    "epoch",
    "train_loss",
    "val_loss",
    "val_metric",
    "lr",
    "epoch_seconds",
    "density",
    "session",
]


class Interrupted(Exception):
    """Raised inside the training loop after a checkpoint was written on a stop signal."""


@dataclass
class StopFlag:
    """Set by a signal handler; the loop checks it between batches (no work in the handler)."""

    signum: int | None = None

    def __call__(self, signum: int, _frame: Any) -> None:
        self.signum = signum


@dataclass
class EarlyStopping:
    """Stop when the validation loss has not improved by ``min_delta`` for ``patience`` epochs."""

    patience: int
    min_delta: float = 0.0
    best: float = math.inf
    best_epoch: int = -1
    bad_epochs: int = 0

    def update(self, epoch: int, value: float) -> bool:
        """Record ``value`` for ``epoch``; return True if training should stop."""
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience


@dataclass
class Data:
    train: DeviceBatches
    val: DeviceBatches
    test: DeviceBatches
    num_classes: int | None = None
    in_channels: int = 3
    test_identity: dict[str, float] | None = None


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"compute.device is {name!r} but no CUDA device is visible; use auto/cpu")
    return device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(
    cfg: dict[str, Any], device: torch.device, *, cache: bool = True
) -> contextlib.AbstractContextManager:
    """``compute.amp``'s autocast; ``cache=False`` inside a CUDA graph capture, where autocast's
    cache of cast weights must not outlive the recording (each weight is cast once per step
    anyway)."""
    amp = cfg["compute"]["amp"]
    if amp == "none":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype, cache_enabled=cache)


# torch.compile modes that capture CUDA graphs: a graph replays fixed shapes only.
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")
# Steps the whole-step CUDA graph (compute.cuda_graph) runs eagerly before it records the step:
# cuDNN's autotuning, torch.compile's compilation and the optimizer's first allocation of its
# state happen there, outside the recording.
GRAPH_WARMUP_STEPS = 3


def captures_step(cfg: dict[str, Any], device: torch.device) -> bool:
    """Whether the training step is recorded once and replayed as one CUDA graph
    (``compute.cuda_graph`` on a CUDA device; elsewhere the same step runs eagerly)."""
    return bool(cfg["compute"]["cuda_graph"]) and device.type == "cuda"


def static_batches(cfg: dict[str, Any]) -> bool:
    """Whether every training batch has the batch size (the short last one of an epoch dropped):
    what a CUDA graph needs, since it replays one shape. Decided by the settings, not the device,
    so that a run sees the same batches on a CPU and a GPU."""
    return compile_mode(cfg) in CUDA_GRAPH_MODES or bool(cfg["compute"]["cuda_graph"])


def compile_mode(cfg: dict[str, Any]) -> str | None:
    """``compute.compile`` as a ``torch.compile`` mode: None (eager), "default",
    "reduce-overhead" or "max-autotune" (both with CUDA graphs on a GPU); ``true`` is "default"."""
    mode = cfg["compute"]["compile"]
    if mode is False:
        return None
    return "default" if mode is True else str(mode)


def require_compiler(cfg: dict[str, Any], device: torch.device) -> None:
    """Fail before training, with the fix, where ``torch.compile`` would need a C++ compiler (its
    CPU backend builds C++) and none is found, instead of an inductor traceback at the first step.
    """
    if compile_mode(cfg) is None or device.type != "cpu":
        return
    if not any(shutil.which(name) for name in (os.environ.get("CXX"), "g++", "c++", "clang++")
               if name):  # fmt: skip
        raise UserError(
            f"compute.compile is {cfg['compute']['compile']!r} on a CPU, where torch.compile"
            " builds C++, but no C++ compiler (g++) is on PATH; install one"
            " (tests/compiler/install_cxx.sh) or set compute.compile: false"
        )


def compiled(cfg: dict[str, Any], model: nn.Module) -> nn.Module:
    """``model`` compiled as ``compute.compile`` says (itself when eager)."""
    mode = compile_mode(cfg)
    return model if mode is None else cast(nn.Module, torch.compile(model, mode=mode))


def load_data(cfg: dict[str, Any], device: torch.device) -> Data:
    """Build the device-resident batch iterators of the three splits (augmenting train only)."""
    recipe = cfg["recipe"]
    splits = {
        name: load_split(cfg["data"], Path(cfg["data_root"]), name, task=cfg["task"])
        for name in SPLITS
    }
    train = splits["train"]
    common: dict[str, Any] = {
        "device": device, "seed": cfg["seed"], "channels_last": cfg["compute"]["channels_last"],
    }  # fmt: skip
    # With CUDA graphs every training batch has the batch size: the short last batch of an epoch
    # is dropped (a different sample each epoch, since the order is redrawn) instead of forcing a
    # second graph; evaluation keeps every image.
    static = static_batches(cfg)
    augment: dict[str, Any] = {"flip": recipe["flip"], "last_batch": "drop" if static else "keep"}
    if isinstance(train, ClassificationSplit):
        pairs = {name: (split.images, split.labels) for name, split in splits.items()}
        common.update(mean=train.mean, std=train.std)
        augment["crop_padding"] = recipe["crop_padding"]
        num_classes, identity = train.num_classes, None
    else:
        assert isinstance(train, RestorationSplit)
        pairs = {name: (split.degraded, split.clean) for name, split in splits.items()}
        # Cached beside the prepared data: a whole-test-set pass at every run start is wasted.
        identity = identity_metrics(cfg["data"], cfg["data_root"], splits["test"], task=cfg["task"])
        num_classes = None
    loaders = {
        name: DeviceBatches(
            inputs,
            targets,
            recipe["batch_size"],
            shuffle=name == "train",
            **common,
            **(augment if name == "train" else {}),
        )
        for name, (inputs, targets) in pairs.items()
    }
    return Data(
        **loaders,
        num_classes=num_classes,
        in_channels=pairs["train"][0].shape[1],
        test_identity=identity,
    )


def field_psfs(data_cfg: dict[str, Any], count: int) -> np.ndarray:
    """``count`` (a square: 9 as in the original MultiWienerNet) local PSFs of the deblur data's
    PSF model, on a √count × √count lattice of field positions: MultiWienerNet's initial bank."""
    grid = math.isqrt(count) if isinstance(count, int) and count > 0 else 0
    if grid * grid != count:
        raise ValueError(
            f"multiwienernet: num_psfs {count!r} must be a square (the bank is sampled on a "
            "grid × grid lattice of the field); e.g. 4, 9 or 16"
        )
    return sample_psfs(data_cfg, grid=grid)


def build_model(cfg: dict[str, Any], data: Data) -> nn.Module:
    """The model of this run; the seed is set first so conv kinds of one seed start identical."""
    options = dict(cfg["model_options"])
    options.setdefault("kernel_size", cfg["kernel_size"])
    if data.num_classes is not None:
        options.setdefault("num_classes", data.num_classes)
    options.setdefault("in_channels", data.in_channels)
    deblur = cfg["data"].get("dataset") == "deblur"
    if cfg["model"] == "multiwienernet" and deblur and "psfs" not in options:
        # The bank starts at the data's own PSFs, as the original's at PSFs measured on the field.
        options["psfs"] = field_psfs(cfg["data"], options.get("num_psfs", 9))
    torch.manual_seed(cfg["seed"])
    return create(
        cfg["model"],
        conv=cfg["conv"],
        density=cfg["density"],
        density_range=cfg["density_range"],
        **options,
    )


def build_optimizer(
    model: nn.Module,
    recipe: dict[str, Any],
    device: torch.device | None = None,
    *,
    capturable: bool = False,
) -> torch.optim.Optimizer:
    """Weights in one group; learned densities in their own group at ``density_lr``, no decay.

    The multi-tensor kernels are asked for explicitly: ``fused`` on CUDA (one kernel for all
    parameters), ``foreach`` on CPU (torch's default there is the slow per-parameter loop).
    ``capturable`` (a CUDA graph records the step): each group's learning rate is a device
    tensor, which the schedule fills in place, so the recorded update reads the current one.
    """
    density = [p for n, p in model.named_parameters() if n.endswith("density")]
    ids = {id(p) for p in density}
    weights = [p for p in model.parameters() if id(p) not in ids]
    groups: list[dict[str, Any]] = [{"params": weights}]
    if density:
        groups.append({"params": density, "lr": recipe["density_lr"], "weight_decay": 0.0})
    decay = recipe.get("weight_decay", 0.0)
    on_cuda = device is not None and device.type == "cuda"
    kernels: dict[str, bool] = {"fused": True} if on_cuda else {"foreach": True}
    optimizer: torch.optim.Optimizer
    if recipe["optimizer"] == "sgd":
        optimizer = torch.optim.SGD(
            groups,
            lr=recipe["lr"],
            momentum=recipe.get("momentum", 0.0),
            nesterov=recipe.get("nesterov", False),
            weight_decay=decay,
            **kernels,
        )
    else:
        cls = torch.optim.Adam if recipe["optimizer"] == "adam" else torch.optim.AdamW
        betas = tuple(recipe.get("betas", (0.9, 0.999)))
        if capturable:
            kernels["capturable"] = True  # Adam's step count stays on the device
        optimizer = cls(groups, lr=recipe["lr"], betas=betas, weight_decay=decay, **kernels)
    if capturable:
        for group in optimizer.param_groups:
            group["lr"] = torch.tensor(float(group["lr"]), device=device)
    return optimizer


def build_schedule(
    optimizer: torch.optim.Optimizer, recipe: dict[str, Any], steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step linear warm-up then cosine to 0 (or constant); stepped every batch."""
    total = max(1, int(recipe["epochs"]) * steps_per_epoch)
    warmup = int(recipe.get("warmup_epochs", 0)) * steps_per_epoch

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if recipe["schedule"] == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def loss_fn(cfg: dict[str, Any]) -> nn.Module:
    if cfg["task"] == "classification":
        return nn.CrossEntropyLoss(label_smoothing=cfg["recipe"].get("label_smoothing", 0.0))
    return nn.MSELoss()


def _densities(model: nn.Module) -> str:
    values = [
        p.detach().cpu().tolist() for n, p in model.named_parameters() if n.endswith("density")
    ]
    return json.dumps(values) if values else ""


@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: DeviceBatches,
    cfg: dict[str, Any],
    device: torch.device,
    num_classes: int | None,
    keep_examples: int = 0,
    *,
    full: bool = True,
) -> tuple[dict[str, float], Any]:
    """Mean loss and task metrics on one split; also the confusion matrix or example images.

    ``full=False`` (per-epoch validation) computes only the loss and the selection metric
    (accuracy, PSNR): SSIM/FSIM and the F1 scores cost more than the epoch's evaluation itself.
    """
    model.eval()
    criterion = loss_fn(cfg)
    total = torch.zeros((), device=device, dtype=torch.float64)
    count = 0
    predictions: list[Tensor] = []
    targets: list[Tensor] = []
    per_image: dict[str, list[Tensor]] = {name: [] for name in IMAGE_METRICS}
    examples: dict[str, list[Tensor]] = {"degraded": [], "output": [], "clean": []}
    for x, y in batches:
        with _autocast(cfg, device):
            out = model(x)
        out = out.float()
        total += criterion(out, y).double() * x.shape[0]
        count += x.shape[0]
        # Kept on the device until the split is done: no host sync per batch.
        if num_classes is not None:
            predictions.append(out.argmax(1))
            targets.append(y)
        elif not full:
            x01, y01 = out.clamp(0, 1), y.float().clamp(0, 1)
            per_image["psnr"].append(piq.psnr(x01, y01, data_range=1.0, reduction="none"))
        else:
            for name, values in image_metrics(out, y).items():
                per_image[name].append(values)
            kept = sum(t.shape[0] for t in examples["clean"])
            if kept < keep_examples:
                take = keep_examples - kept
                examples["degraded"].append(x[:take].float().cpu())
                examples["output"].append(out[:take].clamp(0, 1).cpu())
                examples["clean"].append(y[:take].cpu())
    metrics = {"loss": float(total) / max(1, count)}
    if num_classes is not None and not full:
        hits = (torch.cat(predictions) == torch.cat(targets)).float().mean()  # as torchmetrics
        return {**metrics, "accuracy": float(hits)}, None
    if num_classes is not None:
        scores, confusion = classification_metrics(
            torch.cat(predictions).cpu(), torch.cat(targets).cpu(), num_classes
        )
        return {**metrics, **scores}, confusion
    metrics.update({name: float(torch.cat(v).mean()) for name, v in per_image.items() if v})
    return metrics, {k: torch.cat(v).numpy() for k, v in examples.items() if v}


def _val_metric(metrics: dict[str, float]) -> float:
    return metrics.get("accuracy", metrics.get("psnr", float("nan")))


class RunFolder:
    """Paths and atomic writers of one run folder (see docs/run-folder.md)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.metrics = out / "metrics.json"
        self.history = out / "history.csv"
        self.lock = out / ".lock"
        self.failed = out / "failed"
        self.last = out / "checkpoints" / "last.pt"
        self.best = out / "checkpoints" / "best.pt"

    def read_history(self) -> list[dict[str, str]]:
        """The rows of ``history.csv``, checked: a malformed row must not survive a resume."""
        if not self.history.exists():
            return []
        fix = f"delete {self.history} and {self.last.parent} to start the run over"
        try:
            with self.history.open(newline="") as handle:
                rows = list(csv.DictReader(handle))
        except (OSError, UnicodeDecodeError, csv.Error) as err:
            raise UserError(f"{self.history} is not a readable CSV ({err}); {fix}") from None
        for number, row in enumerate(rows, 1):
            try:
                if set(row) != set(HISTORY_FIELDS):
                    raise ValueError(f"columns {sorted(map(str, row))}, not {HISTORY_FIELDS}")
                if int(row["epoch"]) != number:
                    raise ValueError(f"epoch {row['epoch']}, expected {number}")
                float(row["train_loss"])
                int(row["session"])
            except (ValueError, TypeError) as err:
                problem = f"{self.history} row {number} is malformed ({err})"
                raise UserError(f"{problem}; {fix}") from None
        return rows

    def write_history(self, rows: list[dict[str, Any]]) -> None:
        write_csv(self.history, rows, HISTORY_FIELDS)

    def finished_metrics(self, run: str) -> dict[str, Any] | None:
        """``metrics.json`` if it is a complete result; ``None`` (with a warning) otherwise."""
        if not self.metrics.exists():
            return None
        try:
            metrics = json.loads(self.metrics.read_text())
            missing = [k for k in METRICS_REQUIRED if k not in metrics]
            if missing:
                raise ValueError(f"missing {missing}")
            if metrics["status"] not in FINISHED_STATUSES:
                raise ValueError(f"unknown status {metrics['status']!r}")
        except (OSError, ValueError, TypeError) as err:
            log.warning(
                "%s: %s is unreadable or incomplete (%s); redoing the final step",
                run,
                self.metrics,
                err,
            )
            return None
        return metrics


METRICS_REQUIRED = ("run_id", "task", "status", "epochs_run", "val", "test", "seconds_per_epoch")


def settings_digest(cfg: dict[str, Any]) -> str:
    """A hash of everything that defines the run's result; compute settings are left out, except
    that a CUDA-graph setting drops each epoch's short last batch (fewer steps per epoch, a
    shorter schedule): a run does not resume across that change."""
    relevant = {k: v for k, v in cfg.items() if k not in ("compute", "data_root")}
    if static_batches(cfg):
        relevant["static_batches"] = True  # only then: the digests of other runs stay as they were
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()


def environment(device: torch.device) -> dict[str, Any]:
    commit = None
    with contextlib.suppress(Exception):
        import subprocess

        commit = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                timeout=5,
                cwd=Path(__file__).parent,
                check=False,
            ).stdout.strip()
            or None
        )
    name = device_name(device)
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "wconv": __version__,
        "numpy": np.__version__,
        "device": str(device),
        "device_name": name,
        "host": socket.gethostname(),
        "git_commit": commit,
        "threads": torch.get_num_threads(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} cores)"
    return "cpu"


def _configure(cfg: dict[str, Any]) -> None:
    compute = cfg["compute"]
    if compute["threads"]:
        torch.set_num_threads(int(compute["threads"]))
    if compute["deterministic"]:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True


def train_run(
    config: dict[str, Any],
    out: str | os.PathLike[str],
    *,
    stop_signals: tuple[int, ...] = (signal.SIGUSR2, signal.SIGTERM),
) -> dict[str, Any]:
    """Train, validate and test one run into ``out``; return its metrics.

    Raises ``Interrupted`` after checkpointing when one of ``stop_signals`` arrives, and
    ``UserError`` when another trainer holds the run folder or it cannot be written.
    """
    cfg = resolve(config)
    run = str(cfg.get("run_id", out))
    folder = RunFolder(Path(out))
    finished = folder.finished_metrics(run)
    if finished is not None:
        log.info("%s: already finished, nothing to do", run)
        return finished
    _configure(cfg)
    device = pick_device(cfg["compute"]["device"])
    require_compiler(cfg, device)
    data = load_data(cfg, device)  # missing data fails here, before anything is written
    try:
        folder.out.mkdir(parents=True, exist_ok=True)
        if not os.access(folder.out, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "not writable", str(folder.out))
    except OSError as err:
        raise UserError(
            f"--out {folder.out}: cannot create or write the run folder "
            f"({err.strerror or err}); choose a writable folder"
        ) from None

    flag = StopFlag()
    try:
        with run_lock(folder.lock):
            previous = {s: signal.signal(s, flag) for s in stop_signals}
            try:
                folder.failed.unlink(missing_ok=True)
                write_yaml(folder.out / "config.yaml", cfg)
                write_json(folder.out / "env.json", environment(device))
                return _train(cfg, folder, device, data, flag)
            except (Interrupted, UserError):
                raise
            except Exception as error:
                # `wconv status` shows this first line; the log has the traceback.  On a full
                # disk the marker cannot be written either; the error below says why.
                with contextlib.suppress(OSError):
                    write_text(folder.failed, f"{type(error).__name__}: {error}\n")
                raise
            finally:
                for s, handler in previous.items():
                    signal.signal(s, handler)
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise UserError(
                f"no space left writing {error.filename or folder.out} ({error.strerror}); "
                "free disk space or quota and rerun: the run resumes from its last checkpoint"
            ) from None
        raise


# Optimizer group keys that say how this session computes the update, not what the run is: a
# resume keeps its own (a checkpoint of a CUDA run resumed on a CPU, or with or without a graph).
SESSION_KEYS = ("foreach", "fused", "capturable", "differentiable")


@dataclass
class TrainState:
    """Everything a checkpoint saves and a resume restores, in one object.

    :meth:`state_dict` and :meth:`load_state_dict` are the one save and the one restore path: their
    keys are the ``last.pt`` format, and :meth:`progress` (where the run stands) is also the
    ``last.pt.json`` sidecar that ``wconv status`` reads.  ``history`` holds the rows of
    ``history.csv``, which is written beside the checkpoint, not inside it.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    stopper: EarlyStopping
    settings: str  # settings_digest of the run's config: a checkpoint of other settings is stale
    device: torch.device
    epoch: int = 0  # epochs fully trained and validated
    batches_done: int = 0  # of epoch ``epoch + 1``, when checkpointed mid-epoch
    # How many times the run has been started; each history row records the session that trained
    # it, so a resumed run shows it (and that no epoch was trained twice).
    session: int = 1
    samples_seen: int = 0  # in epoch ``epoch + 1`` so far
    finished: str | None = None  # the final status once training ended; only testing is left
    history: list[dict[str, Any]] = field(default_factory=list)
    # Summed on the device and read once per epoch: no host sync per step.
    train_loss_sum: Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.train_loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)

    @classmethod
    def build(cls, cfg: dict[str, Any], data: Data, device: torch.device) -> TrainState:
        """The untrained state of the run: model, optimizer, schedule and early stopping."""
        recipe = cfg["recipe"]
        model = build_model(cfg, data).to(device)
        if cfg["compute"]["channels_last"]:
            model = model.to(memory_format=torch.channels_last)
        optimizer = build_optimizer(model, recipe, device, capturable=captures_step(cfg, device))
        return cls(
            model=model,
            optimizer=optimizer,
            schedule=build_schedule(optimizer, recipe, len(data.train)),
            stopper=EarlyStopping(int(recipe["patience"]), float(recipe.get("min_delta", 0.0))),
            settings=settings_digest(cfg),
            device=device,
        )

    def progress(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "batches_done": self.batches_done,
            "session": self.session,
            "train_loss_sum": float(self.train_loss_sum),
            "samples_seen": self.samples_seen,
            "finished": self.finished,
        }

    def state_dict(self) -> dict[str, Any]:
        cuda = self.device.type == "cuda"
        return {
            "model": self.model.state_dict(),
            "optimizer": _host_scalars(self.optimizer.state_dict(), "param_groups"),
            "schedule": _host_scalars(self.schedule.state_dict()),
            "early_stopping": vars(self.stopper).copy(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state(self.device) if cuda else None,
            "settings": self.settings,
            **self.progress(),
        }

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        """The inverse of :meth:`state_dict` (``history`` and ``settings`` are the caller's).

        A finished run's slim checkpoint (:meth:`save_finished`) has no weights or optimizer."""
        if saved["model"] is not None:
            self.model.load_state_dict(saved["model"])
            # How this session computes the update is its own (kernels, device learning rates,
            # which a recorded step reads: refilled, not replaced); the values are the run's.
            live = [{k: group[k] for k in (*SESSION_KEYS, "lr") if k in group}
                    for group in self.optimizer.param_groups]  # fmt: skip
            self.optimizer.load_state_dict(saved["optimizer"])
            for group, kept in zip(self.optimizer.param_groups, live, strict=True):
                group.update({k: v for k, v in kept.items() if k != "lr"})
                if isinstance(kept["lr"], Tensor):
                    group["lr"] = kept["lr"].fill_(float(group["lr"]))
                if group.get("fused") or group.get("capturable"):
                    # Adam's step count: torch places it by the saved groups' flags (a CPU
                    # session's put it on the host); these kernels read it on the device.
                    for param in group["params"]:
                        state = self.optimizer.state.get(param, {})
                        if isinstance(state.get("step"), Tensor):
                            state["step"] = state["step"].to(param.device, torch.float32)
            self.schedule.load_state_dict(saved["schedule"])
        elif saved.get("finished") is None:
            raise CheckpointError("a checkpoint without weights must belong to a finished run")
        self.stopper = EarlyStopping(**saved["early_stopping"])
        torch.set_rng_state(saved["rng_cpu"])
        if self.device.type == "cuda" and saved.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(saved["rng_cuda"], self.device)
        self.epoch = saved["epoch"]
        self.batches_done = saved["batches_done"]
        self.session = saved["session"]
        self.train_loss_sum.fill_(float(saved["train_loss_sum"]))
        self.samples_seen = int(saved["samples_seen"])
        self.finished = saved.get("finished")

    def save(self, folder: RunFolder) -> None:
        """Write ``last.pt`` (the old one becomes ``last.previous.pt``) and its sidecar."""
        save_checkpoint(folder.last, self.state_dict(), self.progress(), keep_previous=True)

    def save_finished(self, folder: RunFolder) -> None:
        """Replace ``last.pt`` and its previous by a slim one: that training ended, and how,
        without weights or optimizer state. A rerun (e.g. Snakemake redoing a job it saw start
        but not end) still only redoes the final step, from ``best.pt``."""
        assert self.finished is not None
        slim = {**self.state_dict(), "model": None, "optimizer": None, "schedule": None}
        save_checkpoint(folder.last, slim, self.progress(), keep_previous=False)
        previous = previous_checkpoint(folder.last)
        for stale in (previous, checkpoint_sidecar(previous)):
            stale.unlink(missing_ok=True)


def _host_scalars(saved: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    """``saved`` (an optimizer's or schedule's state dict) with the one-element tensors of its
    hyperparameters (``saved[key]``'s groups, or its top-level lists) as floats: a run whose step
    is a CUDA graph keeps its learning rates on the device, and its checkpoint is the same as any
    other run's (loads on any device, with or without a recorded step)."""

    def plain(value: Any) -> Any:
        if isinstance(value, Tensor) and value.numel() == 1:
            return value.item()
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    if key is not None:
        groups = [{k: plain(v) for k, v in group.items()} for group in saved[key]]
        return {**saved, key: groups}
    return {k: plain(v) for k, v in saved.items()}


@dataclass(frozen=True)
class Run:
    """What a training session works with but never saves."""

    cfg: dict[str, Any]
    folder: RunFolder
    device: torch.device
    data: Data
    flag: StopFlag

    @property
    def name(self) -> str:
        return str(self.cfg.get("run_id"))

    @property
    def epochs(self) -> int:
        return int(self.cfg["recipe"]["epochs"])


def _train(
    cfg: dict[str, Any], folder: RunFolder, device: torch.device, data: Data, flag: StopFlag
) -> dict[str, Any]:
    """Resume (or start) the run's state, train what is left, then test and write the results."""
    run = Run(cfg, folder, device, data, flag)
    state = TrainState.build(cfg, data, device)
    _resume(run, state)
    status = state.finished if state.finished is not None else _train_epochs(run, state)
    return _finish(run, state, status)


def _resume(run: Run, state: TrainState) -> None:
    """Restore the last good checkpoint and the history rows it covers, or start over."""
    folder = run.folder
    saved = load_latest(folder.last, run.name)
    if saved is not None and saved.get("settings") != state.settings:
        # The run's settings changed since this checkpoint (params.yaml edited): resuming would
        # mix two experiments, so the run starts over.
        log.warning("%s: settings changed since the last checkpoint; starting over", run.name)
        saved = None
    if saved is None:
        remove_checkpoint(folder.last)
        for stale in (folder.best, checkpoint_sidecar(folder.best), folder.history):
            stale.unlink(missing_ok=True)
        return
    history = folder.read_history()
    state.load_state_dict(saved)
    state.session += 1
    if len(history) < state.epoch:
        raise UserError(
            f"{folder.history} has {len(history)} epoch rows but the checkpoint is at epoch "
            f"{state.epoch}; delete {folder.history} and {folder.last.parent} to start over"
        )
    # One row more than the checkpoint: killed between history.csv and last.pt; retrained.
    state.history = history[: state.epoch]
    if state.finished is not None:
        log.info(
            "%s: training had ended (%s, epoch %d); writing the result files",
            run.name,
            state.finished,
            state.epoch,
        )
    else:
        log.info("%s: resuming at epoch %d batch %d", run.name, state.epoch + 1, state.batches_done)


def _train_epochs(run: Run, state: TrainState) -> str:
    """Train from the checkpoint's epoch and batch until the run ends; return its final status."""
    # One compiled module for the training step and the per-epoch validation (it shares the
    # model's parameters); the final test of best.pt runs the eager model.
    forward = compiled(run.cfg, state.model)
    step = _optimizer_step(run, state, forward)
    for epoch in range(state.epoch, run.epochs):
        train_loss, seconds = _train_epoch(run, state, step)
        status = _evaluate_epoch(run, state, train_loss, seconds, forward)
        if status is not None:
            return status
        if run.flag.signum is not None:
            raise Interrupted(f"signal {run.flag.signum}: checkpointed after epoch {epoch + 1}")
    return STATUS_OK


def _optimizer_step(
    run: Run, state: TrainState, forward: nn.Module
) -> Callable[[Tensor, Tensor], Tensor]:
    """One training step on a batch (forward, backward, update, density projection, schedule)."""
    cfg, model, optimizer = run.cfg, state.model, state.optimizer
    criterion = loss_fn(cfg)
    ranged = ranged_layers(model)  # built once: the per-step projection skips the module walk
    grad_clip = cfg["recipe"].get("grad_clip")

    graphed = captures_step(cfg, run.device)

    def update(x: Tensor, y: Tensor) -> Tensor:
        """The step's device work, from empty gradients: what a CUDA graph records."""
        with _autocast(cfg, run.device, cache=not graphed):
            loss = criterion(forward(x).float(), y)
        loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        project_densities_(ranged)
        return loss.detach()

    def eager(x: Tensor, y: Tensor) -> Tensor:
        optimizer.zero_grad(set_to_none=True)
        return update(x, y)

    train_on = StepGraph(update, optimizer) if graphed else eager

    def step(x: Tensor, y: Tensor) -> Tensor:
        loss = train_on(x, y)
        state.schedule.step()
        return loss

    return step


class StepGraph:
    """A training step recorded once as a CUDA graph and replayed for every batch.

    ``update(x, y) -> loss`` is the step's device work (forward, loss, backward, optimizer
    update, density projection), starting from empty gradients. The first
    ``GRAPH_WARMUP_STEPS`` calls run it eagerly on a side stream: real steps of the run, which
    autotune cuDNN, compile, and allocate the optimizer's state. The next call records it on
    static copies of its inputs; from then on a call copies the batch in and replays the graph,
    so a whole step is one launch and the host never waits on hundreds of kernel launches. The
    optimizer must read its learning rate from device tensors (``build_optimizer(capturable=
    True)``). The loss returned is the graph's output buffer, which the next call overwrites.
    """

    def __init__(
        self, update: Callable[[Tensor, Tensor], Tensor], optimizer: torch.optim.Optimizer
    ):
        self.update, self.optimizer = update, optimizer
        self.graph: torch.cuda.CUDAGraph | None = None
        self.inputs: tuple[Tensor, Tensor] | None = None
        self.loss: Tensor | None = None
        self.side: torch.cuda.Stream | None = None
        self.eager_steps = 0

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        if self.graph is None:
            # On the batch's GPU (cuda:N): the capture stream and its synchronisation follow the
            # current device.
            with torch.cuda.device(x.device):
                if self.eager_steps < GRAPH_WARMUP_STEPS:
                    return self._eager(x, y)
                self._record(x, y)
        assert self.graph is not None and self.inputs is not None and self.loss is not None
        self.inputs[0].copy_(x)
        self.inputs[1].copy_(y)
        self.graph.replay()
        return self.loss

    def _eager(self, x: Tensor, y: Tensor) -> Tensor:
        """One warm-up step, on a side stream (as torch's CUDA-graph recipe warms up)."""
        self.eager_steps += 1
        main = torch.cuda.current_stream()
        if self.side is None:
            self.side = torch.cuda.Stream()
        self.side.wait_stream(main)
        with torch.cuda.stream(self.side):
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.update(x, y)
        main.wait_stream(self.side)
        return loss

    def _record(self, x: Tensor, y: Tensor) -> None:
        """Record the step (nothing runs: the caller then replays it for this batch)."""
        self.inputs = (x.clone(), y.clone())  # clone keeps the memory format (channels_last)
        self.optimizer.zero_grad(set_to_none=True)  # the recorded backward writes fresh grads
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.loss = self.update(*self.inputs)


def _train_epoch(
    run: Run, state: TrainState, step: Callable[[Tensor, Tensor], Tensor]
) -> tuple[float, float | str]:
    """Train epoch ``state.epoch + 1`` from its checkpointed batch; its mean loss and seconds.

    On a stop signal the state is checkpointed after the current batch and ``Interrupted`` raised.
    """
    epoch, skip_batches = state.epoch, state.batches_done
    state.model.train()
    run.data.train.set_epoch(epoch)
    _sync(run.device)
    started = time.perf_counter()
    # Timing: device-synchronised wall time of the training batches only, evaluation excluded.
    # A progress bar only on a terminal; batch jobs get the one log line per epoch.
    batches = tqdm(run.data.train, desc=f"epoch {epoch + 1}/{run.epochs}", leave=False,
                   disable=not sys.stderr.isatty())  # fmt: skip
    for index, (x, y) in enumerate(batches):
        if index < skip_batches:
            continue
        state.train_loss_sum += step(x, y).double() * x.shape[0]
        state.samples_seen += x.shape[0]
        if run.flag.signum is not None:
            state.batches_done = index + 1
            state.save(run.folder)
            raise Interrupted(
                f"signal {run.flag.signum}: checkpointed epoch {epoch + 1} batch {index + 1}"
            )
    _sync(run.device)
    # An epoch resumed mid-way timed only part of its batches: blank, so that
    # seconds_per_epoch stays a median of whole epochs.
    seconds: float | str = time.perf_counter() - started if skip_batches == 0 else ""
    train_loss = float(state.train_loss_sum) / max(1, state.samples_seen)
    state.batches_done, state.samples_seen = 0, 0
    state.train_loss_sum.zero_()
    return train_loss, seconds


def _evaluate_epoch(
    run: Run, state: TrainState, train_loss: float, seconds: float | str, forward: nn.Module
) -> str | None:
    """Validate the epoch just trained and checkpoint it; the final status if the run ended."""
    epoch = state.epoch + 1  # the one just trained
    if not math.isfinite(train_loss):
        _commit_epoch(run, state, _history_row(state, train_loss, seconds, None), STATUS_DIVERGED)
        log.warning("%s: loss is %s at epoch %d, run diverged", run.name, train_loss, epoch)
        return STATUS_DIVERGED
    val, _ = evaluate(forward, run.data.val, run.cfg, run.device, run.data.num_classes, full=False)
    status: str | None
    if not math.isfinite(val["loss"]):
        status = STATUS_DIVERGED
    elif state.stopper.update(epoch, val["loss"]):
        status = STATUS_STOPPED if epoch < run.epochs else STATUS_OK
    else:
        status = STATUS_OK if epoch == run.epochs else None
    row = _history_row(state, train_loss, seconds, val)
    if state.stopper.best_epoch == epoch:
        best = {"model": state.model.state_dict(), "epoch": epoch}
        save_checkpoint(run.folder.best, best, keep_previous=False)
    _commit_epoch(run, state, row, status)
    log.info(
        "%s epoch %d/%d train %.4f val %.4f metric %.4f %ss",
        run.cfg.get("run_id", ""),
        epoch,
        run.epochs,
        train_loss,
        val["loss"],
        _val_metric(val),
        f"{seconds:.2f}" if seconds != "" else "?",
    )
    return status


def _history_row(
    state: TrainState, train_loss: float, seconds: float | str, val: dict[str, float] | None
) -> dict[str, Any]:
    return {
        "epoch": state.epoch + 1,
        "train_loss": train_loss,
        "val_loss": "" if val is None else val["loss"],
        "val_metric": "" if val is None else _val_metric(val),
        "lr": float(state.schedule.get_last_lr()[0]),
        "epoch_seconds": seconds,
        "density": _densities(state.model),
        "session": state.session,
    }


def _commit_epoch(run: Run, state: TrainState, row: dict[str, Any], finished: str | None) -> None:
    """Record a trained epoch: ``history.csv`` first, ``last.pt`` second (docs/run-folder.md).

    A kill between them leaves one history row too many, which the resume drops, never one too few.
    """
    state.history.append(row)
    run.folder.write_history(state.history)
    state.epoch, state.batches_done, state.finished = state.epoch + 1, 0, finished
    state.save(run.folder)


def _finish(run: Run, state: TrainState, status: str) -> dict[str, Any]:
    """Test the best checkpoint, write the result files, then metrics.json last of all."""
    val, test = _test_best(run, state.model)
    metrics = _metrics(run, state, status, val, test)
    write_json(run.folder.metrics, metrics)
    if run.cfg["compute"]["checkpoints"] == "best":
        # The result is on disk: the weights and optimizer state of the last epoch (the bulk of
        # a run's disk) have no further use. best.pt, the reported epoch's weights, stays.
        state.save_finished(run.folder)
    return metrics


def _test_best(run: Run, model: nn.Module) -> tuple[Any, Any]:
    """Load ``best.pt`` into ``model``, write ``confusion.csv`` or ``examples.npz``.

    Returns its val and test metrics; ``(None, None)`` when no epoch was ever best (diverged).
    """
    folder, data = run.folder, run.data
    if not folder.best.exists():
        return None, None
    try:
        best = load_checkpoint(folder.best)
    except CheckpointError as err:
        raise UserError(
            f"{err}; the best epoch's weights are lost: delete {folder.out} to rerun the run"
        ) from None
    model.load_state_dict(best["model"])
    val, _ = evaluate(model, data.val, run.cfg, run.device, data.num_classes)
    test, extra = evaluate(model, data.test, run.cfg, run.device, data.num_classes, keep_examples=8)
    if data.num_classes is not None:
        rows = "\n".join(",".join(str(v) for v in row) for row in extra.tolist())
        write_text(folder.out / "confusion.csv", rows + "\n")
    else:
        with atomic_open(folder.out / "examples.npz", "wb") as handle:
            np.savez_compressed(
                handle, noisy=extra["degraded"], output=extra["output"], clean=extra["clean"]
            )
    return val, test


def _metrics(run: Run, state: TrainState, status: str, val: Any, test: Any) -> dict[str, Any]:
    """The content of ``metrics.json`` (see docs/run-folder.md)."""
    cfg, device = run.cfg, run.device
    model, stopper, history = state.model, state.stopper, state.history
    seconds = [float(row["epoch_seconds"]) for row in history if row.get("epoch_seconds")]
    # A grid run id names its study and model (a CoordGate variant such as unet-L3 names its
    # depth); a hand-made config may use any run id.
    try:
        grid_id: RunId | None = RunId.parse(str(cfg.get("run_id")))
    except ValueError:
        grid_id = None
    return {
        "run_id": cfg.get("run_id"),
        "study": grid_id.prefix if grid_id else str(cfg.get("run_id", "run/")).split("/")[0],
        "task": cfg["task"],
        "model": grid_id.model if grid_id else cfg["model"],
        "architecture": cfg["model"],
        "model_options": cfg["model_options"],
        "conv": cfg["conv"],
        "density": None if cfg["conv"] == "standard" else cfg["density"],
        "learned_density": _densities(model) or None,
        "kernel_size": cfg["kernel_size"],
        "seed": cfg["seed"],
        "recipe": cfg["recipe"].get("name"),
        "status": status,
        "best_epoch": stopper.best_epoch if stopper.best_epoch > 0 else None,
        "epochs_run": len(history),
        "max_epochs": int(cfg["recipe"]["epochs"]),
        "params": sum(p.numel() for p in model.parameters()),
        "weighted_layers": count_weighted(model),
        "device": device.type,
        "device_name": device_name(device),
        "seconds_per_epoch": statistics.median(seconds) if seconds else None,
        "val": val,
        "test": test,
        "identity": run.data.test_identity,
    }
