"""The study's figures (matplotlib on the Agg canvas, seaborn styles), built from run folders.

* confusion matrices, standard vs weighted (the paper's Fig. 1), from ``confusion.csv``;
* denoising examples noisy / standard / weighted / clean with a zoomed crop (Figs. 2–3), from
  ``examples.npz``;
* metric vs density per model, validation and test, seeds as a ±1 std band;
* seconds per epoch, standard vs weighted.

pyplot is never imported: every figure is a ``matplotlib.figure.Figure`` on an Agg canvas, so the
report has no global plotting state and needs no display.
"""

from __future__ import annotations

import contextlib
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from wconv.io import atomic_open
from wconv.report.runs import density_label, density_values, read_confusion
from wconv.report.specs import CLASSIFICATION, DENOISING, DENSITY, Section, TableSpec
from wconv.report.stats import ReportOptions
from wconv.report.tables import DENSITY_SEARCH, TABLE3, TABLE5, TIMING, Table, chosen_density, spec
from wconv.vocabulary import PAPER_TASKS

STANDARD_COLOR, WEIGHTED_COLOR = "#4c72b0", "#dd8452"


@dataclass
class Plot:
    stem: str  # file stem under figures/
    title: str
    caption: str
    figure: Figure
    section: Section  # where index.html shows it
    table: TableSpec | None = None  # the table it illustrates: shown right after it


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_plot(plot: Plot, folder: Path) -> tuple[Path, Path]:
    """Write ``<stem>.png`` and ``<stem>.svg`` atomically; return both paths."""
    paths = (folder / f"{plot.stem}.png", folder / f"{plot.stem}.svg")
    for path, fmt in zip(paths, ("png", "svg"), strict=True):
        buffer = io.BytesIO()
        # No dates in the metadata, so an unchanged figure gives an unchanged file.
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        plot.figure.savefig(buffer, format=fmt, dpi=110, metadata=metadata)
        with atomic_open(path, "wb") as handle:
            handle.write(buffer.getvalue())
    return paths


@contextlib.contextmanager
def _style() -> Iterator[None]:
    """seaborn's look for the figures drawn inside, without touching the global rcParams."""
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.85):
        yield


def _usable(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[~frame["diverged"].astype(bool)]


# ---------------------------------------------------------------------------------------------
# Fig. 1: confusion matrices


def _pooled_confusion(runs: pd.DataFrame, warnings: list[str]) -> tuple[np.ndarray | None, int]:
    """Sum of the confusion matrices of ``runs`` (one per seed): counts pool over seeds."""
    total, count = None, 0
    for path in runs["path"]:
        file = Path(path) / "confusion.csv"
        if not file.is_file():
            continue
        try:
            matrix = read_confusion(file)
        except ValueError as err:
            warnings.append(str(err))
            continue
        if total is not None and matrix.shape != total.shape:
            warnings.append(f"{file}: shape {matrix.shape} differs from {total.shape}; skipped")
            continue
        total = matrix if total is None else total + matrix
        count += 1
    return total, count


def _confusion_figure(model: str, kernel: int, panels: list[tuple[str, np.ndarray, int]]) -> Plot:
    figure = _figure(10, 4.6)
    axes = figure.subplots(1, len(panels))
    for ax, (name, matrix, seeds) in zip(axes, panels, strict=True):
        rows = matrix.sum(axis=1, keepdims=True)
        recall = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
        accuracy = 100 * np.trace(matrix) / max(matrix.sum(), 1)
        few = matrix.shape[0] <= 20  # class labels are unreadable beyond that
        sns.heatmap(
            recall,
            ax=ax,
            vmin=0,
            vmax=1,
            cmap="viridis",
            square=True,
            rasterized=True,  # 100×100 cells as one image, not 10,000 SVG paths
            cbar=ax is axes[-1],
            cbar_kws={"label": "fraction of the true class"},
            xticklabels=few,
            yticklabels=few,
        )
        plural = "seed" if seeds == 1 else "seeds"
        ax.set_title(f"{name}: pooled accuracy {accuracy:.2f} % ({seeds} {plural})")
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
    caption = (
        f"{model}, {kernel}×{kernel}: test confusion matrices (rows = true class, normalised per "
        "row), counts summed over the non-diverged seeds; weighted at the density chosen on "
        "validation."
    )
    stem, title = f"fig1_confusion_{model}_k{kernel}", f"Fig. 1 — {model}"
    return Plot(stem, title, caption, figure, CLASSIFICATION, TABLE3)


def confusion_plots(
    records: pd.DataFrame, options: ReportOptions, warnings: list[str]
) -> list[Plot]:
    plots = []
    cls = records[records["task"] == "classification"]
    for (model, kernel), group in cls.groupby(["model", "kernel_size"], sort=True):
        chosen, _ = chosen_density("classification", group, options)
        ok = _usable(group)
        standard, s_n = _pooled_confusion(ok[ok["conv"] == "standard"], warnings)
        weighted_runs = ok[(ok["conv"] == "weighted") & (ok["density"] == chosen)]
        weighted, w_n = _pooled_confusion(weighted_runs, warnings)
        if chosen is None or standard is None or weighted is None:
            continue
        if standard.shape != weighted.shape:
            warnings.append(f"{model} k{kernel}: confusion matrices of different shapes; skipped")
            continue
        panels = [
            ("standard", standard, s_n),
            (f"weighted d = {density_label(density_values(chosen))}", weighted, w_n),
        ]
        with _style():
            plots.append(_confusion_figure(str(model), int(kernel), panels))
    return plots


# ---------------------------------------------------------------------------------------------
# Figs. 2–3: denoising examples


def _load_examples(folder: str, warnings: list[str]) -> dict[str, np.ndarray] | None:
    path = Path(folder) / "examples.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: np.asarray(data[key], dtype=np.float32) for key in data.files}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        warnings.append(f"{path}: unreadable ({err}); skipped")
        return None
    missing = {"noisy", "output", "clean"} - set(arrays)
    if missing or any(arrays[k].ndim != 4 for k in ("noisy", "output", "clean")):
        warnings.append(f"{path}: needs (N, C, H, W) arrays noisy, output, clean; skipped")
        return None
    return arrays


def _image(array: np.ndarray) -> np.ndarray:
    """(C, H, W) on [0, 1] → (H, W, C) or (H, W) for imshow."""
    image = np.clip(array, 0.0, 1.0)
    return image[0] if image.shape[0] == 1 else np.moveaxis(image[:3], 0, -1)


def crop_window(clean: np.ndarray) -> tuple[int, int, int]:
    """(top, left, size) of the square window with the most texture (highest variance) in the
    clean image (C, H, W): where denoisers differ most visibly."""
    gray = clean.mean(axis=0).astype(np.float64)
    height, width = gray.shape
    size = max(min(height, width) // 4, min(height, width, 8))
    pad = np.pad(gray, ((1, 0), (1, 0)))
    sums = pad.cumsum(0).cumsum(1)
    squares = (pad**2).cumsum(0).cumsum(1)

    def box(table: np.ndarray) -> np.ndarray:
        return (
            table[size:, size:]
            - table[:-size, size:]
            - table[size:, :-size]
            + table[:-size, :-size]
        )

    area = size * size
    variance = box(squares) / area - (box(sums) / area) ** 2
    top, left = np.unravel_index(int(np.argmax(variance)), variance.shape)
    return int(top), int(left), size


Example = tuple[str, int, str, dict[str, np.ndarray], dict[str, np.ndarray]]


def _examples_figure(kernel: int, panels: list[Example]) -> Plot:
    figure = _figure(12, 5.6 * len(panels))
    axes = figure.subplots(2 * len(panels), 4, squeeze=False)
    for index, (model, seed, d_label, standard, weighted) in enumerate(panels):
        top, left, size = crop_window(standard["clean"][0])
        images = (
            ("noisy input", standard["noisy"][0]),
            ("standard", standard["output"][0]),
            (f"weighted d = {d_label}", weighted["output"][0]),
            ("clean", standard["clean"][0]),
        )
        for col, (name, array) in enumerate(images):
            full, zoom = axes[2 * index, col], axes[2 * index + 1, col]
            image = _image(array)
            cmap = "gray" if image.ndim == 2 else None
            full.imshow(image, cmap=cmap, vmin=0, vmax=1)
            box = Rectangle((left - 0.5, top - 0.5), size, size, fill=False, ec="red", lw=1.5)
            full.add_patch(box)
            full.set_title(f"{model} (seed {seed}): {name}")
            crop = image[top : top + size, left : left + size]
            zoom.imshow(crop, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            zoom.set_title("zoom (red box)")
            for ax in (full, zoom):
                ax.set_axis_off()
    # The paper's Fig. 2 shows 3×3 kernels and Fig. 3 shows 5×5 ones.
    prefix = {3: "fig2_", 5: "fig3_"}.get(kernel, "")
    caption = (
        f"{kernel}×{kernel} kernels: first test image of one seed, noisy input / standard / "
        "weighted (density chosen on validation) / clean, with the most textured crop enlarged."
    )
    title = f"Denoising examples, {kernel}×{kernel}"
    return Plot(f"{prefix}denoising_k{kernel}", title, caption, figure, DENOISING, TABLE5)


def example_plots(records: pd.DataFrame, options: ReportOptions, warnings: list[str]) -> list[Plot]:
    plots = []
    den = records[records["task"] == "denoising"]
    for kernel, by_kernel in den.groupby("kernel_size", sort=True):
        panels: list[Example] = []
        for model, group in by_kernel.groupby("model", sort=True):
            chosen, _ = chosen_density("denoising", group, options)
            ok = _usable(group)
            standard = ok[ok["conv"] == "standard"]
            weighted = ok[(ok["conv"] == "weighted") & (ok["density"] == chosen)]
            # One seed that has both, so that both outputs start from the same weights.
            for seed in sorted(set(standard["seed"]) & set(weighted["seed"])):
                s = _load_examples(standard[standard["seed"] == seed]["path"].iloc[0], warnings)
                w = _load_examples(weighted[weighted["seed"] == seed]["path"].iloc[0], warnings)
                if s is not None and w is not None and s["clean"].shape == w["clean"].shape:
                    panels.append(
                        (str(model), int(seed), density_label(density_values(str(chosen))), s, w)
                    )
                    break
        if panels:
            with _style():
                plots.append(_examples_figure(int(kernel), panels))
    return plots


# ---------------------------------------------------------------------------------------------
# metric vs density


def _curve(
    ax: Axes, group: pd.DataFrame, split: str, metric: str, scale: float, chosen: str | None
) -> None:
    ok = _usable(group)
    weighted = ok[ok["conv"] == "weighted"]
    labels = sorted(set(weighted["density"]), key=density_values)
    scalar = all("_" not in label for label in labels)
    position = {label: float(label) if scalar else i for i, label in enumerate(labels)}
    column = f"{split}_{metric}"
    stats = weighted.groupby("density")[column].agg(["mean", "std"]).reindex(labels) * scale
    x = np.asarray([position[label] for label in labels])
    ax.plot(x, stats["mean"], marker="o", color=WEIGHTED_COLOR, label="weighted (mean)")
    low, high = stats["mean"] - stats["std"], stats["mean"] + stats["std"]
    band = "weighted ± 1 std over seeds"
    ax.fill_between(x, low, high, color=WEIGHTED_COLOR, alpha=0.25, lw=0, label=band)
    seeds_x = [position[d] for d in weighted["density"]]
    ax.scatter(seeds_x, weighted[column] * scale, s=10, color=WEIGHTED_COLOR, alpha=0.6)
    standard = ok.loc[ok["conv"] == "standard", column] * scale
    if standard.notna().any():
        mean, std = standard.mean(), standard.std()
        ax.axhline(mean, color=STANDARD_COLOR, ls="--", label="standard (d = 1)")
        if np.isfinite(std):
            ax.axhspan(mean - std, mean + std, color=STANDARD_COLOR, alpha=0.12, lw=0)
    if chosen in position:
        ax.axvline(position[chosen], color="black", ls=":", lw=1, label="chosen on validation")
    if not scalar:
        ax.set_xticks(x, [density_label(density_values(d)) for d in labels])
        ax.tick_params(axis="x", rotation=45)
    ax.set_xlabel("density d (outer ring first)")


def _density_figure(
    task: str, groups: list[tuple[tuple[str, int], pd.DataFrame]], options: ReportOptions
) -> Plot:
    metric = spec(task, options.select_metric[task])
    figure = _figure(11, 3.4 * len(groups))
    axes = figure.subplots(len(groups), 2, squeeze=False)
    for row, ((model, kernel), group) in enumerate(groups):
        chosen, _ = chosen_density(task, group, options)
        for col, split in enumerate(("val", "test")):
            ax = axes[row, col]
            _curve(ax, group, split, metric.key, metric.scale, chosen)
            name = "validation" if split == "val" else "test"
            ax.set_title(f"{model}, {kernel}×{kernel}: {name}")
            ax.set_ylabel(metric.label)
    axes[0, 0].legend(loc="best", fontsize="small")
    caption = (
        f"{task}: {metric.label} against the weighted density, validation (left; it picks the "
        "density) and test (right); line = mean, band = ±1 std over seeds, dots = seeds; "
        "dashed = standard convolution."
    )
    title = f"{metric.label} vs density — {task}"
    return Plot(f"density_{task}", title, caption, figure, DENSITY, DENSITY_SEARCH)


def density_plots(records: pd.DataFrame, options: ReportOptions) -> list[Plot]:
    plots = []
    for task in PAPER_TASKS:  # the tasks whose weighted density is chosen on validation
        frame = records[records["task"] == task]
        groups = [
            ((str(model), int(kernel)), group)
            for (model, kernel), group in frame.groupby(["model", "kernel_size"], sort=True)
            if (group["conv"] == "weighted").any()
        ]
        if groups:
            with _style():
                plots.append(_density_figure(task, groups, options))
    return plots


# ---------------------------------------------------------------------------------------------
# timing


def _timing_figure(task: str, data: pd.DataFrame) -> Plot:
    figure = _figure(max(6.0, 1.3 * len(data) + 2), 4.2)
    ax = figure.subplots()
    multi_device = data["device"].nunique() > 1
    names = [
        f"{m} k{k}" + (f"\n{d}" if multi_device else "")
        for m, k, d in zip(data["model"], data["kernel_size"], data["device"], strict=True)
    ]
    x = np.arange(len(data))
    width = 0.38
    for offset, conv, color in (
        (-0.5, "standard", STANDARD_COLOR),
        (0.5, "weighted", WEIGHTED_COLOR),
    ):
        ax.bar(
            x + offset * width,
            data[f"{conv}_s_mean"],
            width,
            yerr=data[f"{conv}_s_std"].fillna(0),
            color=color,
            label=conv,
            capsize=3,
        )
    tops = data[["standard_s_mean", "weighted_s_mean"]].max(axis=1)
    for xi, (top, ratio) in enumerate(zip(tops, data["ratio_weighted_over_standard"], strict=True)):
        if np.isfinite(ratio):
            ax.annotate(f"×{ratio:.3f}", (xi, top), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, names)
    ax.set_ylabel("seconds per epoch")
    ax.legend()
    devices = ", ".join(sorted(set(data["device"])))
    caption = (
        f"{task}: median training seconds per epoch (mean ± std over runs) on {devices}; the "
        "label over each pair is weighted / standard."
    )
    table = TIMING[task]
    return Plot(
        f"timing_{task}", f"Seconds per epoch — {task}", caption, figure, table.section, table
    )


def timing_plots(tables: dict[str, Table]) -> list[Plot]:
    """Bars from the Table 4 and Table 6 analogues."""
    plots = []
    for task, table in TIMING.items():
        data = tables[table.key].data
        if data.empty:
            continue
        data = data[(data["n_standard"] > 0) | (data["n_weighted"] > 0)]
        if not data.empty:
            with _style():
                plots.append(_timing_figure(task, data))
    return plots
