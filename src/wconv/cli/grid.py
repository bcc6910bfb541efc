"""``wconv grid``: validate params.yaml and list the run ids of the study grid."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "grid", help="validate params.yaml and print the run ids of the grid"
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--preset", help="override the preset chosen in the params file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from wconv.study import load_params, run_ids  # imported here: it loads torch

    params = load_params(args.params, args.preset)
    for run_id in run_ids(params):
        print(run_id)
    return 0
