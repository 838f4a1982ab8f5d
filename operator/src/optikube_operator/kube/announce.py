"""Telling users what changed: an Event and the matching metric for every transition they care about
(trial created, running, pruned, failed, succeeded...; pipeline stages; the job's end)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from optikube_operator.core import (
    ObservedPipeline,
    ObservedPreflight,
    ObservedTrial,
    PipelineState,
    PreflightState,
    TrialState,
)
from optikube_operator.kube import names
from optikube_operator.kube.k8s_events import K8sEventWriter
from optikube_operator.kube.names import trial_run
from optikube_operator.kube.prometheus import OperatorMetrics
from optikube_operator.kube.records import JobRecords
from optikube_operator.kube.status import Outcome

TRIAL_REASONS = {
    TrialState.RUNNING: "TrialRunning",
    TrialState.SUCCEEDED: "TrialSucceeded",
    TrialState.PRUNED: "TrialPruned",
    TrialState.FAILED: "TrialFailed",
    TrialState.TIMED_OUT: "TrialTimedOut",
    TrialState.STOPPED: "TrialStopped",
    TrialState.SUSPENDED: "TrialSuspended",
    TrialState.PENDING: "TrialCreated",
}


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else max((end - start).total_seconds(), 0.0)


def _values(values: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in sorted(values.items()))


class Announcer:
    def __init__(self, recorder: K8sEventWriter, metrics: OperatorMetrics) -> None:
        self.recorder = recorder
        self.metrics = metrics

    async def job(self, body: Mapping[str, Any], reason: str, message: str, *, warning: bool = False) -> None:
        await self.recorder.post(body, reason, message, warning=warning)

    async def trial(
        self, body: Mapping[str, Any], records: JobRecords, before: ObservedTrial | None, after: ObservedTrial
    ) -> None:
        if before is not None and before.state is after.state:
            return
        run = names.run_name(records.name, trial_run(after.number))
        if after.state is TrialState.RUNNING:
            created = records.created_at.get(trial_run(after.number))
            startup = _seconds(created, after.start_time)
            if startup is not None:
                self.metrics.trial_startup.observe(startup)
        if after.state.finished:
            duration = _seconds(after.start_time, after.end_time)
            if duration is not None:
                self.metrics.trial_duration.labels(state=after.state.value).observe(duration)
        detail = _values(after.values) if after.state is TrialState.SUCCEEDED else after.message
        message = f"trial {after.number} ({run}): {after.state.value}" + (f": {detail}" if detail else "")
        await self.recorder.post(body, TRIAL_REASONS[after.state], message, warning=after.state.failure)

    async def pipeline(
        self, body: Mapping[str, Any], before: ObservedPipeline, after: ObservedPipeline
    ) -> None:
        for stage in after.stages[len(before.stages) :]:
            if stage.status == "completed" and stage.duration_seconds is not None:
                self.metrics.stage_duration.labels(stage=stage.name).observe(stage.duration_seconds)
            reason = {"started": "StageStarted", "completed": "StageCompleted"}.get(
                stage.status, "StageChanged"
            )
            seconds = f" in {stage.duration_seconds:.1f}s" if stage.duration_seconds is not None else ""
            await self.recorder.post(body, reason, f"pipeline stage {stage.name} {stage.status}{seconds}")
        if before.state is after.state:
            return
        if after.state is PipelineState.PENDING:
            chosen = (
                "the spec as written"
                if after.trial_number is None
                else f"trial {after.trial_number}'s params"
            )
            await self.recorder.post(body, "PipelineStarted", f"the final pipeline runs with {chosen}")
        elif after.state is PipelineState.FAILED:
            await self.recorder.post(
                body, "PipelineFailed", after.message or "the pipeline failed", warning=True
            )
        elif after.state is PipelineState.SUCCEEDED:
            await self.recorder.post(
                body, "PipelineSucceeded", _values(after.values) or "the pipeline finished"
            )

    async def preflight(
        self, body: Mapping[str, Any], before: ObservedPreflight, after: ObservedPreflight
    ) -> None:
        if before.state is after.state:
            return
        if after.state is PreflightState.RUNNING:
            message = "the preflight loads the data and builds the models before the first trial"
            await self.recorder.post(body, "PreflightStarted", message)
        elif after.state is PreflightState.PASSED:
            await self.recorder.post(body, "PreflightPassed", "the data loads and the models build")
        elif after.state is PreflightState.FAILED:
            await self.recorder.post(
                body, "PreflightFailed", after.message or "the preflight failed", warning=True
            )

    async def finished(self, body: Mapping[str, Any], outcome: Outcome) -> None:
        reason = "JobSucceeded" if outcome.succeeded else "JobFailed"
        message = outcome.reason + (f": {outcome.message}" if outcome.message else "")
        await self.recorder.post(body, reason, message, warning=not outcome.succeeded)
