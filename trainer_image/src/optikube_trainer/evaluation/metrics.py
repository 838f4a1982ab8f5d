"""Task metrics computed by one process over a whole split (no collectives), for measurements
that run on rank 0 only."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@torch.inference_mode()
def classification_metrics(
    model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]], num_classes: int
) -> dict[str, float]:
    """accuracy, macro F1 (over the classes present) and mean cross-entropy (`valLoss`)."""
    model.eval()
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.float64)
    loss_sum = 0.0
    for inputs, targets in batches:
        logits = model(inputs).float()
        loss_sum += float(F.cross_entropy(logits, targets, reduction="sum"))
        index = targets * num_classes + logits.argmax(dim=1)
        counts = torch.bincount(index, minlength=num_classes**2)
        confusion += counts.reshape(num_classes, num_classes).double()
    count = float(confusion.sum())
    if count == 0:
        return {"accuracy": math.nan, "f1": math.nan, "valLoss": math.nan}
    true_positive = confusion.diag()
    f1 = 2 * true_positive / (confusion.sum(0) + confusion.sum(1)).clamp(min=1)
    present = confusion.sum(1) > 0
    return {
        "accuracy": float(true_positive.sum() / count),
        "f1": float(f1[present].mean()),
        "valLoss": loss_sum / count,
    }
