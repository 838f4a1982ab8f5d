"""Over-/underfitting diagnosis from the per-epoch train and validation curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# gap (train accuracy - validation accuracy) above which a model is called overfitting
OVERFIT_GAP = 0.05
# train accuracy below this share of what the classes allow is called underfitting
UNDERFIT_ACCURACY = 0.6


def _slope(values: Sequence[float]) -> float:
    """Mean change per epoch over the last (up to) three epochs."""
    tail = list(values)[-3:]
    return (tail[-1] - tail[0]) / (len(tail) - 1) if len(tail) >= 2 else 0.0


def diagnose(curves: Mapping[str, Mapping[str, Sequence[float]]], best_epoch: int) -> dict[str, Any]:
    train, val = curves.get("train", {}), curves.get("validation", {})
    train_acc, val_acc = list(train.get("accuracy", [])), list(val.get("accuracy", []))
    train_loss, val_loss = list(train.get("loss", [])), list(val.get("loss", []))
    if not train_acc or not val_acc:
        return {"fit": "unknown", "gap": None, "trend": "no epochs recorded"}
    index = min(max(best_epoch, 0), len(val_acc) - 1)
    gap = train_acc[index] - val_acc[index]
    val_loss_slope, train_loss_slope = _slope(val_loss), _slope(train_loss)
    if val_loss_slope > 0 and train_loss_slope < 0:
        trend = "validation loss rising while training loss falls"
    elif train_loss_slope < -0.01 and val_loss_slope < 0:
        trend = "both losses still falling: more epochs would help"
    elif abs(train_loss_slope) <= 0.01:
        trend = "training loss has plateaued"
    else:
        trend = "mixed"
    if gap > OVERFIT_GAP or (trend.startswith("validation loss rising") and gap > OVERFIT_GAP / 2):
        fit = "overfitting"
    elif train_acc[index] < UNDERFIT_ACCURACY or (trend.startswith("both losses") and train_acc[index] < 0.9):
        fit = "underfitting"
    else:
        fit = "good"
    return {
        "fit": fit,
        "gap": round(gap, 6),
        "trend": trend,
        "trainAccuracy": train_acc[index],
        "validationAccuracy": val_acc[index],
        "bestEpoch": index,
    }
