"""``wconv``: the command line the workflow rules call, one entry point per step.

Each sub-command module exposes ``add_parser(subparsers)``; every handler returns an exit code.
A ``UserError`` becomes ``error: <message>`` on stderr and exit code 2.

The parser is built for every command, so the sub-command modules import only the standard
library, PyYAML and the torch-free parts of wconv at module level; torch, pandas, matplotlib, piq,
torchmetrics, ``wconv.train`` and ``wconv.report`` are imported in the handlers that use them
(tests/test_startup.py checks this).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from wconv import __version__
from wconv.errors import UserError

COMMANDS = ("data", "train", "grid", "report", "status", "coordgate", "rehearse", "estimate")


def _needs_study_extra(error: ModuleNotFoundError) -> int:
    # A library-only install (`pip install wconv`) lacks the study's stack the commands import.
    print(
        f"error: the wconv commands need the study extra, pip install 'wconv[study]' ({error})",
        file=sys.stderr,
    )
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wconv", description="Weighted convolution study: data, training, reports."
    )
    parser.add_argument("--version", action="version", version=f"wconv {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"wconv.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
    except ModuleNotFoundError as error:
        if "--version" in (sys.argv[1:] if argv is None else argv):
            print(f"wconv {__version__}")
            return 0
        return _needs_study_extra(error)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return int(args.func(args) or 0)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] == "wconv":
            raise  # a module of this package: a bug, not a missing extra
        return _needs_study_extra(error)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `wconv status | head`: the reader left, nothing to report
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
