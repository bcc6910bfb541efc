"""The results layer: read run folders (docs/run-folder.md) and write tables, figures and a page.

It never trains and imports nothing from ``wconv.train`` or ``wconv.models`` (nor torch), so it runs
wherever the run folders are.  ``build_report(runs_dir, out_dir)`` writes ``index.html``,
``summary.json``, ``tables/*.{csv,md,html}`` and ``figures/*.{png,svg}``.

Decisions (printed under the tables as well):

* the weighted density of each model × kernel size is the one with the best mean *validation*
  metric over seeds (accuracy / PSNR by default, ``ReportOptions.select_metric``); its *test*
  numbers are reported; the density-search table lists every candidate;
* mean ± sample std (ddof=1) over seeds; Δ and a two-sided paired t-test over seeds matched by seed
  (same seed = same initial weights); Wilcoxon signed-rank only from 6 pairs (below that its exact
  p cannot reach 0.05); p is shown as "n<2" / "n<6" when not computable;
* diverged runs are counted ("+k diverged ⚠") and excluded from every mean, choice and test;
* published values (``published.yaml``) sit in their own columns labelled
  "published (arXiv 2505.24558)" and never enter ``summary.json``.
"""

from wconv.report.build import Report, build_report, options_from_params
from wconv.report.published import Published, PublishedEntry, load_published
from wconv.report.runs import RunId, parse_run_id
from wconv.report.stats import ReportOptions
from wconv.report.status import STATES, grid_status, scan_runs
from wconv.report.tables import (
    Table,
    classification_table,
    denoising_table,
    density_search_table,
    timing_table,
)

__all__ = [
    "STATES",
    "Published",
    "PublishedEntry",
    "Report",
    "ReportOptions",
    "RunId",
    "Table",
    "build_report",
    "classification_table",
    "denoising_table",
    "density_search_table",
    "grid_status",
    "load_published",
    "options_from_params",
    "parse_run_id",
    "scan_runs",
    "timing_table",
]
