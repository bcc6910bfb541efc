"""``wconv estimate``: the grid's cost (GPU-hours, disk, memory) from its rehearsals."""

from __future__ import annotations

import argparse
from pathlib import Path

from wconv.io import write_csv


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "estimate",
        help="project the grid's cost from the rehearsal.json files of wconv rehearse",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument(
        "--rehearsals", type=Path, required=True, help="folder searched for rehearsal.json files"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("results/cost_estimate.csv"),
        help="CSV written (default results/cost_estimate.csv)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from wconv.report.estimate import COLUMNS, cost_estimate, cost_totals  # pandas

    table = cost_estimate(args.rehearsals)
    totals = cost_totals(table)
    shown = table[COLUMNS].copy()
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep="-"))
    device = totals["max_peak_device_gib"]
    print(
        f"\n{totals['runs']} runs: {totals['run_hours']:.4g} run-hours, of them "
        f"{totals['gpu_hours']:.4g} GPU-hours ({totals['runs_not_on_gpu']} rehearsed off GPU); "
        f"{totals['upper_bound_runs']} upper bounds (early stopping may end them sooner; "
        f"at half their max epochs: {totals['run_hours_half']:.4g} run-hours)"
    )
    print(
        f"checkpoint disk {totals['checkpoint_gib']:.4g} GiB; max peak RSS "
        f"{totals['max_peak_rss_gib']:.3g} GiB; max peak device memory "
        f"{'-' if device is None else f'{device:.3g} GiB'}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(args.out, shown.to_dict("records"), COLUMNS)
    print(f"wrote {args.out}")
    return 0
