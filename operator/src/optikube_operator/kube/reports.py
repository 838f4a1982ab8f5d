"""What the operator does with an authenticated report: record it on the run's record (the
OptimizationTrial status, or the job's status.pipeline), reply whether to prune, and reconcile the
job when a run ended. Nothing is recorded for a run that is no longer active."""

from __future__ import annotations

import logging
from typing import Any

from optikube_operator.api.events import AnyEvent, FailedEvent, FinalEvent, IntermediateEvent, PrunedEvent
from optikube_operator.core import should_prune
from optikube_operator.core.recording import record_pipeline_event, record_trial_event, stale_report
from optikube_operator.endpoint import EventRejectedError, RunKey
from optikube_operator.kube.reconcile import Reconciler, now_utc

log = logging.getLogger(__name__)
TERMINAL_EVENTS = (FinalEvent, PrunedEvent, FailedEvent)


class ReportHandler:
    def __init__(self, reconciler: Reconciler) -> None:
        self.reconciler = reconciler

    async def __call__(self, run: RunKey, event: AnyEvent) -> dict[str, Any]:
        records = await self.reconciler.ensure_loaded(run.namespace, run.job)
        if records is None:
            raise EventRejectedError(409, f"no OptimizationJob {run.namespace}/{run.job}", "conflict")
        reply: dict[str, Any] = {}
        async with records.lock:
            now = now_utc()
            settings = records.settings
            if run.trial is None:
                pipeline = records.pipeline
                if not pipeline.state.active:
                    raise EventRejectedError(409, "the pipeline is not running", "conflict")
                updated = record_pipeline_event(pipeline, event, now)
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
                    raise EventRejectedError(409, f"trial {run.trial} is not running ({state})", "conflict")
                if stale_report(trial, event):
                    message = f"step {getattr(event, 'step', '?')} is not after step {trial.latest_step}"
                    raise EventRejectedError(409, message, "conflict")
                updated_trial = record_trial_event(trial, event, settings.primary.metric, now)
                if updated_trial != trial:
                    await self.reconciler.backend.write_trial(records, updated_trial)
                    body = self.reconciler.bodies.get((run.namespace, run.job))
                    if body is not None:
                        await self.reconciler.announce.trial(body, records, trial, updated_trial)
                if isinstance(event, IntermediateEvent):
                    reply = {"prune": should_prune(settings, records.observed(), run.trial)}
        if isinstance(event, TERMINAL_EVENTS):
            self.reconciler.request((run.namespace, run.job))
        return reply
