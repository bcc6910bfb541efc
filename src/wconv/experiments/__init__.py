"""The CoordGate study's stand-alone experiments (each writes JSON/NPZ results atomically into an
output folder) and their figures."""

from wconv.experiments.coordgate_1d import MODELS_1D, run_coordgate_1d
from wconv.experiments.padding_signal import run_padding_signal
from wconv.experiments.plots import (
    plot_deblur_examples,
    plot_matrices,
    plot_padding_signal,
    plot_psnr_vs_params,
    plot_psnr_vs_time,
)

__all__ = [
    "MODELS_1D",
    "plot_deblur_examples",
    "plot_matrices",
    "plot_padding_signal",
    "plot_psnr_vs_params",
    "plot_psnr_vs_time",
    "run_coordgate_1d",
    "run_padding_signal",
]
