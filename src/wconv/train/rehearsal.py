"""A rehearsal of one run: its real training code for a few steps, and what the full run will cost.

``rehearse_run(cfg, out, steps)`` loads the run's data and builds its model, optimizer and schedule
exactly as ``train_run`` does (the engine's own functions), then measures seconds per optimizer
step (device-synchronised), one validation pass, peak host and device memory, and a checkpoint
round trip (the engine's ``TrainState.save`` and verified load, then one more step; with a
recorded step, ``compute.cuda_graph``, its warm-up, recording and a replay).  It writes
``out/rehearsal.json`` (see docs/rehearsal.md) and never a ``metrics.json``: a rehearsal folder
never looks like a finished run.  The probe checkpoint is deleted after it was measured, so no
later ``wconv train`` into the same folder could resume from rehearsal weights.
"""

from __future__ import annotations

import copy
import io
import logging
import os
import resource
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from wconv import __version__
from wconv.data import prepare_cost
from wconv.errors import UserError
from wconv.io import write_json
from wconv.train.checkpoint import CheckpointError, load_checkpoint
from wconv.train.config import resolve
from wconv.train.engine import (
    GRAPH_WARMUP_STEPS,
    Data,
    Run,
    RunFolder,
    StopFlag,
    TrainState,
    _configure,
    _optimizer_step,
    _sync,
    captures_step,
    compile_mode,
    compiled,
    device_name,
    evaluate,
    load_data,
    pick_device,
    require_compiler,
    settings_digest,
)

log = logging.getLogger("wconv.train")

SCHEMA = 1
# The first steps pay for cuDNN autotuning, allocator growth, torch.compile, and the recording of
# the whole-step CUDA graph (compute.cuda_graph), which follows its eager warm-up steps.
WARMUP_STEPS = GRAPH_WARMUP_STEPS + 1
MAX_VAL_BATCHES = 200  # a larger validation set is timed on its first batches and scaled
PROBE = "checkpoint-probe"  # the run folder of the checkpoint round trip, removed afterwards


def _batches(data: Data) -> Iterator[tuple[Tensor, Tensor]]:
    """The training batches epoch after epoch, as the engine draws them (``set_epoch`` each)."""
    epoch = 0
    while True:
        data.train.set_epoch(epoch)
        yield from data.train
        epoch += 1


def _timed_steps(
    step: Callable[[Tensor, Tensor], Tensor],
    state: TrainState,
    batches: Iterator[tuple[Tensor, Tensor]],
    count: int,
) -> tuple[list[float], bool]:
    """Run ``count`` steps as ``_train_epoch`` does; their synchronised seconds, loss finite?"""
    seconds, finite = [], True
    for _ in range(count):
        _sync(state.device)
        started = time.perf_counter()
        x, y = next(batches)  # the batch gather and augmentation are part of a step's cost
        loss = step(x, y)
        state.train_loss_sum += loss.double() * x.shape[0]
        state.samples_seen += x.shape[0]
        _sync(state.device)
        seconds.append(time.perf_counter() - started)
        finite = finite and bool(torch.isfinite(loss))
    return seconds, finite


def _validation(
    state: TrainState, data: Data, cfg: dict[str, Any], max_batches: int
) -> dict[str, Any]:
    """Time one per-epoch validation pass (``evaluate(full=False)``), bounded to ``max_batches``."""
    val = data.val
    total = len(val)
    measured = min(total, max_batches)
    part = val
    if measured < total:
        part = copy.copy(val)  # the same batches, only fewer of them (views: no copy)
        part.inputs = val.inputs[: measured * val.batch_size]
        part.targets = val.targets[: measured * val.batch_size]
    warm = copy.copy(val)
    warm.inputs, warm.targets = val.inputs[: val.batch_size], val.targets[: val.batch_size]
    evaluate(state.model, warm, cfg, state.device, data.num_classes, full=False)
    _sync(state.device)
    started = time.perf_counter()
    evaluate(state.model, part, cfg, state.device, data.num_classes, full=False)
    _sync(state.device)
    seconds = time.perf_counter() - started
    state.model.train()
    return {
        "val_samples": len(val.inputs),
        "val_batches": total,
        "val_batches_measured": measured,
        "val_measured_seconds": seconds,
        # A bounded pass is scaled to the whole set by its batch count.
        "val_seconds": seconds * total / measured,
        "val_scope": "full" if measured == total else "slice (scaled)",
    }


def _checkpoint_round_trip(
    run: Run, state: TrainState, batches: Iterator[tuple[Tensor, Tensor]]
) -> dict[str, Any]:
    """Save with ``TrainState.save``, load into a fresh state, compare, and train on: one step, or
    past a recorded step's warm-up to its recording and a replay."""
    state.save(run.folder)
    size = run.folder.last.stat().st_size
    problem = None
    try:
        saved = load_checkpoint(run.folder.last)
        fresh = TrainState.build(run.cfg, run.data, run.device)
        fresh.load_state_dict(saved)
        same = all(
            torch.equal(a, b)
            for a, b in zip(
                fresh.model.state_dict().values(), state.model.state_dict().values(), strict=True
            )
        )
        if not same:
            problem = "the resumed model's weights differ from the saved ones"
        else:
            step = _optimizer_step(run, fresh, compiled(run.cfg, fresh.model))
            # A recorded step trains past its eager warm-up, to its recording and a replay.
            after = GRAPH_WARMUP_STEPS + 2 if captures_step(run.cfg, run.device) else 1
            _, finite = _timed_steps(step, fresh, batches, after)
            if not finite:
                problem = "the step after resuming gave a non-finite loss"
    except (CheckpointError, RuntimeError, KeyError, ValueError) as error:
        problem = f"{type(error).__name__}: {error}"
    buffer = io.BytesIO()
    torch.save({"model": state.model.state_dict(), "epoch": 0}, buffer)  # best.pt's content
    return {
        "checkpoint_bytes": size,
        "best_checkpoint_bytes": buffer.getbuffer().nbytes,
        "resume_ok": problem is None,
        "resume_problem": problem,
    }


def _peak_rss_kib() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB on Linux


def rehearse_run(
    cfg: dict[str, Any],
    out: Path,
    steps: int,
    *,
    max_val_batches: int = MAX_VAL_BATCHES,
    keep_checkpoint: bool = False,
) -> dict[str, Any]:
    """Rehearse the run of ``cfg`` for ``steps`` timed optimizer steps; write and return
    ``out/rehearsal.json``.

    Raises ``UserError`` for a bad ``steps``, a bad config, missing data, or an ``out`` that holds a
    real run (``metrics.json`` or ``checkpoints/``).
    """
    if steps < 1:
        raise UserError(f"--steps must be at least 1, got {steps}")
    out = Path(out)
    for taken in (out / "metrics.json", out / "checkpoints"):
        if taken.exists():
            raise UserError(
                f"--out {out} holds a training run ({taken.name}); rehearse into another folder"
            )
    cfg = resolve(cfg)
    run_id = str(cfg.get("run_id", out))
    _configure(cfg)
    device = pick_device(cfg["compute"]["device"])
    require_compiler(cfg, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    data = load_data(cfg, device)
    _sync(device)
    data_seconds = time.perf_counter() - started
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(
            f"--out {out}: cannot create the folder ({err.strerror or err}); choose a writable one"
        ) from None

    folder = RunFolder(out / PROBE)
    shutil.rmtree(folder.out, ignore_errors=True)  # a killed earlier rehearsal's probe
    run = Run(cfg, folder, device, data, StopFlag())
    state = TrainState.build(cfg, data, device)
    state.model.train()
    step = _optimizer_step(run, state, compiled(run.cfg, state.model))
    batches = _batches(data)
    warmup, _ = _timed_steps(step, state, batches, WARMUP_STEPS)
    seconds, finite = _timed_steps(step, state, batches, steps)
    validation = _validation(state, data, cfg, max_val_batches)
    checkpoint = _checkpoint_round_trip(run, state, batches)
    if not keep_checkpoint:
        shutil.rmtree(folder.out, ignore_errors=True)

    recipe = cfg["recipe"]
    max_epochs, patience = int(recipe["epochs"]), int(recipe["patience"])
    per_step = statistics.median(seconds)
    epoch_seconds = len(data.train) * per_step + validation["val_seconds"]
    upper_bound = patience < max_epochs  # early stopping can end the run after patience+1 epochs
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "run_id": run_id,
        "task": cfg["task"],
        "model": cfg["model"],
        "settings": settings_digest(cfg),
        "wconv": __version__,
        "torch": torch.__version__,
        "host": os.uname().nodename,
        "device": str(device),
        "device_type": device.type,
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
        "amp": cfg["compute"]["amp"],
        "compile": compile_mode(cfg) or "none",
        "cuda_graph": captures_step(cfg, device),
        "params": sum(p.numel() for p in state.model.parameters()),
        "data_load_seconds": data_seconds,
        # What `wconv data prepare` recorded for this data (null if prepared before it did).
        "prepare": prepare_cost(cfg["data"], cfg["data_root"], task=cfg["task"]),
        "train_samples": len(data.train.inputs),
        "batch_size": data.train.batch_size,
        "last_batch": data.train.last_batch,
        "steps_per_epoch": len(data.train),
        "warmup_steps": WARMUP_STEPS,
        "warmup_seconds": warmup,
        "steps_timed": steps,
        "step_seconds": seconds,
        "seconds_per_step_median": per_step,
        "seconds_per_step_mean": statistics.fmean(seconds),
        "loss_finite": finite,
        **validation,
        "max_epochs": max_epochs,
        "patience": patience,
        "projected_epoch_seconds": epoch_seconds,
        "projected_run_seconds": max_epochs * epoch_seconds,
        "projection": "upper_bound" if upper_bound else "full",
        "projection_note": (
            f"max_epochs x (steps_per_epoch x median s/step + validation); early stopping "
            f"(patience {patience}) may end the run sooner"
            if upper_bound
            else "max_epochs x (steps_per_epoch x median s/step + validation)"
        ),
        **checkpoint,
        "checkpoint_kept": str(folder.last) if keep_checkpoint else None,
        "peak_rss_kib": _peak_rss_kib(),
        "peak_device_bytes": (
            torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
        ),
    }
    write_json(out / "rehearsal.json", result)
    log.info(
        "%s: %.4f s/step, %d steps/epoch, projected %.2f h%s",
        run_id,
        per_step,
        len(data.train),
        result["projected_run_seconds"] / 3600,
        " (upper bound)" if upper_bound else "",
    )
    return result
