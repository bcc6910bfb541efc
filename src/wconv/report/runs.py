"""Read the run folders the training engine writes (docs/run-folder.md); never train.

A run id (:class:`wconv.vocabulary.RunId`) is ``<study>/<model>/<conv>[-d<density>]/k<kernel
size>/s<seed>``.  Finished runs (with a ``metrics.json``) become one row each of a flat
:class:`pandas.DataFrame` that the tables and figures aggregate; every folder, finished or not,
also gets a state (:mod:`wconv.report.status`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wconv.io import read_json
from wconv.vocabulary import FINISHED_STATUSES, METRICS, TASKS, RunId

RECORD_COLUMNS: tuple[str, ...] = (
    "run_id",
    "cell",
    "study",
    "task",
    "model",
    "conv",
    "density",
    "kernel_size",
    "seed",
    "status",
    "diverged",
    "best_epoch",
    "epochs_run",
    "seconds_per_epoch",
    "device_name",
    "path",
    "params",
    "learned_density",
    *(
        f"{block}_{metric}"
        for block in ("val", "test", "identity")
        for metric in dict.fromkeys(m for task in TASKS for m in METRICS[task])
    ),
)
"""Columns of the flat table of finished runs (every task's metric columns, NaN where absent)."""


def parse_run_id(text: str) -> RunId:
    """Parse ``<study>/<model>/<conv>[-d<density>]/k<kernel_size>/s<seed>`` or raise ValueError."""
    return RunId.parse(text)


def find_run_folders(runs_dir: Path) -> dict[str, Path]:
    """Every folder ``runs_dir/<run-id>`` whose relative path parses as a run id, by id."""
    found: dict[str, Path] = {}
    if not runs_dir.is_dir():
        return found
    for path in sorted(runs_dir.glob("*/*/*/k*/s*")):
        if not path.is_dir():
            continue
        try:
            run_id = parse_run_id(path.relative_to(runs_dir).as_posix())
        except ValueError:
            continue  # not a run folder (e.g. a stray folder a user made); the grid ignores it
        found[str(run_id)] = path
    return found


def _check_metric_block(block: Any, name: str, task: str, path: Path) -> None:
    if block is None:
        return
    if not isinstance(block, Mapping):
        raise ValueError(f"{path}: {name!r} must be an object of metrics or null")
    for metric in METRICS.get(task, {}):
        value = block.get(metric)
        if value is not None and not isinstance(value, int | float):
            raise ValueError(f"{path}: {name}.{metric} must be a number, got {value!r}")


def read_metrics(path: Path, run_id: RunId) -> dict[str, Any]:
    """Load and check a ``metrics.json`` against docs/run-folder.md and the folder's run id."""
    data = read_json(path)
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a JSON object")
    required = ("study", "task", "model", "conv", "kernel_size", "seed", "status", "val", "test")
    missing = [key for key in required if key not in data]
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing} (see docs/run-folder.md)")
    if data["status"] not in FINISHED_STATUSES:
        raise ValueError(
            f"{path}: status {data['status']!r} is not one of {list(FINISHED_STATUSES)}"
        )
    expected = {
        "study": run_id.prefix,  # metrics.json names the study by its run-id prefix
        "model": run_id.model,
        "conv": run_id.conv,
        "kernel_size": run_id.kernel_size,
        "seed": run_id.seed,
    }
    wrong = {k: data[k] for k, v in expected.items() if data[k] != v}
    if wrong:
        raise ValueError(
            f"{path}: {wrong} disagree with the folder's run id {run_id}; the folder was moved "
            "or renamed — move it back to its run id"
        )
    for block in ("val", "test", "identity"):
        _check_metric_block(data.get(block), block, data["task"], path)
    return dict(data)


def read_history(path: Path) -> pd.DataFrame:
    """``history.csv`` as a DataFrame (one row per finished epoch); ``ValueError`` if unreadable."""
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=["epoch", "val_metric"])
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a readable CSV ({err})") from err


def read_confusion(path: Path) -> np.ndarray:
    """A square count matrix from ``confusion.csv`` (rows = true, columns = predicted).

    A header row of class names and/or an index column are accepted and dropped.
    """
    try:
        frame = pd.read_csv(path, header=None, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a readable CSV ({err})") from err
    numeric = frame.apply(pd.to_numeric, errors="coerce")
    if numeric.iloc[0].isna().any():  # a header row (class names, or an empty corner cell)
        numeric = numeric.iloc[1:]
    if numeric.iloc[:, 0].isna().any() or numeric.shape[1] == numeric.shape[0] + 1:
        numeric = numeric.iloc[:, 1:]  # an index column
    matrix = numeric.to_numpy(dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or np.isnan(matrix).any():
        raise ValueError(f"{path}: expected a square numeric confusion matrix, got {matrix.shape}")
    return matrix


def density_values(label: str) -> tuple[float, ...] | None:
    """The density of a run-id label ("0.75", "0.1_0.9") as floats; None for an empty label."""
    return tuple(float(v) for v in label.split("_")) if label else None


def density_label(density: Sequence[float] | None) -> str:
    """Human form of a density: ``0.75`` or ``(0.1, 0.9)``; ``—`` when there is none."""
    if density is None or len(density) == 0:
        return "—"
    if len(density) == 1:
        return f"{density[0]:g}"
    return "(" + ", ".join(f"{v:g}" for v in density) + ")"


def layer_mean_density(value: Any) -> tuple[float, ...] | None:
    """The learned density of a run as one vector: the mean over its layers.

    The engine logs one ``d`` per weighted layer as JSON (``"[[0.81], [0.78]]"``); a single
    vector, a number, or a run-id style ``"0.1_0.9"`` are accepted too.  None when the value is
    empty, unreadable, or mixes layers of different kernel sizes (no single vector to show).
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            try:
                value = [float(v) for v in text.split("_")]
            except ValueError:
                return None
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):  # ragged: layers with different numbers of rings
        return None
    if array.size == 0 or not np.isfinite(array).all():
        return None
    array = np.atleast_2d(array)
    if array.ndim != 2:
        return None
    return tuple(float(v) for v in array.mean(axis=0))


def learned_density(metrics: Mapping[str, Any], folder: Path) -> tuple[float, ...] | None:
    """The final learned density: ``metrics.json`` ``learned_density``, else ``history.csv``'s
    ``density`` at the best epoch (the last row when the best epoch is unknown)."""
    found = layer_mean_density(metrics.get("learned_density"))
    if found is not None or not (folder / "history.csv").is_file():
        return found
    history = read_history(folder / "history.csv")
    if "density" not in history.columns or history.empty:
        return None
    rows = history[history["epoch"] == metrics.get("best_epoch")] if "epoch" in history else history
    rows = rows if not rows.empty else history
    return layer_mean_density(rows["density"].iloc[-1])


def _count(value: Any) -> float:
    """A number the run wrote (e.g. its parameter count) as a float; NaN if absent or not one."""
    return float(value) if isinstance(value, int | float) else math.nan


def run_record(run_id: RunId, folder: Path, metrics: Mapping[str, Any]) -> dict[str, Any]:
    """One finished run as a table row (metrics as ``val_*``, ``test_*``, ``identity_*``)."""
    task = str(metrics["task"])
    row: dict[str, Any] = {
        "run_id": str(run_id),
        "cell": run_id.cell,
        "study": run_id.prefix,
        "task": task,
        "model": run_id.model,
        "conv": run_id.conv,
        "density": run_id.density_label,
        "kernel_size": run_id.kernel_size,
        "seed": run_id.seed,
        "status": metrics["status"],
        "diverged": metrics["status"] == "diverged",
        "best_epoch": metrics.get("best_epoch"),
        "epochs_run": metrics.get("epochs_run"),
        "seconds_per_epoch": metrics.get("seconds_per_epoch"),
        "device_name": metrics.get("device_name") or metrics.get("device") or "unknown",
        "path": str(folder),
        "params": _count(metrics.get("params")),
        "learned_density": None,
    }
    for block in ("val", "test", "identity"):
        values = metrics.get(block) or {}
        for metric in METRICS.get(task, {}):
            value = values.get(metric)
            row[f"{block}_{metric}"] = float(value) if value is not None else math.nan
    if run_id.conv == "learned":
        row["learned_density"] = learned_density(metrics, folder)
    return row
