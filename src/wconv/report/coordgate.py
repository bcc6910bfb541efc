"""Figures of the CoordGate experiments (matplotlib Figure on an Agg canvas, no pyplot state).

Each ``plot_*`` returns a :class:`wconv.report.figures.Plot` (stem, title, caption, figure) for the
report layer; with ``folder`` it is also written as ``<stem>.png`` and ``<stem>.svg`` through
:func:`wconv.report.figures.save_plot` (atomic, no dates in the metadata).

* :func:`plot_psnr_vs_time` — 1D task, PSNR against inference time, marker area ∝ parameters
  (paper Fig. 3, right);
* :func:`plot_matrices` — true vs learned convolution matrices (Fig. 3, left);
* :func:`plot_psnr_vs_params` — deblurring PSNR against log parameters per model (Fig. 4b);
* :func:`plot_deblur_examples` — blurred / deblurred / truth (Fig. 5);
* :func:`plot_padding_signal` — the 'same'-padding position signal (Fig. 1).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from wconv.report.figures import Plot, _figure, save_plot
from wconv.report.specs import COORDGATE


def _done(plot: Plot, folder: Path | None) -> Plot:
    if folder is not None:
        save_plot(plot, Path(folder))
    return plot


def _marker_areas(params: Sequence[float]) -> np.ndarray:
    """Marker areas proportional to the parameter counts (largest = 600 pt²)."""
    values = np.asarray(params, dtype=float)
    return 600.0 * values / values.max()


def plot_psnr_vs_time(results: Mapping[str, Any], folder: Path | None = None) -> Plot:
    """``results`` as returned/written by :func:`wconv.experiments.run_coordgate_1d`."""
    models = results["models"]
    if not models:
        raise ValueError("plot_psnr_vs_time: the results hold no trained model")
    names = list(models)
    times = [1e3 * models[n]["inference_seconds"] for n in names]
    psnrs = [models[n]["psnr"] for n in names]
    params = [models[n]["params"] for n in names]
    figure = _figure(6, 4.2)
    ax = figure.subplots()
    ax.scatter(times, psnrs, s=_marker_areas(params), alpha=0.6, edgecolors="black")
    for name, t, p, count in zip(names, times, psnrs, params, strict=True):
        ax.annotate(f"{name} ({count:,})", (t, p), textcoords="offset points", xytext=(6, 6))
    ax.axhline(results["shift_invariant"]["psnr"], ls="--", c="gray", lw=1)
    ax.annotate("best shift-invariant kernel", (min(times), results["shift_invariant"]["psnr"]),
                textcoords="offset points", xytext=(0, -12), color="gray")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("inference time, whole held-out batch (ms, median)")
    ax.set_ylabel("held-out PSNR (dB)")
    caption = (
        "1D spatially-varying convolution: held-out PSNR against inference time; marker area "
        "proportional to the parameter count (in brackets). Dashed: the best single kernel "
        "(least squares), the bound of any shift-invariant linear model."
    )
    return _done(
        Plot("cg1d_psnr_vs_time", "1D task: PSNR vs inference time", caption, figure, COORDGATE),
        folder,
    )


def plot_matrices(
    matrices: Mapping[str, np.ndarray],
    names: Sequence[str] | None = None,
    folder: Path | None = None,
) -> Plot:
    """The ``true`` matrix and each named model's effective matrix (``matrices.npz`` of the 1D
    experiment), on one colour scale."""
    if "true" not in matrices:
        raise ValueError("plot_matrices: need the 'true' matrix")
    skip = {"true", "sigma", "x", "y"}
    names = list(names) if names is not None else [
        k for k in matrices if k not in skip and not k.startswith("pred_")
    ]  # fmt: skip
    panels = ["true", *names]
    limit = float(np.abs(matrices["true"]).max())
    figure = _figure(2.6 * len(panels), 3.0)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    image = None
    for ax, name in zip(axes, panels, strict=True):
        image = ax.imshow(matrices[name], cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    figure.colorbar(image, ax=list(axes), shrink=0.8)
    caption = (
        "Convolution matrices: the true position-dependent operator (row i = kernel at output i) "
        "and each model's effective matrix, probed with unit impulses."
    )
    return _done(
        Plot("cg1d_matrices", "1D task: learned convolution matrices", caption, figure, COORDGATE),
        folder,
    )


def plot_psnr_vs_params(rows: Sequence[Mapping[str, Any]], folder: Path | None = None) -> Plot:
    """``rows`` of ``{"model", "params", "psnr"}`` (optionally ``"psnr_std"``, ``"label"``), one
    point per model; the parameter axis is logarithmic."""
    if not rows:
        raise ValueError("plot_psnr_vs_params: no rows to plot")
    figure = _figure(6, 4.2)
    ax = figure.subplots()
    for row in rows:
        label = row.get("label", row["model"])
        ax.errorbar(row["params"], row["psnr"], yerr=row.get("psnr_std"), fmt="o", capsize=3,
                    label=label)  # fmt: skip
        ax.annotate(label, (row["params"], row["psnr"]), textcoords="offset points", xytext=(5, 5))
    ax.set_xscale("log")
    # Tick the models' own sizes: a narrow log range otherwise gets crowded, unreadable labels.
    sizes = sorted({float(row["params"]) for row in rows})
    ax.xaxis.set_major_locator(FixedLocator(sizes))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value / 1e3:,.0f}k"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("parameters")
    ax.set_ylabel("test PSNR (dB)")
    caption = "Deblurring: test PSNR against the number of parameters (log scale) per model."
    return _done(
        Plot("cg_psnr_vs_params", "Deblurring: PSNR vs parameters", caption, figure, COORDGATE),
        folder,
    )


def plot_deblur_examples(
    blurred: np.ndarray,
    outputs: Mapping[str, np.ndarray],
    truth: np.ndarray,
    folder: Path | None = None,
) -> Plot:
    """One row: blurred input, each model's output, truth — images ``(C, H, W)`` or ``(H, W)`` on
    [0, 1] (the first channel is shown, grey)."""
    panels = [("blurred", blurred), *outputs.items(), ("truth", truth)]
    figure = _figure(3.0 * len(panels), 3.2)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, image) in zip(axes, panels, strict=True):
        array = np.asarray(image, dtype=float)
        ax.imshow(array[0] if array.ndim == 3 else array, cmap="gray", vmin=0, vmax=1)
        ax.set_title(name)
        ax.set_axis_off()
    caption = "Deblurring example: blurred input, model outputs and the ground truth."
    return _done(
        Plot("cg_deblur_examples", "Deblurring examples", caption, figure, COORDGATE), folder
    )


def plot_padding_signal(arrays: Mapping[str, np.ndarray], folder: Path | None = None) -> Plot:
    """Fig. 1 from ``padding_signal.npz``: stacked convs (last map), U-Nets with 2 and 4 steps."""
    panels = [
        ("5 stacked 3×3 convs", arrays["stacked"][-1]),
        ("U-Net, 2 down/up steps", arrays["unet2"]),
        ("U-Net, 4 down/up steps", arrays["unet4"]),
    ]
    figure = _figure(9.5, 3.3)
    axes = figure.subplots(1, 3)
    for ax, (name, image) in zip(axes, panels, strict=True):
        shown = ax.imshow(image, cmap="viridis")
        figure.colorbar(shown, ax=ax, shrink=0.8)
        ax.set_title(name)
        ax.set_axis_off()
    caption = (
        "Position signal of 'same' zero padding: a uniform input through uniform 3×3 kernels; "
        "every value below 1 tells the network how far it is from the border."
    )
    return _done(
        Plot("cg_padding_signal", "Position signal of 'same' padding", caption, figure, COORDGATE),
        folder,
    )


def coordgate_plots(results_dir: Path, records: Any, warnings: list[str]) -> list[Plot]:
    """Every CoordGate figure whose inputs exist: the 1D task and padding experiments (their
    ``results/coordgate/<name>/`` folders) and, from the ``cg`` run folders, PSNR vs parameters
    (mean ± std over seeds per model, depth and conv kind) and a deblurring example."""
    plots: list[Plot] = []
    oned = results_dir / "coordgate" / "oned"
    if (oned / "results.json").is_file():
        plots.append(plot_psnr_vs_time(json.loads((oned / "results.json").read_text())))
        if (oned / "matrices.npz").is_file():
            with np.load(oned / "matrices.npz") as arrays:
                plots.append(plot_matrices(dict(arrays)))
    padding = results_dir / "coordgate" / "padding" / "padding_signal.npz"
    if padding.is_file():
        with np.load(padding) as arrays:
            plots.append(plot_padding_signal(dict(arrays)))
    if len(records) == 0:
        return plots
    runs = records[(records["task"] == "deblurring") & ~records["diverged"].astype(bool)]
    if runs.empty:
        return plots
    rows = []
    for (model, conv, density), group in runs.groupby(["model", "conv", "density"], dropna=False):
        first = Path(group["path"].iloc[0]) / "metrics.json"
        params = json.loads(first.read_text())["params"]  # the same for every seed
        psnr = group["test_psnr"].astype(float)
        label = model if conv == "standard" else f"{model} {conv} d{density}"
        rows.append({"model": model, "label": label, "params": params,
                     "psnr": float(psnr.mean()),
                     "psnr_std": float(psnr.std(ddof=1)) if len(psnr) > 1 else 0.0})  # fmt: skip
    plots.append(plot_psnr_vs_params(rows))
    first_seed = runs[(runs["conv"] == "standard") & (runs["seed"] == runs["seed"].min())]
    outputs: dict[str, np.ndarray] = {}
    blurred = truth = None
    for model, path in zip(first_seed["model"], first_seed["path"], strict=True):
        examples = Path(path) / "examples.npz"
        if not examples.is_file():
            warnings.append(f"{path}: no examples.npz for the deblurring figure")
            continue
        with np.load(examples) as arrays:
            outputs[model] = arrays["output"][0]
            blurred, truth = arrays["noisy"][0], arrays["clean"][0]
    if outputs and blurred is not None and truth is not None:
        plots.append(plot_deblur_examples(blurred, outputs, truth))
    return plots
