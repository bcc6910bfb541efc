"""``wconv status``: the study grid at a glance, read from the run folders alone.

Safe on a login node while jobs run and after a crash: it reads files, never trains or locks.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wconv.errors import UserError
from wconv.report.status import STATES, grid_status
from wconv.study import load_params, run_ids


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
    params = load_params(args.params, args.preset)
    # Only an explicit --runs must exist: the default one is missing until the first run starts.
    if args.runs is not None and not args.runs.is_dir():
        raise UserError(f"--runs {args.runs}: no such folder; give the folder holding the runs")
    runs = args.runs or Path(params["paths"]["runs"])
    table = grid_status(runs, run_ids(params))
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
    print(f"{len(run_ids(params))} cells: {summary}")
    return 0
