"""The durable form of what the core observes: trials as OptimizationTrial status, the pipeline as
OptimizationJob `status.pipeline`, the preflight as `status.preflight`.

Both backends store these API shapes (the operator in the cluster's objects, local mode in its
state file), so a record written by one reads the same in the other and survives a restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optikube_operator.core.observed as observed
from optikube_operator.api.status import PipelineStatus, PreflightStatus, StageRecord
from optikube_operator.api.trial import IntermediateValue, OptimizationTrialStatus


def trial_status(trial: observed.ObservedTrial) -> OptimizationTrialStatus:
    return OptimizationTrialStatus(
        phase=trial.state.value,
        attempts=trial.attempts,
        sampler_attributes=dict(trial.sampler_attrs),
        intermediate_values=[
            IntermediateValue(step=step, value=value) for step, value in sorted(trial.intermediate.items())
        ],
        latest_step=trial.latest_step,
        latest_values=dict(trial.latest_values),
        final_values=dict(trial.values),
        start_time=trial.start_time,
        completion_time=trial.end_time,
        message=trial.message or None,
    )


def observed_trial(
    number: int, params: Mapping[str, Any], status: OptimizationTrialStatus | None
) -> observed.ObservedTrial:
    status = status or OptimizationTrialStatus()
    return observed.ObservedTrial(
        number=number,
        params=dict(params),
        state=observed.TrialState(status.phase),
        intermediate={point.step: point.value for point in status.intermediate_values},
        latest_values=dict(status.latest_values),
        latest_step=status.latest_step,
        values=dict(status.final_values),
        start_time=status.start_time,
        end_time=status.completion_time,
        message=status.message or "",
        sampler_attrs=dict(status.sampler_attributes),
        attempts=status.attempts,
    )


def pipeline_status(pipeline: observed.ObservedPipeline) -> PipelineStatus:
    return PipelineStatus(
        phase=pipeline.state.value,
        trial_number=pipeline.trial_number,
        params=dict(pipeline.params),
        search_ended=pipeline.search_ended or None,
        stages=[
            StageRecord(name=s.name, status=s.status, duration_seconds=s.duration_seconds)  # type: ignore[arg-type]
            for s in pipeline.stages
        ],
        attempts=pipeline.attempts,
        final_values=dict(pipeline.values),
        start_time=pipeline.start_time,
        completion_time=pipeline.end_time,
        message=pipeline.message or None,
    )


def observed_pipeline(
    status: PipelineStatus | None, results: Mapping[str, Any] | None = None
) -> observed.ObservedPipeline:
    """The pipeline from its status; ``results`` is its results document where the backend keeps it."""
    if status is None:
        return observed.ObservedPipeline()
    return observed.ObservedPipeline(
        state=observed.PipelineState(status.phase),
        params=dict(status.params),
        trial_number=status.trial_number,
        search_ended=status.search_ended or "",
        stages=tuple(observed.ObservedStage(s.name, s.status, s.duration_seconds) for s in status.stages),
        start_time=status.start_time,
        end_time=status.completion_time,
        message=status.message or "",
        attempts=status.attempts,
        values=dict(status.final_values),
        results=dict(results or {}),
    )


def preflight_status(preflight: observed.ObservedPreflight) -> PreflightStatus | None:
    if preflight.state is observed.PreflightState.NOT_STARTED:
        return None
    return PreflightStatus(
        phase=preflight.state.value,  # type: ignore[arg-type]
        message=preflight.message or None,
        start_time=preflight.start_time,
        completion_time=preflight.end_time,
    )


def observed_preflight(status: PreflightStatus | None) -> observed.ObservedPreflight:
    if status is None:
        return observed.ObservedPreflight()
    return observed.ObservedPreflight(
        state=observed.PreflightState(status.phase),
        message=status.message or "",
        start_time=status.start_time,
        end_time=status.completion_time,
    )
