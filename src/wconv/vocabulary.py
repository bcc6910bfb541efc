"""The study's words, each defined once: studies, run-id prefixes, tasks, metrics and run ids.

Standard library only (no torch, yaml or pandas), so the workflow, the report, the data layer and
the trainer can all import it.  Every other module takes these names from here; the settings
schema (``params.schema.yaml``) holds the allowed *values* of settings, this module the names of
the study's parts.

* A **study** is a section of ``params.yaml`` (``classification``, ``denoising``, ``coordgate``);
  its **prefix** (``cls``, ``den``, ``cg``) starts the id of each of its runs.
* A **task** is what a study's runs learn and are scored on (``classification``, ``denoising``,
  ``deblurring``); run configs and ``metrics.json`` carry it.
* A **run id** is ``<prefix>/<model>/<variant>/k<kernel size>/s<seed>``, the variant being the
  conv kind with the density tag of a weighted or learned run: ``weighted-d0.75``, ``standard``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

STUDIES: tuple[str, ...] = ("classification", "denoising", "coordgate")
"""The studies (sections of ``params.yaml``), in the order the grid lists their runs."""

STUDY_PREFIX: dict[str, str] = {"classification": "cls", "denoising": "den", "coordgate": "cg"}
"""Study -> the prefix of its run ids (and of its data stamp ``<data>/.prepared/<prefix>.json``)."""

PREFIX_TO_STUDY: dict[str, str] = {prefix: study for study, prefix in STUDY_PREFIX.items()}
PREFIXES: tuple[str, ...] = tuple(STUDY_PREFIX.values())

TASKS: tuple[str, ...] = ("classification", "denoising", "deblurring")
STUDY_TASK: dict[str, str] = {
    "classification": "classification",
    "denoising": "denoising",
    "coordgate": "deblurring",  # CoordGate (arXiv 2401.04680): a spatially-varying blur
}
PREFIX_TASK: dict[str, str] = {STUDY_PREFIX[study]: task for study, task in STUDY_TASK.items()}

PAPER_TASKS: tuple[str, ...] = ("classification", "denoising")
"""The tasks of the weighted-convolution paper (arXiv 2505.24558): published tables to compare
with, and a weighted density chosen per model on the validation metric."""

FAMILY: dict[str, str] = {
    "classification": "classification",
    "denoising": "restoration",
    "deblurring": "deblurring",
}
"""Task -> the family its models are registered under (``wconv.models.register``).
"restoration" is the denoising task there: image-to-image networks.  Registered data sets
(``wconv.data.config.DatasetSpec.task``) name the task itself."""

SPLITS: tuple[str, ...] = ("train", "val", "test")
"""Splits of every data set (the schema's ``$defs/split`` is filled from it)."""

PADDING_MODES: tuple[str, ...] = ("zeros", "reflect", "replicate", "circular")
"""Padding modes of the CoordGate padding-signal experiment (schema: ``$defs/padding_mode``)."""

TRAIN_JOBS: tuple[str, ...] = ("run", "cell")
"""What one training job of the workflow trains (``workflow.train_job``; schema:
``$defs/train_job``): one run, or every seed of one grid cell, one after another in one process."""

CONVS: tuple[str, ...] = ("standard", "weighted", "learned")
"""Conv kinds of a run (the first part of its variant); the same as ``wconv.nn.CONV_KINDS``."""

_IMAGE_METRICS: dict[str, bool] = {
    "psnr": True,
    "ssim": True,
    "nrmse": False,
    "fsim": True,
    "uiq": True,
}
METRICS: dict[str, dict[str, bool]] = {
    "classification": {"accuracy": True, "f1_macro": True},
    "denoising": _IMAGE_METRICS,
    "deblurring": _IMAGE_METRICS,  # the CoordGate study is scored like denoising
}
"""Task -> metric -> True when higher is better.  Classification: accuracy and macro F1 on
[0, 1]; image metrics on [0, 1] images with data range 1 (NRMSE is the only lower-is-better)."""

SELECT_METRIC: dict[str, str] = {
    "classification": "accuracy",
    "denoising": "psnr",
    "deblurring": "psnr",
}
"""Task -> the validation metric that picks the best epoch and, by default, the weighted density
(``report.select_metric`` in ``params.yaml`` may choose another for the paper's tasks)."""

FINISHED_STATUSES: tuple[str, ...] = ("ok", "stopped_early", "diverged")
"""``status`` of a finished run's ``metrics.json``."""

# ------------------------------------------------------------------------------------- run ids

_NUMBER = r"[0-9]+(?:\.[0-9]+)?(?:e[+-][0-9]+)?"  # a density value as Python's ``f"{v:g}"`` writes
STUDY_PREFIX_PATTERN = "|".join(PREFIXES)
"""Regular expression (no anchors) matching a study prefix: ``cls|den|cg``."""
CELL_PATTERN = (
    rf"(?:{STUDY_PREFIX_PATTERN})"
    r"/[A-Za-z0-9][A-Za-z0-9_.+-]*"  # model (CoordGate models carry their depth: unet-L3)
    rf"/(?:{'|'.join(CONVS)})(?:-d{_NUMBER}(?:_{_NUMBER})*)?"  # variant
    r"/k[0-9]+"
)
"""Regular expression (no anchors, no groups) matching a grid cell: a run id without its seed
(:attr:`RunId.cell`)."""
RUN_ID_PATTERN = rf"{CELL_PATTERN}/s[0-9]+"
"""Regular expression (no anchors, no groups) matching exactly the well-formed run ids; usable as
a Snakemake wildcard constraint (``wildcard_constraints: run=RUN_ID_PATTERN``)."""
RUN_ID_RE = re.compile(rf"\A{RUN_ID_PATTERN}\Z")
RUN_ID_EXAMPLE = "cls/resnet56/weighted-d0.75/k3/s0"


@dataclass(frozen=True)
class RunId:
    """One run of the grid: ``str(run_id)`` is the id, :meth:`parse` reads it back.

    >>> rid = RunId.parse("den/nafnet/weighted-d0.1_0.9/k5/s2")
    >>> rid.study, rid.task, rid.conv, rid.density, rid.cell
    ('denoising', 'denoising', 'weighted', (0.1, 0.9), 'den/nafnet/weighted-d0.1_0.9/k5')
    >>> str(RunId("cls", "resnet56", "standard", 3, 0))
    'cls/resnet56/standard/k3/s0'
    """

    prefix: str  # the study's prefix: cls | den | cg
    model: str
    variant: str  # conv kind, with "-d<density>" for weighted and learned runs
    kernel_size: int
    seed: int

    def __post_init__(self) -> None:
        text = self._format()
        if not RUN_ID_RE.match(text):
            raise ValueError(f"{text!r} is not a run id; {_EXPECTED}")
        if not all(math.isfinite(v) for v in self.density or ()):
            raise ValueError(f"run id {text!r}: the density has a non-finite value")

    @classmethod
    def parse(cls, text: str) -> RunId:
        """The run id ``text`` (surrounding blanks and slashes ignored); ``ValueError`` naming
        the expected form when it is not one."""
        clean = str(text).strip().strip("/")
        if not RUN_ID_RE.match(clean):
            raise ValueError(f"{text!r} is not a run id; {_EXPECTED}")
        prefix, model, variant, kernel, seed = clean.split("/")
        return cls(prefix, model, variant, int(kernel[1:]), int(seed[1:]))

    @classmethod
    def of(
        cls, study: str, model: str, conv: str, density_tag: str, kernel_size: int, seed: int
    ) -> RunId:
        """The run id of a grid cell: ``study`` by its full name, ``density_tag`` "" or e.g.
        ``"0.1_0.9"``."""
        variant = f"{conv}-d{density_tag}" if density_tag else conv
        return cls(STUDY_PREFIX[study], model, variant, kernel_size, seed)

    @property
    def study(self) -> str:
        """The study's full name (``classification``)."""
        return PREFIX_TO_STUDY[self.prefix]

    @property
    def task(self) -> str:
        return PREFIX_TASK[self.prefix]

    @property
    def conv(self) -> str:
        return self.variant.partition("-d")[0]

    @property
    def density_label(self) -> str:
        """The density as written in the id ("0.75", "0.1_0.9"); "" when it has none."""
        return self.variant.partition("-d")[2]

    @property
    def density(self) -> tuple[float, ...] | None:
        label = self.density_label
        return tuple(float(v) for v in label.split("_")) if label else None

    @property
    def cell(self) -> str:
        """The id without the seed: the grid cell whose seeds are aggregated."""
        return self._format().rsplit("/", 1)[0]

    def _format(self) -> str:
        return f"{self.prefix}/{self.model}/{self.variant}/k{self.kernel_size}/s{self.seed}"

    def __str__(self) -> str:
        return self._format()

    def __format__(self, spec: str) -> str:
        return format(self._format(), spec)


_EXPECTED = (
    f"expected <study>/<model>/<conv>[-d<density>]/k<kernel size>/s<seed> with study one of "
    f"{', '.join(PREFIXES)} and conv one of {', '.join(CONVS)}, e.g. {RUN_ID_EXAMPLE}"
)


RUN_STATES: tuple[str, ...] = (
    "done",
    "diverged",
    "running",
    "pending",
    "failed",
    "interrupted",
    "corrupt",
    "not started",
)
"""The states of a grid cell in ``wconv status`` and the report (``wconv.report.status``)."""

EXIT_REQUEUE = 75
"""EX_TEMPFAIL, "try again": ``wconv train`` checkpointed on a stop signal and asks to be rerun."""
