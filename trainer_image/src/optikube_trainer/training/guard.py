"""The numerical guard: a non-finite loss or metric ends training at that epoch, saying why.

A NaN loss poisons every later step, and a model trained that way only ever predicts one class; so
the epoch where it first shows fails the run, with the likely cause: non-finite inputs (named by
column, or by channel for images) or, when every input is finite, a divergence (a learning rate
too high for the data).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch.utils.data import Dataset

from optikube_trainer.data.bundle import DataBundle

# the per-epoch values that must stay finite, with what they are called in a message
GUARDED = {
    "trainLoss": "training loss",
    "valLoss": "validation loss",
    "accuracy": "validation accuracy",
    "f1": "validation f1",
}
# columns named in a message; the rest are counted
SHOWN_COLUMNS = 5


class NonFiniteTrainingError(ArithmeticError):
    """Training produced a NaN or infinite loss or metric."""


def _inputs(dataset: Dataset[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor | None:
    """The split's input tensor, for the datasets the bundles build (augmented ones keep theirs)."""
    for attribute in ("tensors", "images"):
        value = getattr(dataset, attribute, None)
        if isinstance(value, tuple | list) and value and isinstance(value[0], torch.Tensor):
            return value[0]
        if isinstance(value, torch.Tensor):
            return value
    return None


def nonfinite_inputs(bundle: DataBundle) -> dict[str, dict[str, int]]:
    """Per input column (tabular) or channel (images), how many non-finite values each split holds."""
    found: dict[str, dict[str, int]] = {}
    for split in ("train", "val"):
        inputs = _inputs(bundle.split(split))
        if inputs is None or not inputs.is_floating_point() or inputs.ndim < 2 or len(inputs) == 0:
            continue
        bad = ~torch.isfinite(inputs)
        # column of a table, channel of an image: the axis a user can trace back to the data
        counts = bad.flatten(2).sum(dim=(0, 2)) if inputs.ndim > 2 else bad.sum(dim=0)
        for index in torch.nonzero(counts).flatten().tolist():
            name = _input_name(bundle, int(index), image=inputs.ndim > 2)
            found.setdefault(name, {})[split] = int(counts[index])
    return found


def _input_name(bundle: DataBundle, index: int, *, image: bool) -> str:
    if image:
        return f"channel {index}"
    names = bundle.feature_names
    return repr(names[index]) if names is not None and index < len(names) else f"feature {index}"


def _cause(bundle: DataBundle, learning_rate: float) -> str:
    columns = nonfinite_inputs(bundle)
    if not columns:
        return (
            f"every input is finite, so training diverged: learning rate {learning_rate:g} too high?"
            " Lower spec.training.learningRate or set spec.training.gradientClipNorm"
        )
    described = [
        f"{name} ({', '.join(f'{count} in {split}' for split, count in splits.items())})"
        for name, splits in list(columns.items())[:SHOWN_COLUMNS]
    ]
    more = f" and {len(columns) - SHOWN_COLUMNS} more" if len(columns) > SHOWN_COLUMNS else ""
    kind = "channel" if next(iter(columns)).startswith("channel ") else "column"
    return (
        f"the inputs hold NaN or infinite values, in {kind}{'s' if len(columns) > 1 else ''}"
        f" {', '.join(described)}{more}: clean the data (for a CSV, a spelling of missing belongs in"
        " spec.data.source.file.naValues)"
    )


def check_epoch(
    epoch: int, total_epochs: int, values: Mapping[str, float], bundle: DataBundle, learning_rate: float
) -> None:
    """Raise NonFiniteTrainingError when a guarded value of this epoch is NaN or infinite.

    Every rank holds the same all-reduced values, so every rank raises at the same epoch."""
    bad = [f"{GUARDED[k]} is {values[k]}" for k in GUARDED if k in values and not math.isfinite(values[k])]
    if bad:
        raise NonFiniteTrainingError(
            f"epoch {epoch + 1} of {total_epochs}: {', '.join(bad)}; {_cause(bundle, learning_rate)}"
        )
