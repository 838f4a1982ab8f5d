"""What the operator does with an authenticated report: record it on the run's record (the
OptimizationTrial status, or the job's status.pipeline), reply whether to prune, and reconcile the
job when a run ended. Nothing is recorded for a run that is no longer active."""

from __future__ import annotations

import logging
from typing import Any

from optikube_operator.api.progress import (
    AnyProgress,
    FailedProgress,
    FinalProgress,
    IntermediateProgress,
    PrunedProgress,
)
from optikube_operator.core import should_prune
from optikube_operator.core.recording import record_pipeline_progress, record_trial_progress, stale_progress
from optikube_operator.endpoint import ProgressRejectedError, RunKey
from optikube_operator.kube.reconcile import Reconciler, now_utc

log = logging.getLogger(__name__)
TERMINAL_PROGRESS = (FinalProgress, PrunedProgress, FailedProgress)


class ProgressHandler:
    def __init__(self, reconciler: Reconciler) -> None:
        self.reconciler = reconciler

    async def __call__(self, run: RunKey, progress: AnyProgress) -> dict[str, Any]:
        records = await self.reconciler.ensure_loaded(run.namespace, run.job)
        if records is None:
            raise ProgressRejectedError(409, f"no OptimizationJob {run.namespace}/{run.job}", "conflict")
        reply: dict[str, Any] = {}
        async with records.lock:
            now = now_utc()
            settings = records.settings
            if run.trial is None:
                pipeline = records.pipeline
                if not pipeline.state.active:
                    raise ProgressRejectedError(409, "the pipeline is not running", "conflict")
                updated = record_pipeline_progress(pipeline, progress, now)
                body = self.reconciler.bodies.get((run.namespace, run.job))
                if updated != pipeline and body is not None:
                    await self.reconciler.announce.pipeline(body, pipeline, updated)
                    records.pipeline = updated
                    # the status (stage, results) is written by the reconcile this asks for
                    self.reconciler.request((run.namespace, run.job))
            else:
                trial = records.trials.get(run.trial)
                if trial is None or not trial.state.active or settings is None:
                    state = "unknown" if trial is None else trial.state.value
                    raise ProgressRejectedError(
                        409, f"trial {run.trial} is not running ({state})", "conflict"
                    )
                if stale_progress(trial, progress):
                    message = f"step {getattr(progress, 'step', '?')} is not after step {trial.latest_step}"
                    raise ProgressRejectedError(409, message, "conflict")
                updated_trial = record_trial_progress(trial, progress, settings.primary.metric, now)
                if updated_trial != trial:
                    await self.reconciler.backend.write_trial(records, updated_trial)
                    body = self.reconciler.bodies.get((run.namespace, run.job))
                    if body is not None:
                        await self.reconciler.announce.trial(body, records, trial, updated_trial)
                if isinstance(progress, IntermediateProgress):
                    reply = {"prune": should_prune(settings, records.observed(), run.trial)}
        if isinstance(progress, TERMINAL_PROGRESS):
            self.reconciler.request((run.namespace, run.job))
        return reply
