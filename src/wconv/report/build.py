"""``build_report``: run folders in, ``index.html`` + tables + figures + ``summary.json`` out.

Outputs under ``out_dir``::

    index.html                 the page (every table and figure, grid status, params)
    summary.json               key numbers, machine-readable; ours only
    metrics.json               the headline numbers per cell (DVC metrics)
    tables/<key>.{csv,md,html} one file per table (tables.TABLES) and format
    figures/<stem>.{png,svg}   one file per figure and format

Every file is written atomically.  Partial studies give partial tables ("—"), never an error;
unreadable run files are reported as warnings and on the page.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from wconv.io import write_json, write_text
from wconv.report.coordgate import coordgate_plots
from wconv.report.figures import (
    confusion_plots,
    density_plots,
    example_plots,
    save_plot,
    timing_plots,
)
from wconv.report.headline import headline_metrics
from wconv.report.page import PlotFiles, TableFiles, render_index
from wconv.report.published import Published, load_published
from wconv.report.render import html_document, relative_url, table_csv, table_html, table_markdown
from wconv.report.specs import ReportInputs
from wconv.report.stats import ReportOptions
from wconv.report.status import scan_runs
from wconv.report.tables import TABLES, Table, build_tables, summarise_tables
from wconv.vocabulary import METRICS


@dataclass
class Report:
    index: Path
    summary_path: Path
    tables: dict[str, Table]
    figures: list[Path]
    summary: dict[str, Any]
    status: pd.DataFrame
    warnings: list[str] = field(default_factory=list)


def options_from_params(params: Mapping[str, Any] | None) -> ReportOptions:
    """``ReportOptions`` from the optional ``report:`` section of a params file.

    Keys: ``select_metric`` (mapping task → metric, e.g. ``{classification: f1_macro}``) and
    ``wilcoxon_min_n`` (int ≥ 1).  Unknown keys or values are a ``ValueError``.
    """
    section = (params or {}).get("report") or {}
    defaults = ReportOptions()  # the keys and their defaults, written once
    names = [f.name for f in fields(ReportOptions)]
    if not isinstance(section, Mapping):
        raise ValueError(f"params: 'report' must be a mapping ({', '.join(names)})")
    unknown = sorted(set(section) - set(names))
    if unknown:
        raise ValueError(f"params: unknown report key(s) {unknown}; valid: {', '.join(names)}")
    select = dict(defaults.select_metric)
    for task, metric in (section.get("select_metric") or {}).items():
        if task not in METRICS or metric not in METRICS[task]:
            valid = {t: list(m) for t, m in METRICS.items()}
            raise ValueError(
                f"params: report.select_metric {task}: {metric!r} is not valid; use {valid}"
            )
        select[task] = metric
    min_n = section.get("wilcoxon_min_n", defaults.wilcoxon_min_n)
    if isinstance(min_n, bool) or not isinstance(min_n, int) or min_n < 1:
        raise ValueError(f"params: report.wilcoxon_min_n must be an integer ≥ 1, got {min_n!r}")
    return ReportOptions(select_metric=select, wilcoxon_min_n=min_n)


def summarise_report(
    tables: Mapping[str, Table], status: pd.DataFrame, label: str
) -> dict[str, Any]:
    """Key numbers of our runs (no published value) for ``summary.json``: the run counts, then
    the block each table of ``TABLES`` feeds."""
    counts = status["state"].value_counts().to_dict() if len(status) else {}
    runs = {"total": len(status), **{k: int(v) for k, v in counts.items()}}
    return {"runs": runs, **summarise_tables(dict(tables), label)}


def _write_table(table: Table, folder: Path, index: Path) -> TableFiles:
    files = TableFiles(
        table, folder / f"{table.key}.csv", folder / f"{table.key}.md", folder / f"{table.key}.html"
    )
    write_text(files.csv, table_csv(table))
    write_text(files.markdown, table_markdown(table, folder))
    back = f'<p><a href="{relative_url(index, folder)}">← back to the results page</a></p>'
    body = f"<main>\n{back}\n{table_html(table, folder)}\n</main>"
    write_text(files.html, html_document(table.title, body))
    return files


def _finished(status: pd.DataFrame) -> int:
    return int(status["state"].isin(["done", "diverged"]).sum()) if len(status) else 0


def _finished_runs(summary: Path) -> int:
    """Finished (done + diverged) runs in an existing ``summary.json``; 0 if none or unreadable."""
    try:
        runs = json.loads(summary.read_text())["runs"]
        return int(runs.get("done", 0)) + int(runs.get("diverged", 0))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return 0


def _remove_stale_figures(folder: Path, kept: list[Path]) -> None:
    """Delete figure files this report did not write: they show runs no longer in its tables."""
    if not folder.is_dir():
        return
    keep = {path.resolve() for path in kept}
    for path in folder.iterdir():
        if path.suffix in (".png", ".svg") and path.resolve() not in keep:
            path.unlink(missing_ok=True)


def _remove_stale_tables(folder: Path, built: Iterable[str]) -> None:
    """Delete the files of registry tables this report did not build (e.g. a cost estimate whose
    rehearsals are gone); other files in ``folder`` are left alone."""
    for spec in TABLES:
        if spec.key not in built:
            for suffix in (".csv", ".md", ".html"):
                (folder / f"{spec.key}{suffix}").unlink(missing_ok=True)


def build_report(
    runs_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    params: Mapping[str, Any] | None = None,
    params_source: str | os.PathLike[str] | None = None,
    expected_run_ids: Iterable[str] = (),
    options: ReportOptions | None = None,
    published: Published | None = None,
    allow_empty: bool = False,
) -> Report:
    """Rebuild every report output under ``out_dir`` from the run folders under ``runs_dir``.

    ``params`` are the study's effective settings (shown on the page, linked to the file
    ``params_source``); ``expected_run_ids`` let the grid status list cells that have not started;
    ``options`` default to the ``report:`` section of ``params``, else to ``ReportOptions()``.
    The tables are those of ``wconv.report.tables.TABLES``; the cost estimate among them appears
    when ``out_dir/rehearsals/<params["preset"]>/`` holds rehearsals (``wconv rehearse``).
    A missing ``runs_dir`` is a ``ValueError``, and so is a report with fewer finished runs than
    the ``summary.json`` already in ``out_dir`` (a mistyped folder must not wipe results) unless
    ``allow_empty``.  Figures of the previous report that this one does not draw are removed.
    """
    runs, out = Path(runs_dir), Path(out_dir)
    if not runs.is_dir():
        raise ValueError(f"--runs {runs}: no such folder; give the folder holding the run folders")
    options = options or options_from_params(params)
    shown = None
    if params is not None:
        source = Path(params_source) if params_source is not None else None
        shown = (source, yaml.safe_dump(dict(params), sort_keys=False, allow_unicode=True))
    published = published or load_published()
    expected = list(expected_run_ids)
    status, records = scan_runs(runs, expected)
    before, now = _finished_runs(out / "summary.json"), _finished(status)
    if now < before and not allow_empty:
        raise ValueError(
            f"{out} reports {before} finished runs but {runs} has only {now}; check --runs, "
            "or pass --allow-empty to replace the report anyway"
        )
    warnings = [
        f"{row['run_id']}: {row['detail']}"
        for row in status.to_dict("records")
        if row["state"] == "corrupt"
    ]

    preset = (params or {}).get("preset")
    inputs = ReportInputs(
        records, status, runs, out, published, options, expected, preset, warnings
    )
    tables = build_tables(inputs)
    index = out / "index.html"
    table_files = [_write_table(table, out / "tables", index) for table in tables.values()]
    _remove_stale_tables(out / "tables", tables)

    plots = (
        confusion_plots(records, options, warnings)
        + example_plots(records, options, warnings)
        + density_plots(records, options)
        + timing_plots(tables)
        + coordgate_plots(out, records, warnings)
    )
    plot_files = [PlotFiles.of(plot, *save_plot(plot, out / "figures")) for plot in plots]
    figures = [path for item in plot_files for path in (item.png, item.svg)]

    _remove_stale_figures(out / "figures", figures)
    summary = summarise_report(tables, status, published.label)
    write_json(out / "summary.json", summary)
    write_json(out / "metrics.json", headline_metrics(summary, preset))
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = render_index(
        out, runs, table_files, plot_files, status, published, warnings, shown, generated
    )
    write_text(index, page)
    return Report(index, out / "summary.json", tables, figures, summary, status, warnings)
