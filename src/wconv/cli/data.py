"""``wconv data``: prepare and inspect the study's data sets from the command line.

One command per workflow rule, e.g.::

    wconv data prepare-study cls --params params.yaml --root data --stamp data/.prepared/cls.json
    wconv data prepare cifar100 --root data --set source.archive=/scratch/cifar-100-python.tar.gz
    wconv data prepare embedded-den --root data --set noise.sigma=0.05
    wconv data info --params params.yaml --study den

Settings come from a study's ``data:`` section of a params file (``--params`` + ``--study``, with
the file's preset or ``--preset`` applied), from the data set's defaults when only a name is
given, and then from ``--set`` overrides. ``--root`` defaults to the params file's
``paths.data``.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

from wconv.errors import UserError
from wconv.io import read_json, write_json
from wconv.vocabulary import PREFIX_TO_STUDY, STUDIES, STUDY_PREFIX, STUDY_TASK

# wconv.data and wconv.study are imported in the handlers: they load torch, and the parser is
# built for every command.

# The studies as the commands name them: by their run-id prefixes.
_STUDY_CHOICES = " | ".join(STUDY_PREFIX[study] for study in STUDIES)

# In a help text: the data set names, filled in when the help is shown.
_DATASETS = "{datasets}"


class _DatasetsHelpFormatter(argparse.HelpFormatter):
    """Writes the registered data sets for ``{datasets}``: listing them imports wconv.data."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = super()._get_help_string(action)
        if text is None or _DATASETS not in text:
            return text
        from wconv.data.config import dataset_names

        return text.replace(_DATASETS, ", ".join(dataset_names()))


def add_parser(subparsers: Any) -> None:
    """Register the ``data`` command group on the main parser's ``subparsers``."""
    data = subparsers.add_parser(
        "data",
        help="prepare and inspect data sets",
        description="Prepare (download, parse, split, degrade, cache) and inspect the data sets.",
    )
    commands = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")

    prep = commands.add_parser(
        "prepare",
        help="download, parse, split and degrade a data set (idempotent); prints its folder",
        formatter_class=_DatasetsHelpFormatter,
    )
    prep.add_argument(
        "dataset",
        nargs="?",
        help=f"one of {_DATASETS}; default: the dataset of the --study section",
    )
    _add_settings_arguments(prep, study_option=True)
    _add_stamp_argument(prep)
    prep.set_defaults(func=run_prepare)

    study = commands.add_parser(
        "prepare-study", help="prepare the data of one study of a params file (a workflow rule)"
    )
    study.add_argument(
        "study", help=f"study section of --params: {_STUDY_CHOICES} (or its full name)"
    )
    _add_settings_arguments(study, study_option=False)
    _add_stamp_argument(study)
    study.set_defaults(func=run_prepare, dataset=None, params=Path("params.yaml"))

    info = commands.add_parser("info", help="show a data set's settings, folder and state (YAML)")
    info.add_argument("dataset", nargs="?", help="as for prepare")
    _add_settings_arguments(info, study_option=True)
    info.set_defaults(func=run_info)

    listing = commands.add_parser("list", help="list the data sets")
    listing.set_defaults(func=run_list)


def _add_settings_arguments(parser: argparse.ArgumentParser, *, study_option: bool) -> None:
    parser.add_argument("--root", type=Path, help="data folder; default: paths.data of --params")
    parser.add_argument(
        "--params", type=Path, help="params file holding the study's settings (params.yaml)"
    )
    parser.add_argument("--preset", help="preset of --params to apply (default: the file's own)")
    if study_option:
        parser.add_argument(
            "--study", help=f"study of --params whose data: settings to use ({_STUDY_CHOICES})"
        )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one data setting (dotted key, YAML value), e.g. noise.sigma=0.05 or "
        "source.archive=/path/cifar-100-python.tar.gz; repeatable",
    )


def _add_stamp_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stamp",
        type=Path,
        help="also write this JSON file (data set, folder, settings) when done: a workflow output",
    )


def data_settings(args: argparse.Namespace) -> tuple[dict[str, Any], Path, str | None]:
    """The ``data:`` section, the data root and the task (the study's; None without one)
    described by the command line."""
    from wconv.data import list_datasets, resolve
    from wconv.data.config import aliases
    from wconv.study import load_params

    cfg: dict[str, Any] = {}
    root = args.root
    task = None
    if (args.params is None) != (args.study is None):
        raise UserError("--params and --study go together; give both or neither")
    if args.params is not None:
        params = load_params(args.params, args.preset)
        cfg = _study_section(params, args.study, args.params)
        task = STUDY_TASK[PREFIX_TO_STUDY.get(args.study, args.study)]
        root = root or Path(params.get("paths", {}).get("data", "data"))
    elif args.preset is not None:
        raise UserError("--preset needs --params FILE --study NAME; add them or drop --preset")
    if root is None:
        raise UserError("no data folder; pass --root DIR (or --params FILE for its paths.data)")
    if args.dataset is not None:
        if task is None and args.dataset in aliases():
            names = ", ".join(f"{target} ({of})" for of, target in aliases()[args.dataset].items())
            raise UserError(
                f"data set {args.dataset!r} stands for one per task; name one of {names}, or "
                "give --params FILE --study NAME"
            )
        if "dataset" in cfg and cfg["dataset"] != args.dataset:
            known = _fail_as_user_error(resolve, cfg, task=task)[0].name
            if known != args.dataset:
                raise UserError(
                    f"data set {args.dataset!r} differs from {known!r} in {args.params} "
                    f"({args.study}); drop the positional name or fix the params file"
                )
        else:
            cfg["dataset"] = args.dataset
    elif "dataset" not in cfg:
        raise UserError(
            f"name a data set ({', '.join(list_datasets())}) or give --params FILE --study NAME"
        )
    for item in args.overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set {item!r} is not KEY=VALUE; write e.g. --set noise.sigma=0.05")
        *parents, leaf = key.split(".")
        node = cfg
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"--set {key}: {part} is not a section; check the key")
        node[leaf] = yaml.safe_load(text)
    return cfg, root, task


def _study_section(params: dict[str, Any], study: str, path: Path) -> dict[str, Any]:
    name = PREFIX_TO_STUDY.get(study, study)
    section = params.get(name)
    if name not in STUDIES or not isinstance(section, dict):
        choices = ", ".join(f"{STUDY_PREFIX[full]} ({full})" for full in STUDIES)
        raise UserError(f"no study {study!r} in {path}; use one of {choices}")
    if not isinstance(section.get("data"), dict):
        raise UserError(
            f"study {name!r} of {path} has no data: section; add data: {{dataset: ...}}"
        )
    return copy.deepcopy(section["data"])


def run_prepare(args: argparse.Namespace) -> int:
    from wconv.data import describe, prepare

    cfg, root, task = data_settings(args)
    folder = _fail_as_user_error(prepare, cfg, root, task=task)
    if args.stamp is not None:
        write_json(args.stamp, {**describe(cfg, task=task), "folder": str(folder)})
    print(folder)
    return 0


def run_info(args: argparse.Namespace) -> int:
    from wconv.data import prepared_dir, resolve
    from wconv.data.store import MANIFEST

    cfg, root, task = data_settings(args)
    spec, resolved = _fail_as_user_error(resolve, cfg, task=task)
    folder = prepared_dir(cfg, root, task=task)
    manifest = folder / MANIFEST
    info = {
        "dataset": spec.name,
        "task": spec.task,
        "description": spec.description,
        "folder": str(folder),
        "prepared": manifest.is_file(),
        "settings": resolved,
    }
    if manifest.is_file():
        info["created"] = read_json(manifest)["created"]
    yaml.safe_dump(info, sys.stdout, sort_keys=False)
    return 0


def run_list(args: argparse.Namespace) -> int:
    from wconv.data import list_datasets
    from wconv.data.config import get_spec

    for name in list_datasets():
        spec = get_spec(name)
        alias = f" (dataset: {spec.alias})" if spec.alias else ""
        print(f"{name:14s} {spec.task:15s} {spec.description}{alias}")
    return 0


def _fail_as_user_error(fn: Any, *args: Any, **kwargs: Any) -> Any:
    from wconv.data.download import DownloadError

    # Library errors that a user fixes by changing settings, files or the network.
    user_failures = (ValueError, FileNotFoundError, PermissionError, DownloadError)
    try:
        return fn(*args, **kwargs)
    except user_failures as e:
        raise UserError(_one_line(e)) from e


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
