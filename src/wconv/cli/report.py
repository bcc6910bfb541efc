"""``wconv report``: rebuild index.html, tables, figures and summary.json from the run folders."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from wconv.errors import UserError


def _expected(path: Path | None) -> list[str]:
    if path is None:
        return []
    if not path.is_file():
        raise ValueError(
            f"--expected {path}: no such file; give a text file with one run id a line"
        )
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def _params(path: Path | None, preset: str | None) -> tuple[dict[str, Any] | None, list[str]]:
    """The effective settings and the grid's run ids, by the same code as ``wconv grid``."""
    if path is None:
        if preset is not None:
            raise ValueError("--preset needs --params: pass the params file the preset is in")
        return None, []
    # The study module validates against the model registry (torch); only the CLI needs it,
    # the report package itself stays free of wconv.models and wconv.train.
    from wconv.study import load_params, run_ids

    params = load_params(path, preset)
    return params, run_ids(params)


def run(args: argparse.Namespace) -> int:
    """Build the report; a bad input is one line on stderr and exit code 2."""
    # Imported here so that `wconv --help` does not pay for pandas, scipy and matplotlib.
    from wconv.report import build_report

    try:
        params, grid = _params(args.params, args.preset)
        # The default root is the preset's own (paths.runs), so a report never reads another's runs.
        runs = args.runs or (Path(params["paths"]["runs"]) if params else None)
        if runs is None:
            raise UserError("no run folders given: pass --runs, or --params (its paths.runs)")
        report = build_report(
            runs,
            args.out,
            params=params,
            params_source=args.params,
            expected_run_ids=[*grid, *_expected(args.expected)],
            allow_empty=args.allow_empty,
        )
    except (ValueError, UserError, OSError) as err:
        message = str(err).replace("\n", " ")  # one line, whatever the library wrote
        print(f"wconv report: error: {message}", file=sys.stderr)
        return 2
    for warning in report.warnings:
        print(f"wconv report: warning: {warning}", file=sys.stderr)
    states = report.summary["runs"]
    counts = ", ".join(f"{k} {v}" for k, v in states.items() if k != "total") or "no runs yet"
    figures = len(report.figures)
    print(f"wrote {report.index} ({states['total']} runs: {counts}; {figures} figure files)")
    return 0


def add_parser(subparsers: Any) -> None:
    """Register ``report`` on the ``wconv`` subparsers; its ``func(args)`` returns the exit code."""
    parser = subparsers.add_parser(
        "report",
        help="rebuild the results page, tables and figures from the run folders",
        description=(
            "Read every run folder under --runs (never trains) and write index.html, "
            "summary.json, tables/ and figures/ under --out. Partial studies give partial tables."
        ),
    )
    parser.add_argument(
        "--runs", type=Path, default=None, help="run folders root (default: paths.runs of --params)"
    )
    parser.add_argument("--out", type=Path, default=Path("results"), help="output folder")
    parser.add_argument(
        "--params",
        type=Path,
        default=None,
        help="params file: shown on the page; its grid lists the cells not started yet",
    )
    parser.add_argument("--preset", default=None, help="preset of the params file to apply")
    parser.add_argument(
        "--expected",
        type=Path,
        default=None,
        help="text file of further expected run ids, one a line (# comments allowed)",
    )
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        help="replace an existing report even if the new one has fewer finished runs",
    )
    parser.set_defaults(func=run)
