"""Layers that know only torch: weighted convolutions and CoordGate / CoordConv."""

from wconv.nn.coordgate import CoordConv, CoordGate, coordinate_grid
from wconv.nn.weighted import (
    CONV_KINDS,
    ConvFactory,
    WeightedConv1d,
    WeightedConv2d,
    WeightedConv3d,
    conv_factory,
    convert,
    count_weighted,
    density_matrix,
    fold,
    is_weighted,
    project_densities_,
    ranged_layers,
)

__all__ = [
    "CONV_KINDS",
    "ConvFactory",
    "CoordConv",
    "CoordGate",
    "WeightedConv1d",
    "WeightedConv2d",
    "WeightedConv3d",
    "conv_factory",
    "convert",
    "coordinate_grid",
    "count_weighted",
    "density_matrix",
    "fold",
    "is_weighted",
    "project_densities_",
    "ranged_layers",
]
