"""Evaluation metrics from established libraries (torchmetrics, piq), with documented conventions.

Images are compared on the [0, 1] scale with ``data_range = 1``; predictions are clamped to
[0, 1] first (a saved PNG could not hold anything else).  Image metrics are computed per image and
averaged over the set.
"""

from wconv.metrics.classification import classification_metrics
from wconv.metrics.identity import identity_metrics
from wconv.metrics.image import IMAGE_METRICS, image_metrics

__all__ = ["IMAGE_METRICS", "classification_metrics", "identity_metrics", "image_metrics"]
