"""The study's tables (analogues of the paper's Tables 3–6), built from finished runs.

Every table has a numeric form (``Table.data``: the CSV, one number per cell) and a display form
(``Table.columns`` / ``Table.rows``: Markdown and HTML, "mean ± std" strings, "—" for a missing
cell).  Published values sit in columns of their own whose group (HTML) or name prefix (CSV,
Markdown) is the published label, "published (arXiv 2505.24558)".

Each table is declared once, as a :class:`~wconv.report.specs.TableSpec` in ``TABLES`` at the end
of this module (key, title, caption, page section, builder, ``summary.json`` block); the report
builds, writes, shows and summarises exactly the tables of that registry.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from wconv.errors import UserError
from wconv.report.estimate import cost_estimate, cost_totals
from wconv.report.published import Published, PublishedEntry
from wconv.report.runs import density_label, density_values, parse_run_id
from wconv.report.specs import (
    CLASSIFICATION,
    COORDGATE,
    COST,
    DENOISING,
    DENSITY,
    STATUS,
    ReportInputs,
    TableSpec,
    clean,
)
from wconv.report.stats import (
    ReportOptions,
    by_seed,
    choose_density,
    density_candidates,
    paired_test,
    summarise,
)
from wconv.vocabulary import METRICS, PAPER_TASKS

OURS = "ours (measured)"
MISSING = "—"


class Link(NamedTuple):
    """A cell that links to a file or folder on disk (written as a relative link)."""

    text: str
    target: Path


Cell = str | Link


@dataclass
class Table:
    key: str  # file stem under tables/, e.g. "table3_classification"
    title: str
    notes: list[str]
    data: pd.DataFrame
    columns: list[tuple[str, str]]  # (group, header); group "" | OURS | published label
    rows: list[list[Cell]] = field(default_factory=list)
    row_classes: list[str] = field(default_factory=list)
    caption: str = ""  # one sentence: what the table shows (its spec's)

    @classmethod
    def of(
        cls,
        spec: TableSpec,
        notes: list[str],
        data: pd.DataFrame,
        columns: list[tuple[str, str]],
        rows: list[list[Cell]],
        row_classes: list[str],
    ) -> Table:
        """The table ``spec`` declares (its key, title and caption) with the builder's content."""
        return cls(spec.key, spec.title, notes, data, columns, rows, row_classes, spec.caption)


@dataclass(frozen=True)
class MetricSpec:
    key: str  # name in metrics.json
    label: str  # display header
    scale: float  # accuracy is stored on [0, 1] and shown in %
    digits: int

    @property
    def column(self) -> str:
        return f"{self.key}_pct" if self.scale == 100.0 else self.key


SPECS: dict[str, tuple[MetricSpec, ...]] = {
    "classification": (
        MetricSpec("accuracy", "accuracy %", 100.0, 2),
        MetricSpec("f1_macro", "macro F1", 1.0, 3),
    ),
    "denoising": (
        MetricSpec("psnr", "PSNR dB", 1.0, 2),
        MetricSpec("ssim", "SSIM", 1.0, 3),
        MetricSpec("nrmse", "NRMSE", 1.0, 3),
        MetricSpec("fsim", "FSIM", 1.0, 3),
        MetricSpec("uiq", "UIQ", 1.0, 3),
    ),
}


def spec(task: str, key: str) -> MetricSpec:
    for candidate in SPECS[task]:
        if candidate.key == key:
            return candidate
    raise ValueError(f"unknown {task} metric {key!r}; valid: {[s.key for s in SPECS[task]]}")


# ---------------------------------------------------------------------------------------------
# formatting


def _finite(value: Any) -> bool:
    return value is not None and isinstance(value, int | float) and math.isfinite(value)


def fmt_value(value: Any, digits: int) -> str:
    return f"{value:.{digits}f}" if _finite(value) else MISSING


def fmt_mean_std(mean: float, std: float, digits: int) -> str:
    if not _finite(mean):
        return MISSING
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if _finite(std) else f"{mean:.{digits}f}"


def fmt_delta(delta: float, digits: int) -> str:
    return f"{delta:+.{digits}f}" if _finite(delta) else MISSING


def fmt_ci(low: float, high: float, digits: int) -> str:
    """A 95 % interval as "[low, high]"; "—" where it is undefined (fewer than 2 pairs)."""
    if not (_finite(low) and _finite(high)):
        return MISSING
    return f"[{low:+.{digits}f}, {high:+.{digits}f}]"


def fmt_p(p: float, n_pairs: int, min_n: int) -> str:
    if n_pairs < min_n:
        return f"n<{min_n}"
    if not _finite(p):
        return MISSING  # e.g. identical differences in every pair: the test is undefined
    return f"{p:.1e}" if p < 0.001 else f"{p:.3f}"


def fmt_n(n: int, n_diverged: int) -> str:
    return f"{n} (+{n_diverged} diverged ⚠)" if n_diverged else str(n)


def _row_class(n: int, n_diverged: int) -> str:
    if n_diverged:
        return "diverged"
    return "missing" if n == 0 else ""


# ---------------------------------------------------------------------------------------------
# grid cells


def _cells(
    task: str, records: pd.DataFrame, published: Published, expected: Iterable[str]
) -> list[tuple[str, int]]:
    """(model, kernel size) pairs to show: the paper's, in its order, then any others we ran."""
    ours = {(m, int(k)) for m, k in zip(records["model"], records["kernel_size"], strict=True)}
    for run_id in expected:
        parsed = parse_run_id(run_id)
        if parsed.task == task:
            ours.add((parsed.model, parsed.kernel_size))
    cells: list[tuple[str, int]] = []
    for entry in published.for_task(task):
        matches = sorted(c for c in ours if c[1] == entry.kernel_size and entry.matches(c[0]))
        cells += matches or [(entry.model, entry.kernel_size)]
    cells += sorted(ours - set(cells), key=lambda c: (c[1], c[0]))
    return sorted(dict.fromkeys(cells), key=lambda c: c[1])  # stable: kernel size, then order


def _task_records(records: pd.DataFrame, task: str) -> pd.DataFrame:
    return records[records["task"] == task] if len(records) else records


# ---------------------------------------------------------------------------------------------
# comparison rows shared by Tables 3 and 5


def _conv_row(
    task: str,
    conv: str,
    density: str,
    rule: str,
    runs: pd.DataFrame,
    reference: pd.DataFrame | None,
    options: ReportOptions,
) -> dict[str, Any]:
    select = spec(task, options.select_metric[task])
    primary = SPECS[task][0]
    ok = runs[~runs["diverged"].astype(bool)]
    tested = ok[ok[f"test_{primary.key}"].notna()]
    row: dict[str, Any] = {
        "conv": conv,
        "density": density,
        "density_rule": rule,
        "n": len(tested),
        "n_diverged": int(runs["diverged"].sum()),
        "seeds": " ".join(str(s) for s in sorted(tested["seed"])),
        # the selection basis, so a reader of the CSV can check the choice
        f"val_{select.column}_mean": summarise(ok[f"val_{select.key}"]).mean * select.scale,
    }
    for metric in SPECS[task]:
        summary = summarise(tested[f"test_{metric.key}"])
        row[f"{metric.column}_mean"] = summary.mean * metric.scale
        row[f"{metric.column}_std"] = summary.std * metric.scale
        if reference is None:
            paired = None
        else:
            paired = paired_test(
                by_seed(reference, f"test_{metric.key}"),
                by_seed(tested, f"test_{metric.key}"),
                options.wilcoxon_min_n,
            )
        if metric == primary:
            row["n_pairs"] = paired.n_pairs if paired else 0
        row[f"delta_{metric.column}"] = paired.delta * metric.scale if paired else math.nan
        row[f"ci_low_{metric.column}"] = paired.ci_low * metric.scale if paired else math.nan
        row[f"ci_high_{metric.column}"] = paired.ci_high * metric.scale if paired else math.nan
        row[f"p_ttest_{metric.key}"] = paired.p_ttest if paired else math.nan
        row[f"p_wilcoxon_{metric.key}"] = paired.p_wilcoxon if paired else math.nan
    if conv == "learned":
        finals = [d for d in tested["learned_density"] if d is not None]
        lengths = {len(d) for d in finals}
        mean = tuple(np.mean(finals, axis=0)) if finals and len(lengths) == 1 else None
        row["learned_density_final"] = density_label(mean) if mean else MISSING
    return row


def _published_values(
    task: str, conv: str, entry: PublishedEntry | None, label: str, extra: Sequence[str] = ()
) -> dict[str, Any]:
    values: dict[str, Any] = {f"{label} density": MISSING}
    block = None
    if entry is not None and conv in ("standard", "weighted"):
        block = entry.standard if conv == "standard" else entry.weighted
        values[f"{label} density"] = (
            "1" if conv == "standard" else density_label(entry.weighted_density)
        )
    for metric in SPECS[task]:
        values[f"{label} {metric.column}"] = block[metric.key] if block else math.nan
    for key in extra:
        values[f"{label} {key}"] = block[key] if block else math.nan
    return values


def chosen_density(
    task: str, group: pd.DataFrame, options: ReportOptions
) -> tuple[str | None, pd.DataFrame]:
    """The weighted density chosen on validation for one model × kernel size, and all candidates."""
    select = options.select_metric[task]
    candidates = density_candidates(group[group["conv"] == "weighted"], select)
    return choose_density(candidates, METRICS[task][select]), candidates


def _comparison(
    task: str, model: str, kernel: int, group: pd.DataFrame, options: ReportOptions
) -> list[dict[str, Any]]:
    """Rows standard, weighted (density chosen on validation), learned (one per initial value)."""
    select = options.select_metric[task]
    standard = group[group["conv"] == "standard"]
    weighted = group[group["conv"] == "weighted"]
    chosen, candidates = chosen_density(task, group, options)
    ok_std = standard[~standard["diverged"].astype(bool)]
    rows = [_conv_row(task, "standard", "1", "d = 1", standard, None, options)]
    if chosen is None:
        chosen_runs = weighted
        rule = f"no density with a validation {select} yet"
    else:
        chosen_runs = weighted[weighted["density"] == chosen]
        rule = f"best mean validation {select} of {len(candidates)} densities"
    rows.append(_conv_row(task, "weighted", chosen or "", rule, chosen_runs, ok_std, options))
    for init in sorted(set(group.loc[group["conv"] == "learned", "density"])):
        runs = group[(group["conv"] == "learned") & (group["density"] == init)]
        rule = f"learned from {density_label(density_values(init))}" if init else "learned"
        rows.append(_conv_row(task, "learned", init, rule, runs, ok_std, options))
    for row in rows:
        row["model"], row["kernel_size"] = model, kernel
    return rows


def _density_cell(row: dict[str, Any]) -> str:
    if row["conv"] == "standard":
        return "1 (standard)"
    if row["conv"] == "learned":
        start = density_label(density_values(row["density"])) if row["density"] else "default"
        return f"learned: {start} → {row.get('learned_density_final', MISSING)}"
    return density_label(density_values(row["density"])) if row["density"] else MISSING


# ---------------------------------------------------------------------------------------------
# Table 3 and Table 5


def _metric_table(
    declared: TableSpec,
    task: str,
    records: pd.DataFrame,
    published: Published,
    options: ReportOptions,
    expected: Iterable[str],
    shown: Sequence[str],
    tested: Sequence[str],
    published_shown: Sequence[str],
) -> Table:
    records = _task_records(records, task)
    label = published.label
    select = options.select_metric[task]
    numeric: list[dict[str, Any]] = []
    display: list[list[Cell]] = []
    classes: list[str] = []
    for model, kernel in _cells(task, records, published, expected):
        group = records[(records["model"] == model) & (records["kernel_size"] == kernel)]
        entry = published.find(task, model, kernel)
        rows = _comparison(task, model, kernel, group, options)
        if task == "denoising":
            rows.insert(0, _identity_row(group, model, kernel))
        for row in rows:
            row.update(_published_values(task, row["conv"], entry, label))
            numeric.append(row)
            cells: list[Cell] = [model, str(kernel), row["conv"], _density_cell(row)]
            cells.append(fmt_n(row["n"], row["n_diverged"]))
            for name in shown:
                metric = spec(task, name)
                mean, std = row[f"{metric.column}_mean"], row[f"{metric.column}_std"]
                cells.append(fmt_mean_std(mean, std, metric.digits))
                if name in tested:
                    cells.append(fmt_delta(row[f"delta_{metric.column}"], metric.digits))
                    cells.append(_ci_cell(row, metric))
                    cells.append(_p_cell(row, name, options.wilcoxon_min_n, name == tested[0]))
            cells.append(row[f"{label} density"])
            for name in published_shown:
                metric = spec(task, name)
                cells.append(fmt_value(row[f"{label} {metric.column}"], metric.digits))
            display.append(cells)
            classes.append(_row_class(row["n"], row["n_diverged"]) or f"conv-{row['conv']}")
    columns: list[tuple[str, str]] = [
        ("", "model"),
        ("", "k"),
        ("", "conv"),
        ("", "density"),
        (OURS, "n seeds"),
    ]
    for name in shown:
        metric = spec(task, name)
        columns.append((OURS, f"{metric.label} (test)"))
        if name in tested:
            p_header = "p (t / Wilcoxon)" if name == tested[0] else "p (t)"
            columns += [
                (OURS, f"Δ {metric.label}"),
                (OURS, f"95% CI of Δ {metric.label}"),
                (OURS, p_header),
            ]
    columns.append((label, "density"))
    columns += [(label, spec(task, name).label) for name in published_shown]
    notes = [
        f"Test metrics, mean ± sample std over seeds; n counts finished, non-diverged runs. The "
        f"weighted density is the one with the best mean validation {select} "
        "(the test set picks nothing); every density tried is in the density-search table.",
        "Δ = mean over seeds of (weighted − standard), pairing runs of the same seed (same initial "
        "weights), with its 95% confidence interval from the t distribution across seeds "
        "(Δ ± t(0.975, n−1)·s/√n): an interval that excludes 0 is an effect of at least its near "
        "end; p: two-sided paired t-test (scipy.stats.ttest_rel), 'n<2' below two pairs; "
        f"Wilcoxon signed-rank only from {options.wilcoxon_min_n} pairs on.",
        "Diverged runs are counted in n as '+k diverged ⚠' and left out of every mean and test. "
        f"'{MISSING}' marks a cell with no finished run.",
        f"Columns under '{label}' are copied from the paper, not measured here "
        "(its best density, picked on the test set).",
    ]
    if task == "denoising":
        notes.append("identity = the noisy input itself, scored against the clean image.")
    return Table.of(declared, notes, pd.DataFrame(numeric), columns, display, classes)


def _p_cell(row: dict[str, Any], metric: str, wilcoxon_min_n: int, with_wilcoxon: bool) -> str:
    """The paired t-test p (and the Wilcoxon p) of a weighted or learned row; "—" elsewhere."""
    if row["conv"] not in ("weighted", "learned") or row["n"] == 0:
        return MISSING
    text = fmt_p(row[f"p_ttest_{metric}"], row["n_pairs"], 2)
    if with_wilcoxon:
        text += " / " + fmt_p(row[f"p_wilcoxon_{metric}"], row["n_pairs"], wilcoxon_min_n)
    return text


def _ci_cell(row: dict[str, Any], metric: MetricSpec) -> str:
    if row["conv"] not in ("weighted", "learned") or row["n"] == 0:
        return MISSING
    low, high = row[f"ci_low_{metric.column}"], row[f"ci_high_{metric.column}"]
    return fmt_ci(low, high, metric.digits)


def _identity_row(group: pd.DataFrame, model: str, kernel: int) -> dict[str, Any]:
    row: dict[str, Any] = {
        "model": model,
        "kernel_size": kernel,
        "conv": "identity",
        "density": "",
        "density_rule": "noisy input",
        "n_diverged": 0,
        "n_pairs": 0,
    }
    n = 0
    for metric in SPECS["denoising"]:
        summary = summarise(group[f"identity_{metric.key}"])
        row[f"{metric.column}_mean"], row[f"{metric.column}_std"] = summary.mean, summary.std
        row[f"delta_{metric.column}"] = math.nan
        row[f"ci_low_{metric.column}"] = row[f"ci_high_{metric.column}"] = math.nan
        row[f"p_ttest_{metric.key}"] = row[f"p_wilcoxon_{metric.key}"] = math.nan
        n = max(n, summary.n)
    row["n"] = n
    row["seeds"] = ""
    return row


def classification_table(
    records: pd.DataFrame,
    published: Published,
    options: ReportOptions | None = None,
    expected: Iterable[str] = (),
) -> Table:
    """Table 3 analogue: test accuracy and macro F1, standard vs weighted (and learned)."""
    return _metric_table(
        TABLE3,
        "classification",
        records,
        published,
        options or ReportOptions(),
        expected,
        shown=tuple(METRICS["classification"]),
        tested=tuple(METRICS["classification"]),
        published_shown=tuple(METRICS["classification"]),
    )


def denoising_table(
    records: pd.DataFrame,
    published: Published,
    options: ReportOptions | None = None,
    expected: Iterable[str] = (),
) -> Table:
    """Table 5 analogue: PSNR, SSIM, NRMSE, FSIM, UIQ with the noisy-input baseline."""
    return _metric_table(
        TABLE5,
        "denoising",
        records,
        published,
        options or ReportOptions(),
        expected,
        shown=tuple(METRICS["denoising"]),
        tested=("psnr",),
        published_shown=("psnr",),
    )


# ---------------------------------------------------------------------------------------------
# Tables 4 and 6: seconds per epoch


def timing_table(
    task: str, records: pd.DataFrame, published: Published, expected: Iterable[str] = ()
) -> Table:
    """Tables 4 / 6 analogue: median training seconds per epoch, standard and weighted."""
    records = _task_records(records, task)
    label = published.label
    numeric: list[dict[str, Any]] = []
    display: list[list[Cell]] = []
    classes: list[str] = []
    for model, kernel in _cells(task, records, published, expected):
        group = records[(records["model"] == model) & (records["kernel_size"] == kernel)]
        group = group[~group["diverged"].astype(bool) & group["seconds_per_epoch"].notna()]
        entry = published.find(task, model, kernel)
        for device in sorted(set(group["device_name"])) or [MISSING]:
            on_device = group[group["device_name"] == device]
            std = summarise(on_device.loc[on_device["conv"] == "standard", "seconds_per_epoch"])
            wtd = summarise(on_device.loc[on_device["conv"] == "weighted", "seconds_per_epoch"])
            ratio = wtd.mean / std.mean if std.n and wtd.n else math.nan
            pub = (
                (entry.standard["seconds_per_epoch"], entry.weighted["seconds_per_epoch"])
                if entry
                else (math.nan, math.nan)
            )
            numeric.append(
                {
                    "model": model,
                    "kernel_size": kernel,
                    "device": device,
                    "n_standard": std.n,
                    "standard_s_mean": std.mean,
                    "standard_s_std": std.std,
                    "n_weighted": wtd.n,
                    "weighted_s_mean": wtd.mean,
                    "weighted_s_std": wtd.std,
                    "ratio_weighted_over_standard": ratio,
                    f"{label} device": published.device if entry else MISSING,
                    f"{label} standard_s": pub[0],
                    f"{label} weighted_s": pub[1],
                    f"{label} ratio": pub[1] / pub[0] if entry else math.nan,
                }
            )
            display.append(
                [
                    model,
                    str(kernel),
                    device,
                    str(std.n),
                    fmt_mean_std(std.mean, std.std, 2),
                    str(wtd.n),
                    fmt_mean_std(wtd.mean, wtd.std, 2),
                    fmt_value(ratio, 3),
                    published.device if entry else MISSING,
                    fmt_value(pub[0], 2),
                    fmt_value(pub[1], 2),
                    fmt_value(pub[1] / pub[0] if entry else math.nan, 3),
                ]
            )
            classes.append("missing" if not (std.n or wtd.n) else "")
    columns = [
        ("", "model"),
        ("", "k"),
        (OURS, "device"),
        (OURS, "n std"),
        (OURS, "standard s/epoch"),
        (OURS, "n wtd"),
        (OURS, "weighted s/epoch"),
        (OURS, "ratio w/s"),
        (label, "device"),
        (label, "standard s/epoch"),
        (label, "weighted s/epoch"),
        (label, "ratio w/s"),
    ]
    notes = [
        "Median training seconds per epoch of each run (evaluation excluded), then mean ± sample "
        "std over runs of all seeds; weighted pools every density (the density's value does not "
        "change the cost). Ratios compare runs on the same device only; diverged runs excluded.",
        f"Columns under '{label}' are copied from the paper (different hardware: compare ratios, "
        "not seconds).",
    ]
    return Table.of(TIMING[task], notes, pd.DataFrame(numeric), columns, display, classes)


# ---------------------------------------------------------------------------------------------
# every density tried, and the grid status


def density_search_table(records: pd.DataFrame, options: ReportOptions | None = None) -> Table:
    """Every weighted density of every model: validation and test metric, and which was chosen."""
    options = options or ReportOptions()
    numeric: list[dict[str, Any]] = []
    display: list[list[Cell]] = []
    classes: list[str] = []
    for task in PAPER_TASKS:
        select = options.select_metric[task]
        metric = spec(task, select)
        weighted = _task_records(records, task)
        weighted = weighted[weighted["conv"] == "weighted"] if len(weighted) else weighted
        for (model, kernel), group in weighted.groupby(["model", "kernel_size"], sort=True):
            chosen, candidates = chosen_density(task, group, options)
            for cand in candidates.to_dict("records"):
                scale = metric.scale
                numeric.append(
                    {
                        "task": task,
                        "model": model,
                        "kernel_size": int(kernel),
                        "density": cand["density"],
                        "metric": metric.column,
                        "n": cand["n"],
                        "n_diverged": cand["n_diverged"],
                        "val_mean": cand["val_mean"] * scale,
                        "val_std": cand["val_std"] * scale,
                        "test_mean": cand["test_mean"] * scale,
                        "test_std": cand["test_std"] * scale,
                        "chosen": cand["density"] == chosen,
                    }
                )
                digits = metric.digits
                display.append(
                    [
                        task,
                        str(model),
                        str(kernel),
                        density_label(density_values(cand["density"])),
                        fmt_n(cand["n"], cand["n_diverged"]),
                        fmt_mean_std(cand["val_mean"] * scale, cand["val_std"] * scale, digits),
                        fmt_mean_std(cand["test_mean"] * scale, cand["test_std"] * scale, digits),
                        "✓ chosen" if cand["density"] == chosen else "",
                    ]
                )
                classes.append("chosen" if cand["density"] == chosen else "")
    columns = [
        ("", "task"),
        ("", "model"),
        ("", "k"),
        ("", "density"),
        (OURS, "n seeds"),
        (OURS, "validation metric"),
        (OURS, "test metric"),
        (OURS, "choice"),
    ]
    notes = [
        "Every weighted density that has finished runs. The metric is the selection metric "
        f"({', '.join(f'{t}: {m}' for t, m in options.select_metric.items())}; accuracy in %). "
        "The choice uses the validation column only.",
    ]
    return Table.of(DENSITY_SEARCH, notes, pd.DataFrame(numeric), columns, display, classes)


def _split_depth(model: str) -> tuple[str, int | None]:
    """``unet-L3`` → ("unet", 3): the CoordGate run ids carry the U-Net depth in the model name."""
    name, _, depth = model.rpartition("-L")
    return (name, int(depth)) if name and depth.isdigit() else (model, None)


def deblurring_table(records: pd.DataFrame, options: ReportOptions | None = None) -> Table:
    """CoordGate deblurring (paper Fig. 4b as a table): test PSNR / SSIM per model × U-Net depth ×
    conv kind, the blurred input's own scores (identity), parameters, and each model's paired
    difference from the plain U-Net of the same depth and conv kind."""
    options = options or ReportOptions()
    runs = _task_records(records, "deblurring")
    psnr, ssim = spec("denoising", "psnr"), spec("denoising", "ssim")
    numeric: list[dict[str, Any]] = []
    display: list[list[Cell]] = []
    classes: list[str] = []
    if len(runs):
        runs = runs.assign(
            base=[_split_depth(m)[0] for m in runs["model"]],
            depth=[_split_depth(m)[1] for m in runs["model"]],
        )
        ok = runs[~runs["diverged"].astype(bool)]
        identity = summarise(ok["identity_psnr"])
        identity_ssim = summarise(ok["identity_ssim"])
        numeric.append(
            {"model": "identity", "depth": math.nan, "conv": "", "density": "",
             "n": identity.n, "n_diverged": 0, "params": 0,
             "psnr_mean": identity.mean, "psnr_std": identity.std,
             "ssim_mean": identity_ssim.mean, "ssim_std": identity_ssim.std,
             "delta_psnr_vs_unet": math.nan, "ci_low_psnr_vs_unet": math.nan,
             "ci_high_psnr_vs_unet": math.nan, "p_ttest_psnr_vs_unet": math.nan,
             "n_pairs": 0}
        )  # fmt: skip
        display.append(
            ["identity (blurred input)", MISSING, MISSING, MISSING, str(identity.n), "0",
             fmt_mean_std(identity.mean, identity.std, psnr.digits),
             fmt_mean_std(identity_ssim.mean, identity_ssim.std, ssim.digits),
             MISSING, MISSING, MISSING]
        )  # fmt: skip
        classes.append("conv-identity")
        keys = sorted(
            {(d, c, dens, b) for b, d, c, dens in
             zip(runs["base"], runs["depth"], runs["conv"], runs["density"], strict=True)},
            key=lambda k: (k[0] if k[0] is not None else -1, k[1], str(k[2]), k[3]),
        )  # fmt: skip
        for depth, conv, density, base in keys:
            group = runs[(runs["base"] == base) & (runs["conv"] == conv)
                         & (runs["density"] == density)]  # fmt: skip
            group = (
                group[group["depth"].isna()] if depth is None else group[group["depth"] == depth]
            )
            tested = group[~group["diverged"].astype(bool) & group["test_psnr"].notna()]
            p_sum, s_sum = summarise(tested["test_psnr"]), summarise(tested["test_ssim"])
            reference = runs[(runs["base"] == "unet") & (runs["conv"] == conv)
                             & (runs["density"] == density)]  # fmt: skip
            reference = reference[reference["depth"] == depth] if depth is not None else reference
            paired = None
            if base != "unet" and len(reference):
                paired = paired_test(
                    by_seed(reference, "test_psnr"), by_seed(tested, "test_psnr"),
                    options.wilcoxon_min_n,
                )  # fmt: skip
            params = group["params"].iloc[0] if len(group) else math.nan  # same for every seed
            row = {
                "model": base, "depth": depth, "conv": conv, "density": density,
                "n": p_sum.n, "n_diverged": int(group["diverged"].sum()), "params": params,
                "psnr_mean": p_sum.mean, "psnr_std": p_sum.std,
                "ssim_mean": s_sum.mean, "ssim_std": s_sum.std,
                "delta_psnr_vs_unet": paired.delta if paired else math.nan,
                "ci_low_psnr_vs_unet": paired.ci_low if paired else math.nan,
                "ci_high_psnr_vs_unet": paired.ci_high if paired else math.nan,
                "p_ttest_psnr_vs_unet": paired.p_ttest if paired else math.nan,
                "n_pairs": paired.n_pairs if paired else 0,
            }  # fmt: skip
            numeric.append(row)
            conv_text = conv if conv == "standard" else f"{conv} d{density}"
            display.append(
                [base, str(depth) if depth is not None else MISSING, conv_text,
                 f"{params:,.0f}" if _finite(params) else MISSING,
                 fmt_n(row["n"], row["n_diverged"]),
                 str(row["n_diverged"]),
                 fmt_mean_std(row["psnr_mean"], row["psnr_std"], psnr.digits),
                 fmt_mean_std(row["ssim_mean"], row["ssim_std"], ssim.digits),
                 fmt_delta(row["delta_psnr_vs_unet"], psnr.digits) if paired else MISSING,
                 fmt_ci(row["ci_low_psnr_vs_unet"], row["ci_high_psnr_vs_unet"], psnr.digits)
                 if paired else MISSING,
                 fmt_p(row["p_ttest_psnr_vs_unet"], row["n_pairs"], 2) if paired else MISSING]
            )  # fmt: skip
            classes.append(_row_class(row["n"], row["n_diverged"]) or f"conv-{conv}")
    columns = [
        ("", "model"),
        ("", "depth d"),
        ("", "conv"),
        ("", "parameters"),
        (OURS, "n seeds"),
        (OURS, "diverged"),
        (OURS, "PSNR dB (test)"),
        (OURS, "SSIM (test)"),
        (OURS, "Δ PSNR vs U-Net"),
        (OURS, "95% CI of Δ"),
        (OURS, "p (t)"),
    ]
    notes = [
        "CoordGate deblurring (arXiv 2401.04680): test PSNR and SSIM, mean ± sample std over "
        "seeds, per model, U-Net depth d and conv kind; parameters as counted by the run.",
        "identity = the blurred, noisy input itself, scored against the sharp image: a model below "
        "it makes the image worse.",
        "Δ = mean over seeds of (model − U-Net of the same depth and conv kind), same seed paired; "
        "95% CI from the t distribution across seeds; p: two-sided paired t-test.",
        "No published numbers: the CoordGate paper's values are not in the data file.",
    ]
    return Table.of(DEBLURRING, notes, pd.DataFrame(numeric), columns, display, classes)


def status_table(status: pd.DataFrame, runs_dir: Path) -> Table:
    """The grid status as a table whose run ids link to their folders."""
    display: list[list[Cell]] = []
    classes: list[str] = []
    for row in status.to_dict("records"):
        folder = runs_dir / row["run_id"]
        run: Cell = Link(row["run_id"], folder) if folder.is_dir() else row["run_id"]
        epochs = "" if pd.isna(row["epochs_done"]) else str(int(row["epochs_done"]))
        if epochs and not pd.isna(row["max_epochs"]) and row["max_epochs"]:
            epochs += f" / {int(row['max_epochs'])}"
        display.append(
            [run, row["state"], epochs, fmt_value(row["best_val_metric"], 4), row["detail"]]
        )
        classes.append("state-" + row["state"].replace(" ", "-"))
    columns = [
        ("", "run"),
        ("", "state"),
        ("", "epochs done"),
        ("", "best val metric"),
        ("", "detail"),
    ]
    notes = [
        "States: done, diverged, running (lock held by a live process, or by a SLURM job on "
        "another host), failed (dead process or failed marker), interrupted (resumable), corrupt "
        "(unreadable files), not started. Epochs = history.csv rows; best val metric = best "
        "val_metric logged so far."
    ]
    return Table.of(GRID_STATUS, notes, status.copy(), columns, display, classes)


# ---------------------------------------------------------------------------------------------
# the cost estimate of a rehearsal (wconv rehearse; not measured training)


def _steps_timed(root: Path) -> list[int]:
    """``steps_timed`` of every rehearsal under ``root`` (what the projection rests on)."""
    steps = []
    for path in sorted(root.rglob("rehearsal.json")):
        value = json.loads(path.read_text()).get("steps_timed")
        if isinstance(value, int):
            steps.append(value)
    return steps


def _max_cell(value: float | None) -> str:
    return MISSING if value is None else f"max {value:.2f}"


def _span(values: Sequence[int]) -> str:
    low, high = min(values, default=0), max(values, default=0)
    return str(low) if low == high else f"{low}–{high}"


def _published_epoch_seconds(row: Mapping[str, Any], published: Published) -> float:
    """The paper's seconds per epoch (Table 4/6, its device) of this row's model, kernel and conv
    kind; NaN where it reports none (learned densities, models it did not time)."""
    rid = parse_run_id(row["run_id"])
    entry = published.find(row["task"], row["model"], rid.kernel_size)
    side = {"standard": entry.standard, "weighted": entry.weighted} if entry else {}
    return float(side.get(rid.conv, {}).get("seconds_per_epoch", math.nan))


def cost_table(
    root: Path, preset: str, published: Published, warnings: list[str] | None = None
) -> Table | None:
    """The projected cost of the rehearsed cells under ``root`` (``<results>/rehearsals/<preset>``)
    and of all of them together, beside the paper's epoch times; ``None`` when there is no
    readable rehearsal there."""
    if not any(root.rglob("rehearsal.json")):
        return None
    try:
        frame = cost_estimate(root)
        steps = _steps_timed(root)
    except (UserError, OSError, ValueError) as err:
        if warnings is not None:
            warnings.append(f"cost estimate left out: {err}")
        return None
    totals = cost_totals(frame)
    devices = ", ".join(sorted(set(frame["device"])))
    display: list[list[Cell]] = []
    classes: list[str] = []
    for row in frame.to_dict("records"):
        display.append(
            [row["run_id"], row["device"], fmt_value(row["seconds_per_step"], 4),
             str(row["steps_per_epoch"]), fmt_value(row["epoch_seconds"], 1),
             str(row["max_epochs"]),
             fmt_value(row["run_hours"], 3) + (" (upper bound)" if row["upper_bound"] else ""),
             fmt_value(row["peak_rss_gib"], 2), fmt_value(row["peak_device_gib"], 2),
             fmt_value(row["checkpoint_mib"], 1), fmt_value(row["run_disk_mib"], 1),
             fmt_value(row["prepare_minutes"], 2), fmt_value(row["prepared_gib"], 2),
             fmt_value(_published_epoch_seconds(row, published), 0)]
        )  # fmt: skip
        classes.append("")
    peak_device = totals["max_peak_device_gib"]
    display.append(
        [f"total ({totals['runs']} runs)", devices, MISSING, MISSING, MISSING, MISSING,
         f"{totals['run_hours']:.3f} ({totals['gpu_hours']:.3f} GPU-hours)",
         f"max {totals['max_peak_rss_gib']:.2f}",
         MISSING if peak_device is None else f"max {peak_device:.2f}", MISSING,
         f"{totals['checkpoint_gib'] * 1024:.1f} ({totals['checkpoint_gib']:.3f} GiB)",
         _max_cell(totals["max_prepare_minutes"]), _max_cell(totals["max_prepared_gib"]),
         MISSING]
    )  # fmt: skip
    classes.append("total")
    columns = [
        ("", "run"),
        ("", "device"),
        ("", "s/step"),
        ("", "steps/epoch"),
        ("", "s/epoch"),
        ("", "max epochs"),
        ("", "projected run-hours"),
        ("", "peak host GiB"),
        ("", "peak device GiB"),
        ("", "checkpoint MiB"),
        ("", "run disk MiB"),
        ("", "data prepare min"),
        ("", "prepared GiB"),
        ("", f"{published.label} s/epoch ({published.device})"),
    ]
    projection = (
        f"Projected from {_span(steps)} timed optimizer steps per cell on {devices} by "
        f"wconv rehearse (preset {preset}), not measured training: run-hours = max epochs × "
        "(steps/epoch × median s/step + one validation pass)."
    )
    notes = [
        projection,
        f"Totals: {totals['run_hours']:.3f} run-hours, of them {totals['gpu_hours']:.3f} "
        f"GPU-hours ({totals['runs_not_on_gpu']} cells rehearsed off GPU); "
        f"{totals['upper_bound_runs']} upper bounds (early stopping may end them sooner; if "
        f"each stopped at half its max epochs: {totals['run_hours_half']:.3f} run-hours); "
        f"checkpoint disk {totals['checkpoint_gib']:.3f} GiB (last.pt, last.previous.pt and "
        f"best.pt of every run); max peak host memory {totals['max_peak_rss_gib']:.2f} GiB, max "
        "peak device memory "
        + (MISSING if peak_device is None else f"{peak_device:.2f} GiB")
        + ".",
        "Data prepare: what `wconv data prepare` recorded for the cell's data (prepare-cost.json: "
        "wall minutes and the prepared tree on disk); each data set is prepared once for all "
        "its cells, so the total row gives the largest, not a sum"
        + (
            f" (peak host memory of prepare {totals['max_prepare_peak_rss_gib']:.2f} GiB)."
            if totals["max_prepare_peak_rss_gib"] is not None
            else "."
        ),
        "Not included: queue wait and job start-up, the final test pass, "
        "early stopping, retries; seconds per step do not transfer between GPUs. Only the cells "
        "rehearsed are counted (rehearse one seed and multiply, or rehearse them all).",
    ]
    title = (
        f"{COST_ESTIMATE.title}: projected from {_span(steps)} timed steps on {devices}, "
        "not measured training"
    )
    table = Table.of(COST_ESTIMATE, notes, frame, columns, display, classes)
    table.title = title
    return table


# ---------------------------------------------------------------------------------------------
# summary.json blocks (our numbers only: columns starting with the published label are left out)


def summarise_comparison(table: Table, label: str) -> dict[str, Any]:
    """Tables 3 / 5 keyed ``model/k<size>`` then conv (``learned-<initial density>``)."""
    block: dict[str, Any] = {}
    for row in table.data.to_dict("records"):
        if row["n"] == 0 and row.get("n_diverged", 0) == 0:
            continue
        conv = row["conv"] if row["conv"] != "learned" else f"learned-{row['density'] or 'default'}"
        values = {
            name: clean(value)
            for name, value in row.items()
            if not name.startswith(label) and name not in ("model", "kernel_size", "conv")
        }
        block.setdefault(f"{row['model']}/k{row['kernel_size']}", {})[conv] = values
    return block


def summarise_timing(table: Table, label: str) -> dict[str, Any]:
    """Tables 4 / 6 keyed ``model/k<size>/<device>``."""
    names = ("standard_s_mean", "weighted_s_mean", "ratio_weighted_over_standard")
    return {
        f"{row['model']}/k{row['kernel_size']}/{row['device']}": {n: clean(row[n]) for n in names}
        for row in table.data.to_dict("records")
        if row["n_standard"] or row["n_weighted"]
    }


def summarise_deblurring(table: Table, label: str) -> dict[str, Any]:
    """CoordGate deblurring keyed ``model/L<depth>/<conv>``; "identity" is the blurred input."""
    block: dict[str, Any] = {}
    for row in table.data.to_dict("records"):
        if row["n"] == 0 and row.get("n_diverged", 0) == 0:
            continue
        if row["model"] == "identity":
            key = "identity"
        else:
            conv = row["conv"] if row["conv"] == "standard" else f"{row['conv']}-d{row['density']}"
            depth = row["depth"]  # NaN-padded to float by the identity row
            level = f"L{int(depth)}/" if clean(depth) is not None else ""
            key = f"{row['model']}/{level}{conv}"
        block[key] = {
            name: clean(value)
            for name, value in row.items()
            if name not in ("model", "depth", "conv")
        }
    return block


def summarise_cost(table: Table, label: str) -> dict[str, Any]:
    """The rehearsal's totals, marked as a projection."""
    return {"projected": True, **{k: clean(v) for k, v in cost_totals(table.data).items()}}


# ---------------------------------------------------------------------------------------------
# the registry: every table of the report, in the order it is built and shown in its section

TABLE3 = TableSpec(
    key="table3_classification",
    title="Table 3 — classification: standard vs weighted convolution",
    caption="Test accuracy and macro F1 of each model and kernel size: standard, weighted at the "
    "density chosen on validation, and learned densities.",
    section=CLASSIFICATION,
    build=lambda i: classification_table(i.records, i.published, i.options, i.expected),
    summary=("classification",),
    summarise=summarise_comparison,
)
TABLE4 = TableSpec(
    key="table4_timing_classification",
    title="Table 4 — classification: training seconds per epoch",
    caption="Training seconds per epoch of the standard and weighted classifiers, per device.",
    section=CLASSIFICATION,
    build=lambda i: timing_table("classification", i.records, i.published, i.expected),
    summary=("timing", "classification"),
    summarise=summarise_timing,
)
TABLE5 = TableSpec(
    key="table5_denoising",
    title="Table 5 — denoising: standard vs weighted convolution, 3×3 and 5×5 kernels",
    caption="Test PSNR, SSIM, NRMSE, FSIM and UIQ of each denoiser and kernel size, with the "
    "noisy input as a baseline.",
    section=DENOISING,
    build=lambda i: denoising_table(i.records, i.published, i.options, i.expected),
    summary=("denoising",),
    summarise=summarise_comparison,
)
TABLE6 = TableSpec(
    key="table6_timing_denoising",
    title="Table 6 — denoising: training seconds per epoch",
    caption="Training seconds per epoch of the standard and weighted denoisers, per device.",
    section=DENOISING,
    build=lambda i: timing_table("denoising", i.records, i.published, i.expected),
    summary=("timing", "denoising"),
    summarise=summarise_timing,
)
TIMING = {"classification": TABLE4, "denoising": TABLE6}
DENSITY_SEARCH = TableSpec(
    key="density_search",
    title="Density search — every density tried, chosen on validation",
    caption="Validation and test metric of every weighted density tried, per model and kernel "
    "size.",
    section=DENSITY,
    build=lambda i: density_search_table(i.records, i.options),
)
DEBLURRING = TableSpec(
    key="coordgate_deblurring",
    title="CoordGate — deblurring a spatially-varying blur: PSNR / SSIM vs parameters",
    caption="Test PSNR and SSIM of each deblurring model, U-Net depth and conv kind, with its "
    "parameter count.",
    section=COORDGATE,
    build=lambda i: deblurring_table(i.records, i.options),
    summary=("deblurring",),
    summarise=summarise_deblurring,
)
GRID_STATUS = TableSpec(
    key="grid_status",
    title="Grid status",
    caption="Every run folder and expected run with its state; run ids link to their folders.",
    section=STATUS,
    build=lambda i: status_table(i.status, i.runs_dir),
)
COST_ESTIMATE = TableSpec(
    key="cost_estimate",
    title="Cost estimate (from a rehearsal)",
    caption="Projected run-hours, disk and memory of each rehearsed grid cell and of all of them.",
    section=COST,
    build=lambda i: (
        cost_table(i.out_dir / "rehearsals" / i.preset, i.preset, i.published, i.warnings)
        if i.preset
        else None
    ),
    summary=("cost_estimate",),
    summarise=summarise_cost,
)

TABLES: tuple[TableSpec, ...] = (
    TABLE3,
    TABLE4,
    TABLE5,
    TABLE6,
    DENSITY_SEARCH,
    DEBLURRING,
    GRID_STATUS,
    COST_ESTIMATE,
)


def build_tables(inputs: ReportInputs) -> dict[str, Table]:
    """Every table of ``TABLES`` that has inputs, keyed by its spec's key, in registry order."""
    built = ((spec, spec.build(inputs)) for spec in TABLES)
    return {spec.key: table for spec, table in built if table is not None}


def summarise_tables(tables: dict[str, Table], label: str) -> dict[str, Any]:
    """The ``summary.json`` blocks of the built tables (see ``TableSpec.summary``)."""
    summary: dict[str, Any] = {}
    for spec in TABLES:
        if not spec.summary or spec.summarise is None or spec.key not in tables:
            continue
        *parents, name = spec.summary
        target = summary
        for part in parents:
            target = target.setdefault(part, {})
        block = spec.summarise(tables[spec.key], label)
        if block or not parents:
            target[name] = block
    return summary
