"""``wconv status``: the study grid at a glance, read from the run folders alone.

Safe on a login node while jobs run and after a crash: it reads files, never trains or locks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wconv.errors import UserError
from wconv.vocabulary import RUN_STATES as STATES


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "status",
        help="show done / running / failed / diverged / not started per grid cell",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--preset", help="override the preset chosen in the params file")
    parser.add_argument("--runs", type=Path, help="run folders (default: paths.runs of --params)")
    parser.add_argument(
        "--state", choices=STATES, action="append", help="show only cells in this state"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: pandas (the report) and torch (the study's model registry).
    from wconv.report.queue import slurm_queue
    from wconv.report.status import grid_status, with_queue
    from wconv.study import load_params, run_ids

    params = load_params(args.params, args.preset)
    # Only an explicit --runs must exist: the default one is missing until the first run starts.
    if args.runs is not None and not args.runs.is_dir():
        raise UserError(f"--runs {args.runs}: no such folder; give the folder holding the runs")
    runs = args.runs or Path(params["paths"]["runs"])
    grid = run_ids(params)
    table = grid_status(runs, grid)
    # On a cluster, the queue knows the runs that wait for a node (no folder yet).
    queue = slurm_queue(grid)
    if queue is not None:
        table = with_queue(table, queue)
    counts = table["state"].value_counts()
    summary = ", ".join(f"{counts.get(state, 0)} {state}" for state in STATES)
    if args.state:
        table = table[table["state"].isin(args.state)]
    columns = ["run_id", "state", "epochs_done", "max_epochs", "best_val_metric", "detail"]
    whole = lambda v: "" if v != v or v is None else str(int(v))  # noqa: E731 (NaN → blank)
    table = table.assign(
        epochs_done=table["epochs_done"].map(whole),
        max_epochs=table["max_epochs"].map(whole),
        best_val_metric=table["best_val_metric"].map(lambda v: f"{v:.4g}" if v == v else ""),
    )
    shown = table[columns].fillna("").astype(str)
    widths = {
        c: max(len(c), *(len(v) for v in shown[c])) if len(shown) else len(c) for c in columns
    }
    print("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    for _, row in shown.iterrows():
        print("  ".join(row[c].ljust(widths[c]) for c in columns).rstrip())
    print(f"{len(grid)} cells: {summary}")
    if queue is not None and queue.array_tasks:
        # An array's tasks all carry the first task's comment: counted, not matched to runs.
        waiting = sum(job.waiting for job in queue.array_tasks)
        print(f"SLURM job arrays: {len(queue.array_tasks)} train tasks, {waiting} pending")
    if queue is not None and queue.error:
        print(f"warning: {queue.error}; queued jobs not shown", file=sys.stderr)
    return 0
