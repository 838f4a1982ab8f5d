"""`spec.objectives`: what "better" means, one metric or several."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from optikube_operator.api.base import ApiModel

Metric = Literal[
    "accuracy", "f1", "valLoss", "latencyMs", "latencyMsBatch32", "sizeBytes", "parameters", "macs"
]
# Measured on the validation split at the end of every epoch (intermediate events carry them).
EPOCH_METRICS: tuple[str, ...] = ("accuracy", "f1", "valLoss")
# Measured on the finished (compressed, quantized) model.
MODEL_METRICS: tuple[str, ...] = ("latencyMs", "latencyMsBatch32", "sizeBytes", "parameters", "macs")
# A trial's final values also say how many validation samples its scores stand on (not a metric to
# optimize: it tells whether the split can rank trials, docs/tuning.md).
VALIDATION_SAMPLES = "validationSamples"
# Metrics that count samples: one validation sample moves them by about 1 / validationSamples.
COUNTED_METRICS: tuple[str, ...] = ("accuracy", "f1")
METRIC_DESCRIPTION = (
    "accuracy and f1 (macro) on the validation split, valLoss, latencyMs (median batch-1 inference time),"
    " latencyMsBatch32, sizeBytes (saved model), parameters, macs (multiply-accumulates per example)."
)


class Objective(ApiModel):
    """One metric to optimize."""

    metric: Metric = Field(description="The metric: " + METRIC_DESCRIPTION)
    direction: Literal["maximize", "minimize"] = Field(description="Whether larger or smaller is better.")

    @property
    def maximized(self) -> bool:
        return self.direction == "maximize"

    def better(self, a: float, b: float) -> bool:
        """Whether value ``a`` is strictly better than ``b`` for this objective."""
        return a > b if self.maximized else a < b

    def reaches(self, value: float, goal: float) -> bool:
        return value >= goal if self.maximized else value <= goal

    def oriented(self, value: float) -> float:
        """``value`` with the sign that makes larger better."""
        return value if self.maximized else -value
