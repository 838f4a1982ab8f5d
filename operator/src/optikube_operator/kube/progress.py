"""What the operator does with an authenticated progress message: record it on the run's record (the
OptimizationTrial status, or the job's status.pipeline), reply whether to prune, and reconcile the
job when a run ended. Nothing is recorded for a run that is no longer active.

A trial's intermediate progress is answered from memory and written behind the reply
(`progress_writes`): the reply's `durableStep` is the trial's latest step in its status, and the
trainer sends the later ones again until a reply covers them. A trial's end (final, pruned,
failed) is written before the reply, with every step still waiting.
"""

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
from optikube_operator.kube.records import JobRecords

log = logging.getLogger(__name__)
TERMINAL_PROGRESS = (FinalProgress, PrunedProgress, FailedProgress)


class ProgressHandler:
    def __init__(self, reconciler: Reconciler) -> None:
        self.reconciler = reconciler

    async def __call__(self, run: RunKey, progress: AnyProgress) -> dict[str, Any]:
        records = await self.reconciler.ensure_loaded(run.namespace, run.job)
        if records is None:
            # the token's pod exists and belongs to the job, so the job is not listed yet (an
            # operator just started): retry, rather than drop what the trainer sends
            message = f"OptimizationJob {run.namespace}/{run.job} is not known yet; retry"
            raise ProgressRejectedError(503, message, "unavailable")
        async with records.lock:
            if run.trial is None:
                reply = await self._pipeline(run, records, progress)
            else:
                reply = await self._trial(run, run.trial, records, progress)
        if isinstance(progress, TERMINAL_PROGRESS):
            self.reconciler.request((run.namespace, run.job))
        return reply

    async def _pipeline(self, run: RunKey, records: JobRecords, progress: AnyProgress) -> dict[str, Any]:
        pipeline = records.pipeline
        if not pipeline.state.active:
            raise ProgressRejectedError(409, "the pipeline is not running", "conflict")
        updated = record_pipeline_progress(pipeline, progress, now_utc())
        body = self.reconciler.bodies.get((run.namespace, run.job))
        if updated != pipeline and body is not None:
            await self.reconciler.announce.pipeline(body, pipeline, updated)
            records.pipeline = updated
            # the status (stage, results) is written by the reconcile this asks for
            self.reconciler.request((run.namespace, run.job))
        return {}

    async def _trial(
        self, run: RunKey, number: int, records: JobRecords, progress: AnyProgress
    ) -> dict[str, Any]:
        trial = records.trials.get(number)
        settings = records.settings
        if settings is None:  # loaded, not yet reconciled (an operator just started)
            raise ProgressRejectedError(503, "the job is not reconciled yet; retry", "unavailable")
        if trial is None or not trial.state.active:
            state = "unknown" if trial is None else trial.state.value
            raise ProgressRejectedError(409, f"trial {number} is not running ({state})", "conflict")
        if stale_progress(trial, progress):
            message = f"step {getattr(progress, 'step', '?')} is not after step {trial.latest_step}"
            raise ProgressRejectedError(409, message, "conflict")
        updated = record_trial_progress(trial, progress, settings.primary.metric, now_utc())
        if updated != trial:
            if isinstance(progress, IntermediateProgress):
                records.trials[number] = updated
                records.unwritten.add(number)
                self.reconciler.progress_writes.waiting(records, number)
            else:
                await self.reconciler.backend.write_trial(records, updated)
            body = self.reconciler.bodies.get((run.namespace, run.job))
            if body is not None:
                await self.reconciler.announce.trial(body, records, trial, updated)
        if not isinstance(progress, IntermediateProgress):
            return {}
        reply: dict[str, Any] = {"prune": should_prune(settings, records.observed(), number)}
        durable = records.durable_steps.get(number)
        if durable is not None:
            reply["durableStep"] = durable
        return reply
