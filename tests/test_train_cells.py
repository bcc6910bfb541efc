"""`wconv train` with several runs (a grid cell's seeds, `workflow.train_job: cell`): one process
trains them one after another exactly as separate processes would, and a failed run does not stop
the others."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from test_reliability import DATA, _config, _result
from wconv.cli import main
from wconv.data import prepare
from wconv.train import train_run


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    prepare(DATA, root, task="classification")
    return root


def _write(path: Path, config: dict) -> str:
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _seed(config: dict, seed: int) -> dict:
    return {**config, "seed": seed, "run_id": config["run_id"].replace("/s0", f"/s{seed}")}


def test_runs_of_one_process_match_runs_trained_alone(data_root, tmp_path, capsys):
    configs = [_seed(_config(data_root), seed) for seed in (0, 1)]
    files = [_write(tmp_path / f"s{c['seed']}.yaml", c) for c in configs]
    together = [tmp_path / "together" / f"s{c['seed']}" for c in configs]
    code = main(["train", "--config", *files, "--out", *map(str, together)])
    assert code == 0, capsys.readouterr().err
    for config, out in zip(configs, together, strict=True):
        alone = train_run(config, tmp_path / "alone" / f"s{config['seed']}")
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["run_id"] == config["run_id"]
        assert _result(metrics) == _result(alone)
        history = (out / "history.csv").read_text().splitlines()
        assert [row.split(",")[:4] for row in history] == [
            row.split(",")[:4]
            for row in (tmp_path / "alone" / f"s{config['seed']}" / "history.csv")
            .read_text()
            .splitlines()
        ]
    # Different seeds are different runs: the shared process did not reuse one's state.
    first, second = (json.loads((out / "metrics.json").read_text()) for out in together)
    assert first["test"] != second["test"]


def test_a_failed_run_does_not_stop_the_others(data_root, tmp_path, capsys):
    broken = {**_seed(_config(data_root), 1), "model": "no_such_net"}
    files = [
        _write(tmp_path / "broken.yaml", broken),
        _write(tmp_path / "good.yaml", _config(data_root)),
    ]
    outs = [str(tmp_path / "broken"), str(tmp_path / "good")]
    capsys.readouterr()
    code = main(["train", "--config", *files, "--out", *outs])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(lines) == 1, lines
    assert "1 of 2 runs failed" in lines[0] and broken["run_id"] in lines[0]
    assert json.loads((tmp_path / "good" / "metrics.json").read_text())["status"] == "ok"
    assert not (tmp_path / "broken" / "metrics.json").exists()


def test_configs_and_outs_must_pair(tmp_path, capsys):
    capsys.readouterr()
    code = main(["train", "--config", "a.yaml", "b.yaml", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert "2 --config files need as many --out folders, got 1" in err
