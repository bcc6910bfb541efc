"""The published numbers of arXiv 2505.24558 (Tables 3–6), loaded from ``published.yaml``.

They are reference values to print *beside* our measurements, always under ``Published.label``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from wconv.vocabulary import METRICS, PAPER_TASKS

TASKS: tuple[str, ...] = PAPER_TASKS  # the sections of published.yaml


@dataclass(frozen=True)
class PublishedEntry:
    """One model × kernel size of the paper: its standard and best-weighted numbers."""

    task: str
    model: str
    name: str
    aliases: tuple[str, ...]
    kernel_size: int
    standard: Mapping[str, float]
    weighted: Mapping[str, float]
    weighted_density: tuple[float, ...]

    def matches(self, model: str) -> bool:
        return model == self.model or model in self.aliases


@dataclass(frozen=True)
class Published:
    arxiv: str
    label: str
    title: str
    device: str
    entries: tuple[PublishedEntry, ...]

    def find(self, task: str, model: str, kernel_size: int) -> PublishedEntry | None:
        for entry in self.entries:
            if entry.task == task and entry.kernel_size == kernel_size and entry.matches(model):
                return entry
        return None

    def for_task(self, task: str) -> list[PublishedEntry]:
        return [entry for entry in self.entries if entry.task == task]


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _entry(task: str, raw: Any, where: str) -> PublishedEntry:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected a mapping with model, kernel_size, standard, weighted")
    for key in ("model", "kernel_size", "standard", "weighted"):
        if key not in raw:
            raise ValueError(f"{where}: missing key {key!r}")
    needed = (*METRICS[task], "seconds_per_epoch")
    blocks: dict[str, dict[str, float]] = {}
    for conv in ("standard", "weighted"):
        block = raw[conv]
        if not isinstance(block, Mapping):
            raise ValueError(f"{where}.{conv}: expected a mapping of metric: value")
        missing = [m for m in needed if m not in block]
        if missing:
            raise ValueError(f"{where}.{conv}: missing metric(s) {missing}")
        blocks[conv] = {m: _number(block[m], f"{where}.{conv}.{m}") for m in needed}
    density = raw["weighted"].get("density")
    if not isinstance(density, list) or not density:
        raise ValueError(f"{where}.weighted.density: expected a list like [0.75] or [0.1, 0.9]")
    kernel = raw["kernel_size"]
    if not isinstance(kernel, int) or kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"{where}.kernel_size: expected an odd integer, got {kernel!r}")
    return PublishedEntry(
        task=task,
        model=str(raw["model"]),
        name=str(raw.get("name", raw["model"])),
        aliases=tuple(str(a) for a in raw.get("aliases") or ()),
        kernel_size=kernel,
        standard=blocks["standard"],
        weighted=blocks["weighted"],
        weighted_density=tuple(_number(v, f"{where}.weighted.density") for v in density),
    )


def _yaml_problem(err: yaml.YAMLError) -> str:
    """A YAML parser error on one line: what is wrong and where."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def load_published(path: str | Path | None = None) -> Published:
    """Load and check the published values (the packaged ``published.yaml`` by default)."""
    if path is None:
        text = resources.files("wconv.report").joinpath("published.yaml").read_text()
        where = "wconv/report/published.yaml"
    else:
        text, where = Path(path).read_text(), str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"{where}: not valid YAML ({_yaml_problem(err)})") from err
    if not isinstance(data, Mapping) or not isinstance(data.get("source"), Mapping):
        raise ValueError(f"{where}: expected a mapping with a 'source' block")
    source = data["source"]
    for key in ("arxiv", "label", "device"):
        if not source.get(key):
            raise ValueError(f"{where}: source.{key} is missing")
    if str(source["arxiv"]) not in str(source["label"]):
        raise ValueError(f"{where}: source.label must name the arXiv id {source['arxiv']}")
    entries = []
    for task in TASKS:
        rows = data.get(task) or []
        if not isinstance(rows, list):
            raise ValueError(f"{where}: {task} must be a list of entries")
        entries += [_entry(task, row, f"{where}: {task}[{i}]") for i, row in enumerate(rows)]
    return Published(
        arxiv=str(source["arxiv"]),
        label=str(source["label"]),
        title=str(source.get("title", "")),
        device=str(source["device"]),
        entries=tuple(entries),
    )
