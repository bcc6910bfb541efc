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
        help="train and evaluate one run (or several, one after another)",
        description="Train, validate and test one run into --out. Rerunning after a kill "
        "resumes from the last checkpoint; a finished run is a no-op. Exit 0 also for a "
        f"diverged run; exit {EXIT_REQUEUE} after checkpointing on SIGUSR2/SIGTERM. "
        "Several --config files with as many --out folders train one after another in this "
        "process (one start-up for all; a failed run does not stop the others, the exit is 1).",
    )
    add_run_source(parser, out_help="run folder (default: <paths.runs>/<run-id>)", many=True)
    parser.set_defaults(func=run)


def add_run_source(parser: argparse.ArgumentParser, out_help: str, many: bool = False) -> None:
    """One run, as a config file (``--config``, needs ``--out``) or a grid run id (``--run-id``
    of ``--params``/``--preset``); read back by :func:`resolve_runs`. ``many``: ``--config`` and
    ``--out`` take several values, paired in order."""
    nargs = "+" if many else None
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", type=Path, nargs=nargs, help="a run config YAML file")
    source.add_argument("--run-id", help=f"a run id of the params grid, e.g. {RUN_ID_EXAMPLE}")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--preset", help="override the preset chosen in the params file")
    parser.add_argument("--out", type=Path, nargs=nargs, help=out_help)


def resolve_runs(
    args: argparse.Namespace, default_out: Callable[[dict[str, Any], str], Path]
) -> list[tuple[dict[str, Any], Path]]:
    """The run configs and output folders :func:`add_run_source`'s arguments describe;
    ``default_out(params, run_id)`` is the folder of a grid run given without ``--out``."""
    from wconv.study import load_params, run_config  # imported here: it loads torch

    if args.config is not None:
        configs = args.config if isinstance(args.config, list) else [args.config]
        if args.out is None:
            raise UserError("--out is required with --config")
        outs = args.out if isinstance(args.out, list) else [args.out]
        if len(outs) != len(configs):
            raise UserError(
                f"{len(configs)} --config files need as many --out folders, got {len(outs)}"
            )
        return [(read_run_config(c), o) for c, o in zip(configs, outs, strict=True)]
    if isinstance(args.out, list) and len(args.out) > 1:
        raise UserError(f"--run-id names one run; give one --out, not {len(args.out)}")
    out = args.out[0] if isinstance(args.out, list) else args.out
    params = load_params(args.params, args.preset)
    return [(run_config(params, args.run_id), out or default_out(params, args.run_id))]


def resolve_run(
    args: argparse.Namespace, default_out: Callable[[dict[str, Any], str], Path]
) -> tuple[dict[str, Any], Path]:
    """The one run config and output folder of :func:`add_run_source` (``many=False``)."""
    return resolve_runs(args, default_out)[0]


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

    runs = resolve_runs(args, lambda params, run_id: Path(params["paths"]["runs"]) / run_id)
    failed: list[str] = []
    for config, out in runs:
        try:
            metrics = train_run(config, out)
        except Interrupted as stop:
            # The runs not reached yet train when the retried job comes back.
            log.warning("%s; exiting with %d so the job is retried and resumes", stop, EXIT_REQUEUE)
            return EXIT_REQUEUE
        except FileNotFoundError as missing:  # missing data: the other runs would miss it too
            raise UserError(str(missing)) from None
        except Exception:
            if len(runs) == 1:
                raise
            # One run's failure does not stop the others (its folder has the failed marker).
            log.exception("%s failed", config.get("run_id", out))
            failed.append(str(config.get("run_id", out)))
            continue
        log.info("%s: %s", metrics.get("run_id"), metrics["status"])
    if failed:
        raise UserError(
            f"{len(failed)} of {len(runs)} runs failed ({', '.join(failed)}); see the log"
        )
    return 0
