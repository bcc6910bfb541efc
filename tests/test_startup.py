"""Start-up: what a `wconv` process imports before it does any work (by sys.modules, not timed).

Every workflow job is one `wconv ...` process, so seconds of imports are paid once per run: the
parser is built for every command and must not load the study's heavy stack, and a run imports
piq / torchmetrics only when it computes a metric that needs them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable

import pytest

# Top-level modules that cost seconds (or pull in the report stack) and no parser needs.
HEAVY = {"torch", "torchvision", "pandas", "matplotlib", "scipy", "piq", "torchmetrics", "numpy"}


def _loaded_after(code: str) -> set[str]:
    """The modules in ``sys.modules`` of a fresh interpreter after it ran ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=300
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def _top_level(modules: set[str]) -> set[str]:
    return {name.partition(".")[0] for name in modules}


def test_building_the_parser_imports_no_heavy_module() -> None:
    loaded = _loaded_after("import wconv.cli; wconv.cli.build_parser()")
    assert "wconv.cli.train" in loaded and "wconv.cli.report" in loaded  # really built
    assert _top_level(loaded) & HEAVY == set()
    assert {"wconv.train", "wconv.report", "wconv.data", "wconv.study"} & loaded == set()


def test_the_training_engine_imports_no_metric_library() -> None:
    # piq (torchvision's detection models, torch._dynamo) and torchmetrics load at the first
    # metric that needs them; a classification run never imports piq.
    loaded = _top_level(_loaded_after("import wconv.train.engine"))
    assert "torch" in loaded  # the probe really imported the engine
    assert {"piq", "torchmetrics", "pandas", "matplotlib"} & loaded == set()


def test_lazy_piq_is_piq_once_used() -> None:
    code = (
        "import sys\n"
        "from wconv.train import engine\n"
        "assert 'piq' not in sys.modules\n"
        "import piq\n"
        "assert engine.piq.psnr is piq.psnr and engine.piq.fsim is piq.fsim\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_the_parser_names_experiments_that_exist() -> None:
    # cli/coordgate.py names each experiment's function, looked up only when it runs.
    from wconv import experiments
    from wconv.cli import coordgate

    for name in coordgate.EXPERIMENTS.values():
        assert callable(getattr(experiments, name)), name


def test_data_prepare_help_lists_the_registered_data_sets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # The names are filled in only when the help is shown (listing them imports wconv.data).
    from wconv.cli import main
    from wconv.data import list_datasets

    monkeypatch.setenv("COLUMNS", "400")  # one line: argparse breaks long lines at hyphens
    with pytest.raises(SystemExit):
        main(["data", "prepare", "--help"])
    shown = capsys.readouterr().out
    assert "{datasets}" not in shown
    assert f"one of {', '.join(['embedded', *list_datasets()])}; default:" in shown


def _handler_raising(error: BaseException) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        raise error

    return handler


def test_a_missing_study_module_in_a_handler_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # The handlers import the study's stack: a library-only install gets the hint, no traceback.
    from wconv import cli
    from wconv.cli import grid

    monkeypatch.setattr(grid, "run", _handler_raising(ModuleNotFoundError(name="pandas")))
    assert cli.main(["grid"]) == 2
    assert "pip install 'wconv[study]'" in capsys.readouterr().err
    # A missing wconv module is a bug of this package: not disguised as a missing extra.
    monkeypatch.setattr(grid, "run", _handler_raising(ModuleNotFoundError(name="wconv.gone")))
    with pytest.raises(ModuleNotFoundError):
        cli.main(["grid"])
