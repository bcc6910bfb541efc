"""``metrics.json``: the headline numbers of a study, small enough for ``dvc metrics show``.

One entry per grid cell and kind of convolution: the test-set mean of the study's main metric,
the paired difference to the standard convolution with its 95 % confidence interval, and the
number of seeds. Keys name the cell only (``small_cnn/k3``), never a device: a timing entry
carries its device as a value, so experiments on different hardware still line up by key.
Everything here is read from ``summary.json``'s numbers, nothing is recomputed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# study block of summary.json -> its main test metric, as summary.json names it
MAIN_METRIC = {"classification": "accuracy_pct", "denoising": "psnr"}


def _cell(values: Mapping[str, Any], metric: str, paired: str) -> dict[str, Any]:
    entry = {
        f"{metric}_mean": values.get(f"{metric}_mean"),
        "n": values.get("n"),
        "n_diverged": values.get("n_diverged"),
    }
    if values.get("n_pairs"):
        entry |= {
            f"delta_{paired}": values.get(f"delta_{paired}"),
            f"ci_low_{paired}": values.get(f"ci_low_{paired}"),
            f"ci_high_{paired}": values.get(f"ci_high_{paired}"),
            "n_pairs": values.get("n_pairs"),
        }
    return entry


def headline_metrics(summary: Mapping[str, Any], preset: str | None) -> dict[str, Any]:
    """The DVC metrics of one report, derived from its ``summary.json`` content."""
    runs = summary.get("runs", {})
    done = int(runs.get("done", 0))
    headline: dict[str, Any] = {
        "preset": preset or "",
        "runs": {"total": int(runs.get("total", 0)), "done": done},
    }
    for study, metric in MAIN_METRIC.items():
        block = {
            f"{cell}/{conv}": _cell(values, metric, metric)
            for cell, convs in summary.get(study, {}).items()
            for conv, values in convs.items()
        }
        if block:
            headline[study] = block
    deblurring = {
        key: _cell(values, "psnr", "psnr_vs_unet")
        for key, values in summary.get("deblurring", {}).items()
    }
    if deblurring:
        headline["deblurring"] = deblurring
    timing: dict[str, Any] = {}
    for study, cells in summary.get("timing", {}).items():
        for key, values in sorted(cells.items()):
            # summary.json keys timing by model/k<size>/<device>; the device becomes a value,
            # and a second device of one cell gets a numbered key.
            cell, _, device = key.rpartition("/")
            name, number = f"{study}/{cell}", 2
            while name in timing:
                name, number = f"{study}/{cell}/device{number}", number + 1
            timing[name] = {"device": device, **values}
    if timing:
        headline["timing"] = timing
    return headline
