"""``wconv data``: prepare / prepare-study / info / list and one-line user errors."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import wconv.cli
from wconv.cli.data import add_parser
from wconv.data import load_split, prepared_dir
from wconv.errors import UserError
from wconv.study import load_params

REPO = Path(__file__).resolve().parents[1]
UNREACHABLE = ["--set", "source.url=http://127.0.0.1:9/cifar-100-python.tar.gz"]
FAST = ["--set", "source.retries=1", "--set", "source.backoff=0"]


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="wconv")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["data", *argv])
    return args.func(args)


def test_prepare_embedded_prints_the_folder(tmp_path, capsys):
    assert _run("prepare", "embedded-cls", "--root", str(tmp_path)) == 0
    folder = Path(capsys.readouterr().out.strip())
    assert folder == prepared_dir({"dataset": "embedded-cls"}, tmp_path)
    assert (folder / "manifest.json").is_file()


def test_unreachable_download_is_a_one_line_error_with_the_fix(tmp_path):
    with pytest.raises(UserError) as info:
        _run("prepare", "cifar100", "--root", str(tmp_path), *UNREACHABLE, *FAST)
    message = str(info.value)
    assert "\n" not in message
    assert "could not download cifar-100-python.tar.gz from http://127.0.0.1:9/" in message
    assert "set data.source.url to a mirror" in message and "data.source.archive" in message
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.mark.skipif(
    "data" not in getattr(wconv.cli, "COMMANDS", ()),
    reason="the data commands are not registered in wconv.cli yet",
)
def test_main_prints_error_and_exits_nonzero(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "wconv.cli",
            "data",
            "prepare",
            "cifar100",
            "--root",
            str(tmp_path),
            *UNREACHABLE,
            *FAST,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "could not download" in errors[0] and "source.archive" in errors[0]


def test_prepare_study_reads_the_preset_and_writes_a_stamp(tmp_path, capsys):
    params = REPO / "params.yaml"
    stamp = tmp_path / ".prepared" / "den.json"
    code = _run(
        "prepare-study",
        "den",
        "--params",
        str(params),
        "--preset",
        "demo",
        "--root",
        str(tmp_path),
        "--stamp",
        str(stamp),
    )
    assert code == 0
    data = load_params(params, "demo")["denoising"]["data"]
    folder = Path(capsys.readouterr().out.strip())
    assert folder == prepared_dir(data, tmp_path, task="denoising")
    written = json.loads(stamp.read_text())
    assert written["folder"] == str(folder) and written["task"] == "denoising"
    assert written["dataset"] == "embedded-den"  # `embedded` of the denoising study
    assert written["settings"]["patch_size"] == data["patch_size"]
    load_split(data, tmp_path, "test", task="denoising")


def test_set_overrides_settings(tmp_path, capsys):
    code = _run(
        "prepare",
        "embedded-den",
        "--root",
        str(tmp_path),
        "--set",
        "noise.sigma=0.2",
        "--set",
        "patch_size=24",
        "--set",
        "eval_crop=48",
        "--set",
        "patches_per_image=2",
    )
    assert code == 0
    cfg = {
        "dataset": "embedded-den",
        "noise": {"sigma": 0.2},
        "patch_size": 24,
        "eval_crop": 48,
        "patches_per_image": 2,
    }
    assert Path(capsys.readouterr().out.strip()) == prepared_dir(cfg, tmp_path)
    assert load_split(cfg, tmp_path, "val").description == "gaussian sigma=0.2 clip=False"


def test_info_reports_state_as_yaml(tmp_path, capsys):
    _run("info", "embedded-cls", "--root", str(tmp_path))
    before = yaml.safe_load(capsys.readouterr().out)
    assert before["dataset"] == "embedded-cls" and before["prepared"] is False
    assert before["settings"] == {"dataset": "embedded-cls", "val_fraction": 0.1, "split_seed": 0}
    _run("prepare", "embedded-cls", "--root", str(tmp_path))
    capsys.readouterr()
    _run("info", "embedded-cls", "--root", str(tmp_path))
    assert yaml.safe_load(capsys.readouterr().out)["prepared"] is True
    _run("list")
    listing = capsys.readouterr().out
    assert all(name in listing for name in ("cifar100", "div2k", "embedded-cls", "embedded-den"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["prepare", "--root", "x"], "name a data set"),
        (["prepare", "embedded-cls", "--root", "x", "--set", "oops"], "is not KEY=VALUE"),
        (
            ["prepare", "embedded-cls", "--root", "x", "--set", "val_fraction=2"],
            r"data.val_fraction must be a number in \(0, 1\)",
        ),
        (["prepare", "embedded-cls", "--root", "x", "--study", "cls"], "go together"),
        (["prepare", "embedded-cls"], "no data folder; pass --root"),
        (["prepare", "embedded-cls", "--root", "x", "--preset", "demo"], "--preset needs --params"),
        (
            ["prepare", "embedded", "--root", "x"],
            r"'embedded' stands for one per task; name one of embedded-cls \(classification\), "
            r"embedded-den \(denoising\), or give --params FILE --study NAME",
        ),
        (
            ["prepare-study", "xyz", "--params", str(REPO / "params.yaml"), "--root", "x"],
            "no study 'xyz'",
        ),
        (
            [
                "prepare",
                "div2k",
                "--params",
                str(REPO / "params.yaml"),
                "--study",
                "cls",
                "--root",
                "x",
            ],
            "differs from",
        ),
        (["prepare-study", "cls", "--params", "missing.yaml", "--root", "x"], "missing.yaml"),
    ],
)
def test_user_errors_are_one_line(argv, message):
    with pytest.raises(UserError, match=message) as info:
        _run(*argv)
    assert "\n" not in str(info.value)
