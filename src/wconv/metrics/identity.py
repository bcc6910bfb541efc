"""Identity (no-model) metrics of a prepared restoration test set, cached beside the data.

The identity baseline scores the degraded test inputs against their clean targets. It depends
only on the prepared data, yet computing it (FSIM above all) costs seconds to minutes per run
start on a full test set, so it is computed once and stored as ``identity_metrics.json`` in the
prepared folder. The cache is keyed on the folder's manifest (a re-prepared folder gets a new
manifest, hence a recomputation) and on the metric names (adding a metric recomputes it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wconv.io import write_json
from wconv.metrics.image import IMAGE_METRICS, image_metrics

log = logging.getLogger(__name__)

CACHE_NAME = "identity_metrics.json"


def identity_metrics(
    data_cfg: Mapping[str, Any],
    root: str | Path,
    test: Any | None = None,
    *,
    task: str | None = None,
) -> dict[str, float]:
    """Mean image metrics of the test split's degraded inputs vs clean targets (``{name: mean}``).

    ``test``: the already loaded test ``RestorationSplit`` (saves reading it again on a cache
    miss). Read from ``<prepared folder>/identity_metrics.json`` when that matches the folder's
    manifest; otherwise computed and written there (a read-only data folder only logs a warning).
    ``task`` resolves a data set alias (``wconv.data.prepare``).
    """
    # Imported here: wconv.data must stay importable without the metrics stack (and vice versa).
    from wconv.data import load_split, prepared_dir, store

    folder = prepared_dir(data_cfg, root, task=task)
    key = _key(folder)
    path = folder / CACHE_NAME
    if path.is_file():
        try:
            cached = store.read_json(path)
        except (OSError, ValueError):
            cached = None
        if isinstance(cached, dict) and cached.get("key") == key:
            return {k: float(v) for k, v in cached["metrics"].items()}
    if test is None:
        test = load_split(data_cfg, root, "test", task=task)
    scores = image_metrics(test.degraded, test.clean.float() / 255)
    metrics = {k: float(v.mean()) for k, v in scores.items()}
    try:
        write_json(path, {"key": key, "metrics": metrics, "images": len(test.clean)})
    except OSError as error:
        log.warning("cannot cache identity metrics in %s (%s); recomputed each run", folder, error)
    return metrics


def _key(folder: Path) -> dict[str, Any]:
    from wconv.data import store

    return {"manifest": store.digest(store.read_json(folder / store.MANIFEST)),
            "metrics": list(IMAGE_METRICS)}  # fmt: skip
