"""The cost of a grid from its rehearsals (``wconv rehearse``): one row per run, and totals.

Reads ``rehearsal.json`` files only (never torch, never a run folder), so it runs anywhere.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from wconv.errors import UserError

GIB, MIB = 1024**3, 1024**2
COLUMNS = [
    "run_id",
    "device",
    "seconds_per_step",
    "steps_per_epoch",
    "epoch_seconds",
    "max_epochs",
    "run_hours",
    "upper_bound",
    "peak_rss_gib",
    "peak_device_gib",
    "checkpoint_mib",
    "run_disk_mib",
    "prepare_minutes",
    "prepared_gib",
    "prepare_peak_rss_gib",
]

EXTRA_COLUMNS = ["device_type", "task", "model"]


def _row(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        device_bytes = data["peak_device_bytes"]
        prepared = data.get("prepare") or {}  # absent: prepared before the cost was recorded
        return {
            "run_id": data["run_id"],
            "device": data["device_name"],
            "device_type": data["device_type"],
            "task": data["task"],
            "model": data["model"],  # the registry name (a recipe variant's id adds a suffix)
            "seconds_per_step": float(data["seconds_per_step_median"]),
            "steps_per_epoch": int(data["steps_per_epoch"]),
            "epoch_seconds": float(data["projected_epoch_seconds"]),
            "max_epochs": int(data["max_epochs"]),
            "run_hours": float(data["projected_run_seconds"]) / 3600,
            "upper_bound": data["projection"] == "upper_bound",
            "peak_rss_gib": int(data["peak_rss_kib"]) * 1024 / GIB,
            "peak_device_gib": math.nan if device_bytes is None else int(device_bytes) / GIB,
            "checkpoint_mib": int(data["checkpoint_bytes"]) / MIB,
            # What a finished run keeps: last.pt, last.previous.pt and best.pt (weights only).
            "run_disk_mib": (2 * int(data["checkpoint_bytes"]) + int(data["best_checkpoint_bytes"]))
            / MIB,
            "prepare_minutes": prepared.get("seconds", math.nan) / 60,
            "prepared_gib": prepared.get("prepared_bytes", math.nan) / GIB,
            "prepare_peak_rss_gib": prepared.get("peak_rss_kib", math.nan) * 1024 / GIB,
        }
    except (OSError, ValueError, KeyError, TypeError) as err:
        problem = f"missing field {err}" if isinstance(err, KeyError) else str(err)
        raise UserError(
            f"{path}: not a readable rehearsal ({problem}); rerun wconv rehearse"
        ) from None


def cost_estimate(rehearsal_root: Path) -> pd.DataFrame:
    """One row per ``rehearsal.json`` under ``rehearsal_root`` (columns ``COLUMNS`` and
    ``EXTRA_COLUMNS``), sorted by run id."""
    root = Path(rehearsal_root)
    if not root.is_dir():
        raise UserError(
            f"--rehearsals {root}: no such folder; give the folder wconv rehearse wrote"
        )
    rows = [_row(path) for path in sorted(root.rglob("rehearsal.json"))]
    if not rows:
        raise UserError(f"no rehearsal.json under {root}; run wconv rehearse first")
    table = pd.DataFrame(rows, columns=[*COLUMNS, *EXTRA_COLUMNS])
    return table.sort_values("run_id", ignore_index=True)


def cost_totals(table: pd.DataFrame) -> dict[str, Any]:
    """The whole grid's cost: run-hours (all, and on GPU), checkpoint disk, peak memory."""
    on_gpu = table["device_type"] == "cuda"
    peak_device = table["peak_device_gib"].max()
    return {
        "runs": len(table),
        "run_hours": float(table["run_hours"].sum()),
        # The paper does not say when its early stopping ended runs: the same grid if every
        # run that may stop early (an upper bound) ran half its max epochs.
        "run_hours_half": float(
            (table["run_hours"] * table["upper_bound"].map({True: 0.5, False: 1.0})).sum()
        ),
        "gpu_hours": float(table.loc[on_gpu, "run_hours"].sum()),
        "runs_not_on_gpu": int((~on_gpu).sum()),
        "upper_bound_runs": int(table["upper_bound"].sum()),
        "checkpoint_gib": float(table["run_disk_mib"].sum()) / 1024,
        "max_peak_rss_gib": float(table["peak_rss_gib"].max()),
        "max_peak_device_gib": None if pd.isna(peak_device) else float(peak_device),
        # Each data set is prepared once for all its runs: the largest of the rows, not a sum.
        "max_prepare_minutes": _max_or_none(table["prepare_minutes"]),
        "max_prepared_gib": _max_or_none(table["prepared_gib"]),
        "max_prepare_peak_rss_gib": _max_or_none(table["prepare_peak_rss_gib"]),
    }


def _max_or_none(column: pd.Series) -> float | None:
    value = column.max()
    return None if pd.isna(value) else float(value)
