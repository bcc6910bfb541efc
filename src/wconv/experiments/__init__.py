"""The CoordGate study's stand-alone experiments (each writes JSON/NPZ results atomically into an
output folder); their figures are drawn by ``wconv.report.coordgate``."""

from wconv.experiments.coordgate_1d import MODELS_1D, run_coordgate_1d
from wconv.experiments.padding_signal import run_padding_signal

__all__ = [
    "MODELS_1D",
    "run_coordgate_1d",
    "run_padding_signal",
]
