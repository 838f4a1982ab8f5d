"""Launching a job's runs (trials, the pipeline, the preflight) and keeping runs matched to records.

The record always comes first (an OptimizationTrial, the job's status.pipeline or status.preflight),
then the run's Job under its deterministic name: a restart between the two launches it, a restart
after both adopts it (AlreadyExists), so no run is ever launched twice. The run hygiene of
`core.recovery` then keeps the cluster in line with the records: an active record without a Job
gets one, a finished record's Job goes as cleanup.keepTrialPods says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from optikube_operator.api import OptimizationJobSpec
from optikube_operator.core import JobSettings, ObservedTrial, PreflightState, StartTrial
from optikube_operator.core.recovery import launched, needs_launch, pipeline_launched
from optikube_operator.kube.announce import Announcer
from optikube_operator.kube.backend import KubernetesBackend
from optikube_operator.kube.names import PIPELINE, PREFLIGHT, RunRef, trial_run
from optikube_operator.kube.observe import RunObservation, observe_run
from optikube_operator.kube.records import JobRecords
from optikube_operator.kube.runs import RunCache, RunObjects
from optikube_operator.kube.status import ConditionUpdate

# after a final, pruned or failed event the trainer still writes its results and exits
RUN_EXIT_GRACE = timedelta(seconds=30)
# a run this operator launched a moment ago is not launched again before its watch event has had
# time to arrive (the create of a second launch would only find it AlreadyExists)
LAUNCH_SETTLE = timedelta(seconds=30)


@dataclass(frozen=True)
class JobPass:
    """What one reconcile of a job acts with: the job, its records, the spec it runs with, now."""

    body: Mapping[str, Any]
    records: JobRecords
    spec: OptimizationJobSpec
    spec_dict: Mapping[str, Any]
    settings: JobSettings
    now: datetime
    # the conditions this pass reports (a refused spec change, suspension), in each of its writes
    conditions: list[ConditionUpdate] = field(default_factory=list)

    @property
    def trial_timeout(self) -> float | None:
        timeout = self.settings.trial_timeout
        return timeout.total_seconds() if timeout else None


class RunLauncher:
    def __init__(self, backend: KubernetesBackend, runs: RunCache, announce: Announcer) -> None:
        self.backend = backend
        self.runs = runs
        self.announce = announce

    async def start_trials(self, job: JobPass, starts: list[StartTrial]) -> None:
        """The trials of one wave start side by side: the apiserver, not the order, sets the pace."""
        await asyncio.gather(*(self._start_trial(job, start) for start in starts))

    async def _start_trial(self, job: JobPass, start: StartTrial) -> None:
        records = job.records
        before = records.trials.get(start.number)
        trial = await self.backend.create_trial(
            job.body, records, start.number, start.params, start.sampler_attrs
        )
        records.created_at[trial_run(start.number)] = job.now
        await self.announce.trial(job.body, records, before, trial)
        await self.launch_trial(job, trial)

    async def launch_trial(self, job: JobPass, trial: ObservedTrial) -> None:
        records = job.records
        run = trial_run(trial.number)
        records.launched_at[run] = job.now
        created = await self._launch(job, run, trial.params, resume=False, timeout=job.trial_timeout)
        if created:
            await self.backend.write_trial(records, launched(trial, job.now, running=False))

    async def launch_pipeline(self, job: JobPass) -> None:
        records, spec = job.records, job.spec
        pipeline = records.pipeline
        # a retry resumes from the last finished stage, when the artifacts are on a volume
        resume = pipeline.attempts > 0 and spec.artifacts is not None and spec.artifacts.pvc is not None
        records.launched_at[PIPELINE] = job.now
        created = await self._launch(job, PIPELINE, pipeline.params, resume=resume, timeout=None)
        if created:
            records.pipeline = pipeline_launched(pipeline, job.now, running=False)

    async def launch_preflight(self, job: JobPass) -> None:
        """The preflight's Job (its record, status.preflight Running, is already written)."""
        job.records.launched_at[PREFLIGHT] = job.now
        await self._launch(job, PREFLIGHT, {}, resume=False, timeout=None)

    async def _launch(
        self, job: JobPass, run: RunRef, params: Mapping[str, Any], *, resume: bool, timeout: float | None
    ) -> bool:
        """The run's objects created (or adopted); True when its Job is new."""
        created, run_job = await self.backend.launch(
            job.body, job.spec_dict, job.spec, run, params, resume=resume, timeout=timeout
        )
        if run_job is not None:
            self.runs.created(run_job)
        return created

    async def observe(self, job: JobPass, run: RunRef, *, active: bool) -> RunObservation:
        """What the run's Job and pods show. Jobs and Pods come on separate watches (after a restart,
        separate lists): a Job seen finished while no ended rank-0 pod is seen may only mean its pods
        have not arrived yet, so before an active record concludes without the result the pod's
        termination message may carry, its pods are read from the apiserver."""
        namespace, name = job.records.key
        key = (namespace, name, run)
        observation = observe_run(self.runs.get(key))
        if active and observation.finished and not observation.rank0_ended:
            for pod in await self.backend.list_run_pods(namespace, name, run):
                self.runs.update("Pod", "ADDED", pod)
            observation = observe_run(self.runs.get(key))
        return observation

    async def delete_run(self, job: JobPass, run: RunRef) -> None:
        namespace, name = job.records.key
        await self.backend.delete_run(namespace, name, run, job.spec)
        self.runs.deleted((namespace, name, run), job.now.isoformat())

    async def hygiene(self, job: JobPass) -> None:
        """Runs match records: an active record without a Job gets one; a finished record's Job is
        deleted while it still runs, and once done unless cleanup.keepTrialPods keeps its pods."""
        records, now = job.records, job.now
        namespace, name = records.key
        keep = job.spec.cleanup.keep_trial_pods
        runs = self.runs.of_job(namespace, name)
        for number, trial in sorted(records.trials.items()):
            run = trial_run(number)
            observation = _observed(runs.get(run))
            exists = _exists(observation)
            if needs_launch(trial, exists) and _launch_due(records.launched_at.get(run), now):
                await self.launch_trial(job, trial)
            elif not trial.state.active and exists and observation is not None:
                kept = keep == "all" or (keep == "failed" and trial.state.failure)
                if observation.finished and not kept:
                    await self.delete_run(job, run)
                elif not observation.finished and _past_grace(trial.end_time, now):
                    # it reported its end but did not exit: it is stopped
                    await self.delete_run(job, run)
        observation = _observed(runs.get(PIPELINE))
        if (
            records.pipeline.state.active
            and not _exists(observation)
            and _launch_due(records.launched_at.get(PIPELINE), now)
        ):
            await self.launch_pipeline(job)
        await self._preflight_hygiene(job, _observed(runs.get(PREFLIGHT)), keep)

    async def _preflight_hygiene(self, job: JobPass, observation: RunObservation | None, keep: str) -> None:
        """A preflight recorded Running gets its Job (again, after a restart before the create: it
        only reads); an ended one's Job goes, unless kept like a failed or any trial's."""
        records = job.records
        state = records.preflight.state
        exists = _exists(observation)
        if state is PreflightState.RUNNING:
            if not exists and _launch_due(records.launched_at.get(PREFLIGHT), job.now):
                await self.launch_preflight(job)
        elif exists and observation is not None and observation.finished:
            kept = keep == "all" or (keep == "failed" and state is PreflightState.FAILED)
            if not kept:
                await self.delete_run(job, PREFLIGHT)


def _observed(objects: RunObjects | None) -> RunObservation | None:
    return observe_run(objects) if objects is not None else None


def _exists(observation: RunObservation | None) -> bool:
    return observation is not None and observation.exists and not observation.deleting


def _launch_due(launched_at: datetime | None, now: datetime) -> bool:
    return launched_at is None or now - launched_at >= LAUNCH_SETTLE


def _past_grace(ended: datetime | None, now: datetime) -> bool:
    """A run that reported its end gets this long to exit before its pods are deleted."""
    return ended is None or now - ended >= RUN_EXIT_GRACE


__all__ = ["LAUNCH_SETTLE", "RUN_EXIT_GRACE", "JobPass", "RunLauncher"]
