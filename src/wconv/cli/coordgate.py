"""``wconv coordgate``: the CoordGate study's stand-alone experiments (one command per rule).

    wconv coordgate oned --params params.yaml --out results/coordgate/oned
    wconv coordgate padding --params params.yaml --out results/coordgate/padding

Settings come from ``coordgate.experiments.<name>`` of the params file (preset applied).
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wconv.errors import UserError

# Each experiment's function in wconv.experiments, looked up when it runs (that loads torch).
EXPERIMENTS: dict[str, str] = {"oned": "run_coordgate_1d", "padding": "run_padding_signal"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "coordgate", help="run a CoordGate experiment (1D task, padding signal)"
    )
    parser.add_argument("experiment", choices=sorted(EXPERIMENTS))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--preset", help="override the preset chosen in the params file")
    parser.add_argument("--out", type=Path, required=True, help="folder for results.json/.npz")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: both load torch.
    from wconv import experiments
    from wconv.study import load_params

    params = load_params(args.params, args.preset)
    section = (params.get("coordgate") or {}).get("experiments", {}).get(args.experiment)
    if not section:
        raise UserError(
            f"params: coordgate.experiments.{args.experiment} is missing; add it with "
            "activate: true"
        )
    settings = {k: v for k, v in section.items() if k != "activate"}
    experiment: Callable[..., dict[str, Any]] = getattr(experiments, EXPERIMENTS[args.experiment])
    accepted = set(inspect.signature(experiment).parameters) - {"out_dir"}
    unknown = sorted(set(settings) - accepted)
    if unknown:
        raise UserError(
            f"params: coordgate.experiments.{args.experiment} has unknown key(s) {unknown}; "
            f"valid: {sorted(accepted)}"
        )
    try:
        experiment(args.out, **settings)
    except ValueError as error:
        raise UserError(f"coordgate {args.experiment}: {error}") from None
    print(args.out)
    return 0
