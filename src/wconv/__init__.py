"""wconv: weighted convolution and CoordGate layers, models, and a reproducible study."""

__version__ = "0.1.0"
