"""``wconv train``: one run of the study grid (or any run config file)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from wconv.errors import UserError
from wconv.vocabulary import EXIT_REQUEUE, RUN_ID_EXAMPLE

log = logging.getLogger("wconv.train")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train and evaluate one run",
        description="Train, validate and test one run into --out. Rerunning after a kill "
        "resumes from the last checkpoint; a finished run is a no-op. Exit 0 also for a "
        f"diverged run; exit {EXIT_REQUEUE} after checkpointing on SIGUSR2/SIGTERM.",
    )
    add_run_source(parser, out_help="run folder (default: <paths.runs>/<run-id>)")
    parser.set_defaults(func=run)


def add_run_source(parser: argparse.ArgumentParser, out_help: str) -> None:
    """One run, as a config file (``--config``, needs ``--out``) or a grid run id (``--run-id``
    of ``--params``/``--preset``); read back by :func:`resolve_run`."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", type=Path, help="a run config YAML file")
    source.add_argument("--run-id", help=f"a run id of the params grid, e.g. {RUN_ID_EXAMPLE}")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--preset", help="override the preset chosen in the params file")
    parser.add_argument("--out", type=Path, help=out_help)


def resolve_run(
    args: argparse.Namespace, default_out: Callable[[dict[str, Any], str], Path]
) -> tuple[dict[str, Any], Path]:
    """The run config and output folder :func:`add_run_source`'s arguments describe;
    ``default_out(params, run_id)`` is the folder of a grid run given without ``--out``."""
    from wconv.study import load_params, run_config  # imported here: it loads torch

    if args.config is not None:
        config = read_run_config(args.config)
        if args.out is None:
            raise UserError("--out is required with --config")
        return config, args.out
    params = load_params(args.params, args.preset)
    return run_config(params, args.run_id), args.out or default_out(params, args.run_id)


def read_run_config(path: Path) -> dict[str, Any]:
    """The run config YAML file ``path`` (a mapping), or a one-line ``UserError``."""
    if not path.exists():
        raise UserError(f"run config {path} not found")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise UserError(f"run config {path} is not valid YAML{line}; fix the file") from None
    if not isinstance(config, dict):
        raise UserError(f"run config {path} must be a YAML mapping of run settings")
    return config


def run(args: argparse.Namespace) -> int:
    # Imported here: the parser is built for every command, this loads torch and the models.
    from wconv.train import Interrupted, train_run

    config, out = resolve_run(args, lambda params, run_id: Path(params["paths"]["runs"]) / run_id)
    try:
        metrics = train_run(config, out)
    except Interrupted as stop:
        log.warning("%s; exiting with %d so the job is retried and resumes", stop, EXIT_REQUEUE)
        return EXIT_REQUEUE
    except FileNotFoundError as missing:
        raise UserError(str(missing)) from None
    log.info("%s: %s", metrics.get("run_id"), metrics["status"])
    return 0
