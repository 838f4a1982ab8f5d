"""OptimizationTrial: one tuning trial (or the final pipeline run), created and owned by the operator."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from optikube_operator.api.base import DNS_LABEL_PATTERN, ApiModel, FreeValue, Timestamp
from optikube_operator.api.job import ObjectMeta
from optikube_operator.api.status import MAX_MESSAGE, MetricValues

TrialPhase = Literal["Pending", "Running", "Succeeded", "Pruned", "Failed"]
MAX_INTERMEDIATE_VALUES = 256


class JobReference(ApiModel):
    """The OptimizationJob a trial belongs to (same namespace)."""

    name: str = Field(pattern=DNS_LABEL_PATTERN, max_length=63, description="Name of the OptimizationJob.")
    uid: str | None = Field(None, max_length=64, description="UID of the OptimizationJob.")


class OptimizationTrialSpec(ApiModel):
    """What the trial runs."""

    job_ref: JobReference = Field(description="The owning OptimizationJob.")
    number: int = Field(ge=0, description="Trial number within the job, from 0.")
    params: dict[str, FreeValue] = Field(
        default_factory=dict, max_length=32, description="Sampled values by search-space key."
    )
    stage: Literal["trial", "pipeline"] = Field(
        "trial", description="trial: a tuning trial; pipeline: the final train-compress-quantize run."
    )


class IntermediateValue(ApiModel):
    """Objective values reported at the end of an epoch."""

    step: int = Field(ge=0, description="Epoch index (Optuna's step).")
    values: MetricValues = Field(default_factory=dict, max_length=16, description="Values by metric.")


class OptimizationTrialStatus(ApiModel):
    """Observed state of a trial."""

    phase: TrialPhase = Field("Pending", description="Pending, Running, Succeeded, Pruned or Failed.")
    intermediate_values: list[IntermediateValue] = Field(
        default_factory=list,
        max_length=MAX_INTERMEDIATE_VALUES,
        description=f"Per-epoch values for pruning; the latest {MAX_INTERMEDIATE_VALUES} are kept.",
    )
    final_values: MetricValues = Field(
        default_factory=dict, max_length=16, description="Final values by metric."
    )
    start_time: Timestamp | None = Field(None, description="When the trial started running.")
    completion_time: Timestamp | None = Field(None, description="When the trial ended.")
    message: str | None = Field(None, max_length=MAX_MESSAGE, description="Why it failed or was pruned.")


class OptimizationTrial(ApiModel):
    """One trial of an OptimizationJob."""

    api_version: Literal["optikube.io/v1alpha1"] = Field("optikube.io/v1alpha1", description="API version.")
    kind: Literal["OptimizationTrial"] = Field("OptimizationTrial", description="Kind.")
    metadata: ObjectMeta = Field(
        default_factory=lambda: ObjectMeta(), description="Standard object metadata."
    )
    spec: OptimizationTrialSpec = Field(description="What the trial runs.")
    status: OptimizationTrialStatus | None = Field(None, description="Observed state.")
