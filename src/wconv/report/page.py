"""``index.html``: every table and figure on one self-contained page (relative links only).

The page is the overview, then one section per :data:`wconv.report.specs.SECTIONS` entry, then the
parameters.  A section shows its tables in ``TABLES`` order, each followed by the figures that
illustrate it (``Plot.table``), then the section's other figures.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from wconv import __version__
from wconv.report.figures import Plot
from wconv.report.published import Published
from wconv.report.render import html_document, relative_url, table_html
from wconv.report.specs import SECTIONS, Section
from wconv.report.status import STATES
from wconv.report.tables import TABLES, Table


@dataclass
class PlotFiles:
    title: str
    caption: str
    png: Path
    svg: Path
    section: Section
    table: str | None = None  # key of the table it illustrates: shown right after it

    @classmethod
    def of(cls, plot: Plot, png: Path, svg: Path) -> PlotFiles:
        table = plot.table.key if plot.table is not None else None
        return cls(plot.title, plot.caption, png, svg, plot.section, table)


@dataclass
class TableFiles:
    table: Table
    csv: Path
    markdown: Path
    html: Path


def _link(target: Path, base: Path, text: str) -> str:
    return f'<a href="{html.escape(relative_url(target, base))}">{html.escape(text)}</a>'


def _table(item: TableFiles, base: Path) -> str:
    files = " · ".join(
        _link(path, base, name)
        for path, name in ((item.csv, "CSV"), (item.markdown, "Markdown"), (item.html, "HTML"))
    )
    return table_html(item.table, base) + f'\n<p class="files">Files: {files}</p>'


def _plot(item: PlotFiles, base: Path) -> str:
    png, svg = relative_url(item.png, base), relative_url(item.svg, base)
    return (
        '<figure class="plot">'
        f"<figcaption>{html.escape(item.title)}</figcaption>"
        f'<a href="{html.escape(svg)}"><img src="{html.escape(png)}" '
        f'alt="{html.escape(item.title)}" loading="lazy"></a>'
        f'<p class="files">{html.escape(item.caption)} Files: '
        f"{_link(item.png, base, 'PNG')} · {_link(item.svg, base, 'SVG')}</p>"
        "</figure>"
    )


def _section(anchor: str, title: str, parts: Sequence[str]) -> str:
    body = "\n".join(parts) or '<p class="notice">Nothing to show yet.</p>'
    return f'<section id="{anchor}">\n<h2>{html.escape(title)}</h2>\n{body}\n</section>'


def _section_parts(
    section: Section, tables: dict[str, TableFiles], plots: Sequence[PlotFiles], base: Path
) -> list[str]:
    """A section's tables (registry order), each followed by its figures, then its other figures."""
    mine = [item for item in plots if item.section == section]
    parts: list[str] = []
    for spec in TABLES:
        if spec.section != section:
            continue
        if spec.key in tables:
            parts.append(_table(tables[spec.key], base))
        parts += [_plot(item, base) for item in mine if item.table == spec.key]
    shown = {spec.key for spec in TABLES if spec.section == section}
    return parts + [_plot(item, base) for item in mine if item.table not in shown]


def render_index(
    out_dir: Path,
    runs_dir: Path,
    tables: Sequence[TableFiles],
    plots: Sequence[PlotFiles],
    status: pd.DataFrame,
    published: Published,
    warnings: Sequence[str],
    params: tuple[Path | None, str] | None,
    generated: str,
) -> str:
    """The page's HTML: every table and figure in the section its spec or ``Plot`` names."""
    base = out_dir
    counts = status["state"].value_counts().to_dict() if len(status) else {}
    found = int(sum(counts.get(s, 0) for s in STATES if s != "not started"))
    badges = " ".join(
        f"<span>{html.escape(state)}: {counts[state]}</span>"
        for state in STATES
        if counts.get(state)
    )
    overview = [
        f'<p class="counts"><span>run folders: {found}</span> {badges}</p>',
    ]
    if found == 0:
        where = _link(runs_dir, base, str(runs_dir)) if runs_dir.exists() else str(runs_dir)
        overview.append(
            '<p class="notice"><strong>No runs yet.</strong> No run folder was found under '
            f"{where}"
            ". Start the study (e.g. <code>snakemake --profile slurm</code>) and rerun "
            "<code>wconv report</code>; the published values are shown below for reference.</p>"
        )
    if warnings:
        items = "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
        overview.append(f'<div class="warning">Problems while reading runs:<ul>{items}</ul></div>')
    overview.append(
        "<p>Every number in a white column was measured from the run folders by "
        "<code>wconv report</code>; shaded columns headed "
        f"<em>{html.escape(published.label)}</em> are copied from the paper for comparison "
        "and were not measured here. Densities are chosen on the validation split; the test "
        "split is reported once. Each standard-vs-weighted difference Δ is given with its 95% "
        "confidence interval across seeds: the interval, not p alone, says how large the effect "
        "is and whether it could be zero.</p>"
    )

    by_key = {item.table.key: item for item in tables}
    shown: list[tuple[str, str]] = [("overview", "Overview")]
    sections = [_section("overview", "Overview", overview)]
    for section in SECTIONS:
        parts = _section_parts(section, by_key, plots, base)
        if parts or not section.optional:
            sections.append(_section(section.anchor, section.title, parts))
            shown.append((section.anchor, section.nav))
    if params is not None:
        path, text = params
        source = f"from {_link(path, base, str(path))} " if path is not None else ""
        intro = f"<p>The effective settings {source}(preset applied) used for this study:</p>"
        sections.append(
            _section("params", "Parameters", [intro, f"<pre>{html.escape(text)}</pre>"])
        )
        shown.append(("params", "Parameters"))
    nav = " ".join(f'<a href="#{anchor}">{name}</a>' for anchor, name in shown)
    header = (
        '<header class="page"><h1>Weighted convolution — study results</h1>'
        f"<p>Generated {html.escape(generated)} by wconv {html.escape(__version__)} from "
        f"{html.escape(str(runs_dir))}. Reference: {html.escape(published.title)}, "
        f"arXiv {html.escape(published.arxiv)}.</p></header>"
    )
    footer = (
        "<footer>Built by <code>wconv report</code> from the run folders; do not edit by hand — "
        "rerun the command instead.</footer>"
    )
    body = f'{header}\n<nav class="toc">{nav}</nav>\n<main>\n' + "\n".join(sections)
    return html_document("wconv — study results", body + f"\n</main>\n{footer}")
