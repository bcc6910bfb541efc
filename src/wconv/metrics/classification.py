"""Accuracy, macro F1 and the confusion matrix (torchmetrics)."""

from __future__ import annotations

import torch
from torch import Tensor


def classification_metrics(
    predictions: Tensor, targets: Tensor, num_classes: int
) -> tuple[dict[str, float], Tensor]:
    """``({"accuracy", "f1_macro"}, confusion)`` for predicted and true class indices.

    F1 is the unweighted mean over classes of ``TP / (TP + (FP + FN) / 2)``; a class absent from
    both predictions and targets counts as F1 = 0, as in scikit-learn's ``zero_division=0``.
    ``confusion[i, j]`` counts samples of true class ``i`` predicted as ``j``.
    """
    # Imported here: torchmetrics costs seconds at start-up (scipy, matplotlib, torch._dynamo)
    # and a run needs it only for its final test pass.
    from torchmetrics.functional.classification import (
        multiclass_accuracy,
        multiclass_confusion_matrix,
        multiclass_f1_score,
    )

    predictions, targets = predictions.cpu(), targets.cpu()
    accuracy = multiclass_accuracy(predictions, targets, num_classes, average="micro")
    f1 = multiclass_f1_score(predictions, targets, num_classes, average="macro")
    confusion = multiclass_confusion_matrix(predictions, targets, num_classes)
    return {"accuracy": float(accuracy), "f1_macro": float(f1)}, confusion.to(torch.int64)
