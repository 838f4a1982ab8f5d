"""OptimizationTrial: one tuning trial (or the final pipeline run), created and owned by the operator.

Its status is the durable record of a trial, for both backends: the Kubernetes backend keeps it in
the OptimizationTrial object, local mode in its state file. It holds everything the orchestration
core needs to rebuild the study after a restart (state, values, the primary objective's per-step
series for the pruner, the sampler's own attributes), so nothing lives only in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import Field

from optikube_operator.api.base import ApiModel, FreeValue, Timestamp
from optikube_operator.api.formats import DNS_LABEL_PATTERN
from optikube_operator.api.metadata import ObjectMeta, name_errors
from optikube_operator.api.status import MAX_MESSAGE, MetricValues, metric_values
from optikube_operator.api.tuning import MAX_TRIAL_STEPS

TrialPhase = Literal[
    "Pending", "Running", "Succeeded", "Pruned", "Failed", "TimedOut", "Stopped", "Suspended"
]
# A spec with a pruner has at most MAX_TRIAL_STEPS steps (OptimizationJobSpec.RULES), so the
# series the pruner needs never overflows.
MAX_INTERMEDIATE_VALUES = MAX_TRIAL_STEPS
MAX_SAMPLER_ATTRIBUTES = 64
# A trial's Job and Service share its name, and its pods' hostnames are <name>-<index> (at most
# 1023 with 1024 workers): a DNS label of 63.
MAX_TRIAL_NAME = 58


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
    """The primary objective's value reported at one step (epoch; fold x epochs + epoch with k-fold)."""

    step: int = Field(ge=0, description="Optuna's step: the epoch index, counted on across folds.")
    value: float = Field(description="Value of the primary objective at that step.")


class OptimizationTrialStatus(ApiModel):
    """Observed state of a trial: everything needed to rebuild the study after a restart."""

    phase: TrialPhase = Field(
        "Pending",
        description="Pending, Running, Succeeded, Pruned (stopped by the pruner), Failed, TimedOut (ran past"
        " trialTimeout), Stopped (the search ended first) or Suspended (spec.suspend; runs again on resume).",
    )
    attempts: int = Field(0, ge=0, description="How many times the trial's run was launched.")
    sampler_attributes: dict[str, FreeValue] = Field(
        default_factory=dict,
        max_length=MAX_SAMPLER_ATTRIBUTES,
        description="What the sampler recorded when it suggested this trial (CMA-ES and NSGA-II state);"
        " restored when the study is rebuilt.",
    )
    intermediate_values: list[IntermediateValue] = Field(
        default_factory=list,
        max_length=MAX_INTERMEDIATE_VALUES,
        description="The primary objective per step, for the pruner.",
    )
    latest_step: int | None = Field(None, ge=0, description="Step of the latest intermediate progress.")
    latest_values: MetricValues = metric_values("Every value of the latest intermediate progress.")
    final_values: MetricValues = metric_values("Final values by metric.")
    start_time: Timestamp | None = Field(None, description="When the trial (its latest attempt) started.")
    completion_time: Timestamp | None = Field(None, description="When the trial ended.")
    message: str | None = Field(None, max_length=MAX_MESSAGE, description="Why it failed or was stopped.")


class OptimizationTrial(ApiModel):
    """One trial of an OptimizationJob."""

    api_version: Literal["optikube.io/v1alpha1"] = Field("optikube.io/v1alpha1", description="API version.")
    kind: Literal["OptimizationTrial"] = Field("OptimizationTrial", description="Kind.")
    metadata: ObjectMeta = Field(
        default_factory=lambda: ObjectMeta(), description="Standard object metadata."
    )
    spec: OptimizationTrialSpec = Field(description="What the trial runs.")
    status: OptimizationTrialStatus | None = Field(None, description="Observed state.")

    def field_errors(self) -> Iterator[tuple[str, str]]:
        yield from name_errors(self.metadata, MAX_TRIAL_NAME)
