"""The state of every grid cell, read from its run folder (docs/run-folder.md).

States, first match wins:

* ``done`` — ``metrics.json`` with status ok / stopped_early; ``diverged`` — status diverged;
* ``corrupt`` — a ``metrics.json`` (or ``.lock``) that cannot be read or disagrees with the run id;
* ``failed`` — a ``failed`` marker file, or a ``.lock`` whose holder is gone (dead pid on this
  host; another host's heartbeat, the lock's mtime, older than ``STALE_AFTER_S``);
* ``running`` — a ``.lock`` whose pid is alive on this host, or whose heartbeat from another host
  is fresh (we cannot look at other hosts' processes);
* ``pending`` — (``wconv status`` only, from ``squeue``) a train job for the run waits in the
  SLURM queue; see ``wconv.report.queue``;
* ``interrupted`` — the folder exists without lock or metrics (e.g. a stopped job that left its
  last checkpoint; rerunning resumes it);
* ``not started`` — an expected run id without a folder.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from wconv.io import read_json
from wconv.report.queue import Queue
from wconv.report.runs import (
    RECORD_COLUMNS,
    RunId,
    find_run_folders,
    parse_run_id,
    read_history,
    read_metrics,
    run_record,
)
from wconv.runfolder import describe, holder_gone, read_holder, short_host, sidecar
from wconv.vocabulary import RUN_STATES

STATES = RUN_STATES
FAILED_MARKER = "failed"
STATUS_COLUMNS: tuple[str, ...] = (
    "run_id",
    "study",
    "model",
    "conv",
    "density",
    "kernel_size",
    "seed",
    "state",
    "epochs_done",
    "max_epochs",
    "best_val_metric",
    "detail",
)


def _lock_state(lock: Path) -> tuple[str, str]:
    info = read_holder(lock)
    if not info:
        return "corrupt", f"unreadable lock {lock}"
    holder = describe(info)
    if holder_gone(lock, info):
        return "failed", f"stale lock: {holder} is gone; rerun to resume"
    if short_host(str(info.get("host") or "")) != short_host(socket.gethostname()):
        return "running", f"{holder}, heartbeat fresh (other host, pid not checked)"
    return "running", f"{holder}, alive"


def run_state(folder: Path, run_id: RunId) -> tuple[str, str, dict[str, Any] | None]:
    """``(state, detail, metrics)`` of one run folder (metrics only for done/diverged runs)."""
    if not folder.is_dir():
        return "not started", "", None
    metrics_path = folder / "metrics.json"
    if metrics_path.is_file():
        try:
            metrics = read_metrics(metrics_path, run_id)
        except (ValueError, OSError) as err:
            return "corrupt", str(err), None
        if metrics["status"] == "diverged":
            return "diverged", f"diverged at epoch {metrics.get('epochs_run', '?')}", metrics
        return "done", str(metrics["status"]), metrics
    if (folder / FAILED_MARKER).exists():
        reason = (folder / FAILED_MARKER).read_text(errors="replace").strip().splitlines()
        return "failed", reason[0] if reason else "failed marker present", None
    if (folder / ".lock").is_file():
        state, detail = _lock_state(folder / ".lock")
        return state, detail, None
    return (
        "interrupted",
        "no lock and no metrics.json: stopped before the end; rerun to resume",
        None,
    )


def _configured_epochs(folder: Path) -> int | None:
    """``recipe.epochs`` of the run's resolved ``config.yaml``, if it is there and readable."""
    try:
        config = yaml.safe_load((folder / "config.yaml").read_text())
        epochs = config["recipe"]["epochs"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None
    return int(epochs) if isinstance(epochs, int) else None


def _checkpoint_epochs(folder: Path) -> int | None:
    """Epochs done per the last checkpoint's sidecar: the engine resumes from that, so it is
    the truth when history.csv has a row more (killed between the two writes) or was lost."""
    with contextlib.suppress(OSError, ValueError, TypeError):
        info = read_json(sidecar(folder / "checkpoints" / "last.pt"))
        if isinstance(info, Mapping) and isinstance(info.get("epoch"), int):
            return int(info["epoch"])
    return None


def _progress(folder: Path) -> tuple[int | None, float]:
    epochs = _checkpoint_epochs(folder)
    history = folder / "history.csv"
    if not history.is_file():
        return epochs, math.nan
    try:
        frame = read_history(history)
    except ValueError:
        return epochs, math.nan
    if epochs is not None:
        frame = frame.iloc[:epochs]
    done = len(frame) if epochs is None else epochs
    if "val_metric" not in frame.columns or frame.empty:
        return done, math.nan
    # val_metric is the study's main validation metric (accuracy, PSNR): higher is better.
    return done, float(pd.to_numeric(frame["val_metric"], errors="coerce").max())


def scan_runs(
    runs_dir: str | os.PathLike[str], expected_run_ids: Iterable[str] = ()
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(status, records)``: the grid status (see :func:`grid_status`) and one row per finished
    (done or diverged) run with its metrics flattened (columns ``RECORD_COLUMNS``)."""
    root = Path(runs_dir)
    folders = find_run_folders(root)
    ids = {str(parse_run_id(run_id)) for run_id in expected_run_ids} | set(folders)
    rows, records = [], []
    for key in sorted(ids):
        run_id = parse_run_id(key)
        folder = folders.get(key, root / key)
        state, detail, metrics = run_state(folder, run_id)
        if metrics is not None:
            try:
                records.append(run_record(run_id, folder, metrics))
            except (ValueError, OSError) as err:
                state, detail = "corrupt", str(err)
        epochs, best = _progress(folder)
        max_epochs = (metrics or {}).get("max_epochs") or _configured_epochs(folder)
        rows.append(
            {
                "run_id": key,
                "study": run_id.prefix,
                "model": run_id.model,
                "conv": run_id.conv,
                "density": run_id.density_label,
                "kernel_size": run_id.kernel_size,
                "seed": run_id.seed,
                "state": state,
                "epochs_done": epochs,
                "max_epochs": max_epochs,
                "best_val_metric": best,
                "detail": detail,
            }
        )
    status = pd.DataFrame(rows, columns=list(STATUS_COLUMNS))
    return status, pd.DataFrame(records, columns=list(RECORD_COLUMNS))


def grid_status(
    runs_dir: str | os.PathLike[str], expected_run_ids: Iterable[str] = ()
) -> pd.DataFrame:
    """One row per run id (expected ones plus every folder found) with its state and progress.

    Columns: ``STATUS_COLUMNS``; ``state`` is one of ``STATES``.  ``epochs_done`` is the last
    checkpoint's epoch (else the number of ``history.csv`` rows) and ``best_val_metric`` the best
    ``val_metric`` logged so far.  A malformed expected id is a ``ValueError``.
    """
    return scan_runs(runs_dir, expected_run_ids)[0]


def with_queue(status: pd.DataFrame, queue: Queue) -> pd.DataFrame:
    """``status`` with what the SLURM queue knows: a run whose job waits is ``pending``, a run
    whose job has just started (no lock yet) ``running``; finished runs keep their state."""
    status = status.copy()
    for index, row in status.iterrows():
        job = queue.by_run.get(str(row["run_id"]))
        if job is None or row["state"] in ("done", "diverged", "corrupt"):
            continue
        if job.waiting:
            status.loc[index, ["state", "detail"]] = ["pending", job.describe()]
        elif row["state"] != "running":
            status.loc[index, ["state", "detail"]] = ["running", f"{job.describe()}, starting"]
        else:
            status.loc[index, "detail"] = f"{job.describe()}: {row['detail']}"
    return status
