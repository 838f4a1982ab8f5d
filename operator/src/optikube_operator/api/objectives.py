"""`spec.objectives`: what "better" means, one metric or several."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from optikube_operator.api.base import ApiModel

Metric = Literal[
    "accuracy", "f1", "valLoss", "latencyMs", "latencyMsBatch32", "sizeBytes", "parameters", "macs"
]
METRIC_DESCRIPTION = (
    "accuracy and f1 (macro) on the validation split, valLoss, latencyMs (median batch-1 inference time),"
    " latencyMsBatch32, sizeBytes (saved model), parameters, macs (multiply-accumulates per example)."
)


class Objective(ApiModel):
    """One metric to optimize."""

    metric: Metric = Field(description="The metric: " + METRIC_DESCRIPTION)
    direction: Literal["maximize", "minimize"] = Field(description="Whether larger or smaller is better.")
