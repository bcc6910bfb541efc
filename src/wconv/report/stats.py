"""Aggregation over seeds, the validation-based density choice, and the paired tests.

Decisions (also printed under the tables):

* mean ± sample standard deviation (``ddof=1``) over seeds; the std is undefined for n = 1;
* diverged runs are counted but excluded from every mean, choice and test;
* the weighted density of a model is the one whose *validation* metric, averaged over its seeds,
  is best; its *test* numbers are reported (the test set never picks anything);
* standard vs weighted is compared seed by seed (same seed = same initial weights and data order):
  Δ is the mean of the paired differences, given with its 95 % confidence interval from the t
  distribution with n − 1 degrees of freedom (Δ ± t₀.₉₇₅ · s/√n, s the std of the differences),
  and p the two-sided paired t-test (``scipy.stats.ttest_rel``); both undefined for fewer than 2
  pairs.  The interval says how large the effect may be, which p alone does not.
  The Wilcoxon signed-rank test is added from ``wilcoxon_min_n`` pairs on (default 6): with 5
  pairs or fewer its exact two-sided p can never be below 0.0625, so it could not reject at 5 %
  and would only add noise to the table.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from wconv.report.runs import density_values
from wconv.vocabulary import PAPER_TASKS, SELECT_METRIC

# The paper's tasks pick their density by the task's selection metric unless params say otherwise.
DEFAULT_SELECT_METRIC: dict[str, str] = {task: SELECT_METRIC[task] for task in PAPER_TASKS}


@dataclass(frozen=True)
class ReportOptions:
    """Choices a user may change (``report:`` section of the params file)."""

    select_metric: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SELECT_METRIC))
    wilcoxon_min_n: int = 6


@dataclass(frozen=True)
class Summary:
    mean: float
    std: float
    n: int


@dataclass(frozen=True)
class Paired:
    delta: float  # mean of (other − reference) over matched seeds
    n_pairs: int
    p_ttest: float
    p_wilcoxon: float
    ci_low: float = math.nan  # 95 % t interval of the mean paired difference
    ci_high: float = math.nan


def mean_ci(differences: Iterable[float], level: float = 0.95) -> tuple[float, float]:
    """Two-sided t confidence interval of the mean of ``differences``; NaN below 2 values."""
    array = np.asarray(list(differences), dtype=float)
    n = int(array.size)
    if n < 2:
        return math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * array.std(ddof=1) / math.sqrt(n))
    mean = float(array.mean())
    return mean - half, mean + half


def summarise(values: Iterable[float]) -> Summary:
    """Mean and sample std (ddof=1) of the finite values; NaN where undefined."""
    array = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = int(array.size)
    mean = float(array.mean()) if n else math.nan
    std = float(array.std(ddof=1)) if n >= 2 else math.nan
    return Summary(mean, std, n)


def paired_test(
    reference: Mapping[int, float], other: Mapping[int, float], wilcoxon_min_n: int = 6
) -> Paired:
    """Compare ``other`` with ``reference`` over the seeds both have (finite values only)."""
    seeds = sorted(
        s
        for s in set(reference) & set(other)
        if math.isfinite(reference[s]) and math.isfinite(other[s])
    )
    a = np.asarray([reference[s] for s in seeds], dtype=float)
    b = np.asarray([other[s] for s in seeds], dtype=float)
    n = len(seeds)
    delta = float((b - a).mean()) if n else math.nan
    p_t = p_w = math.nan
    with warnings.catch_warnings():
        # Identical differences give a zero variance: scipy warns and returns NaN, which we keep.
        warnings.simplefilter("ignore", RuntimeWarning)
        if n >= 2:
            p_t = float(stats.ttest_rel(b, a).pvalue)
        if n >= max(wilcoxon_min_n, 1) and np.any(b != a):
            p_w = float(stats.wilcoxon(b, a).pvalue)
    low, high = mean_ci(b - a)
    return Paired(delta, n, p_t, p_w, low, high)


def by_seed(frame: pd.DataFrame, column: str) -> dict[int, float]:
    """``{seed: value}`` of the non-diverged runs of ``frame`` (one run per seed expected)."""
    usable = frame[~frame["diverged"].astype(bool)]
    return {int(s): float(v) for s, v in zip(usable["seed"], usable[column], strict=True)}


def density_candidates(weighted: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per density: seeds, diverged count, validation and test mean/std of ``metric``."""
    rows = []
    labels = sorted(set(weighted["density"]), key=density_values)
    for label in labels:
        group = weighted[weighted["density"] == label]
        ok = group[~group["diverged"].astype(bool)]
        val, test = summarise(ok[f"val_{metric}"]), summarise(ok[f"test_{metric}"])
        rows.append(
            {
                "density": label,
                "n": test.n,
                "n_val": val.n,
                "n_diverged": int(group["diverged"].sum()),
                "val_mean": val.mean,
                "val_std": val.std,
                "test_mean": test.mean,
                "test_std": test.std,
            }
        )
    columns = [
        "density",
        "n",
        "n_val",
        "n_diverged",
        "val_mean",
        "val_std",
        "test_mean",
        "test_std",
    ]
    return pd.DataFrame(rows, columns=columns)


def choose_density(candidates: pd.DataFrame, higher_better: bool) -> str | None:
    """The density label with the best mean validation metric; ties go to the smallest density."""
    usable = candidates[candidates["val_mean"].notna()]
    if usable.empty:
        return None
    values = usable["val_mean"].to_numpy()
    index = int(np.argmax(values) if higher_better else np.argmin(values))
    return str(usable["density"].iloc[index])
