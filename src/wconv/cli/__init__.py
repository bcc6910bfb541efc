"""``wconv``: the command line the workflow rules call, one entry point per step.

Each sub-command module exposes ``add_parser(subparsers)``; every handler returns an exit code.
A ``UserError`` becomes ``error: <message>`` on stderr and exit code 2.
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
        # A library-only install (`pip install wconv`) lacks the study's stack the commands import.
        if "--version" in (sys.argv[1:] if argv is None else argv):
            print(f"wconv {__version__}")
            return 0
        print(
            f"error: the wconv commands need the study extra, pip install 'wconv[study]' ({error})",
            file=sys.stderr,
        )
        return 2
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
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `wconv status | head`: the reader left, nothing to report
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
