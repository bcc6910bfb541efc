"""What the report publishes, declared once: its page sections and the shape of a table spec.

A :class:`TableSpec` names one table — its file stem under ``tables/`` (``key``), its title and
one-line caption, the page :class:`Section` it is shown in, the function that builds it from the
:class:`ReportInputs`, and the ``summary.json`` block it feeds, if any.  The registry itself,
``wconv.report.tables.TABLES``, sits next to the builders; ``build_report``, the page and
``summary.json`` iterate over it and spell no table key.  Figures carry their section (and the
table they illustrate) in :class:`wconv.report.figures.Plot`.

This module imports no other part of the report except the value types, so every report module
can use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from wconv.report.published import Published
from wconv.report.stats import ReportOptions

if TYPE_CHECKING:
    from wconv.report.tables import Table


@dataclass(frozen=True)
class Section:
    """One ``<section>`` of ``index.html``: its anchor (``id``), heading and table-of-contents
    label; an ``optional`` section is left out of the page when it has nothing to show."""

    anchor: str
    title: str
    nav: str
    optional: bool = False


CLASSIFICATION = Section("classification", "Classification (Tables 3–4, Fig. 1)", "Classification")
DENOISING = Section("denoising", "Denoising (Tables 5–6, Figs. 2–3)", "Denoising")
DENSITY = Section("density", "Density search", "Density search")
COORDGATE = Section("coordgate", "CoordGate: spatially-varying deblurring", "CoordGate")
STATUS = Section("status", "Grid status and run folders", "Grid status")
COST = Section("cost", "Cost estimate (from a rehearsal)", "Cost estimate", optional=True)

# The page's content sections, in page order (the overview comes first, the parameters last).
SECTIONS: tuple[Section, ...] = (CLASSIFICATION, DENOISING, DENSITY, COORDGATE, STATUS, COST)


@dataclass
class ReportInputs:
    """Everything a table builder may read."""

    records: pd.DataFrame  # one row per finished run (wconv.report.status.scan_runs)
    status: pd.DataFrame  # the grid status, one row per run folder or expected run
    runs_dir: Path
    out_dir: Path
    published: Published
    options: ReportOptions
    expected: list[str] = field(default_factory=list)
    preset: str | None = None
    warnings: list[str] = field(default_factory=list)  # a builder appends what it skipped


Builder = Callable[[ReportInputs], "Table | None"]
Summariser = Callable[["Table", str], dict[str, Any]]  # (table, published label) -> block


@dataclass(frozen=True)
class TableSpec:
    """One published table.  ``build`` returns ``None`` when the table has no inputs at all (it is
    then neither written nor shown).  ``summary`` is the path of the ``summary.json`` block that
    ``summarise`` fills, e.g. ``("timing", "classification")``; empty for none.  A top-level
    block is always written when the table is; a nested one only when it holds something."""

    key: str  # file stem under tables/, and the table's id on the page
    title: str
    caption: str  # one sentence: what the table shows
    section: Section
    build: Builder
    summary: tuple[str, ...] = ()
    summarise: Summariser | None = None


def clean(value: Any) -> Any:
    """JSON-safe numbers: NaN → null, numpy scalars → Python."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
