"""``wconv rehearse``: a few real training steps of one run, and what the full run will cost."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from wconv.cli.train import add_run_source, resolve_run
from wconv.errors import UserError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rehearse",
        help="time a few training steps of one run and project its full cost",
        description="Run one run's real training code for --steps optimizer steps (after 2 "
        "warm-up steps), time a validation pass and a checkpoint round trip, and write "
        "<out>/rehearsal.json (docs/rehearsal.md). Writes no metrics.json: a rehearsal folder "
        "never counts as a finished run. Keep --out outside paths.runs.",
    )
    add_run_source(
        parser, out_help="rehearsal folder (default: <paths.results>/rehearsals/<preset>/<run-id>)"
    )
    parser.add_argument("--steps", type=int, default=20, help="timed optimizer steps (default 20)")
    parser.add_argument(
        "--max-val-batches",
        type=int,
        default=200,
        help="time at most this many validation batches and scale to the whole set (default 200)",
    )
    parser.set_defaults(func=run)


def workflow_folder(params: dict[str, Any], run_id: str) -> Path:
    """The workflow's rehearsal folder of a grid run (workflow/rules/common.smk, REHEARSALS)."""
    preset = params.get("preset") or "default"
    return Path(params["paths"]["results"]) / "rehearsals" / preset / run_id


def run(args: argparse.Namespace) -> int:
    if args.steps < 1:
        raise UserError(f"--steps must be at least 1, got {args.steps}")
    if args.max_val_batches < 1:
        raise UserError(f"--max-val-batches must be at least 1, got {args.max_val_batches}")

    config, out = resolve_run(args, workflow_folder)
    # Imported here: torch loads only once the arguments are known to be good.
    from wconv.train.rehearsal import rehearse_run

    try:
        result = rehearse_run(config, out, args.steps, max_val_batches=args.max_val_batches)
    except FileNotFoundError as missing:
        raise UserError(str(missing)) from None
    bound = " (upper bound: early stopping may end it sooner)"
    print(
        f"{result['run_id']}: {result['seconds_per_step_median']:.4g} s/step x "
        f"{result['steps_per_epoch']} steps/epoch + {result['val_seconds']:.3g} s validation; "
        f"{result['max_epochs']} epochs = {result['projected_run_seconds'] / 3600:.3g} h"
        f"{bound if result['projection'] == 'upper_bound' else ''}; "
        f"resume {'ok' if result['resume_ok'] else 'FAILED: ' + str(result['resume_problem'])}; "
        f"wrote {out / 'rehearsal.json'}"
    )
    return 0 if result["resume_ok"] else 1
