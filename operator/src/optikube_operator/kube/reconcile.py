"""Observe -> decide -> act for one OptimizationJob.

1. the spec: validated and checked against the spec the job was accepted with (`acceptance`);
2. observe: the records (loaded once, then kept in memory and written through) and what each run's
   Job and pods show (`observe`);
3. decide: `core.decide`;
4. act: the runs are launched and matched to their records (`launcher`), every record written
   before the run it describes is created;
5. publish: the status (one replace, only when it changed), Events and metrics.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from optikube_operator.api.status import OptimizationJobStatus
from optikube_operator.api.validation import lenient_status
from optikube_operator.core import (
    Finish,
    ObservedPreflight,
    PipelineState,
    PreflightState,
    StartPipeline,
    StartPreflight,
    StartTrial,
    StopPipeline,
    StopTrial,
    decide,
)
from optikube_operator.kube import detached
from optikube_operator.kube.acceptance import InvalidSpec, accepted_spec, dry_run_refusal
from optikube_operator.kube.announce import Announcer
from optikube_operator.kube.backend import KubernetesBackend
from optikube_operator.kube.bodies import as_dict
from optikube_operator.kube.launcher import LAUNCH_SETTLE, RUN_EXIT_GRACE, JobPass, RunLauncher
from optikube_operator.kube.names import PIPELINE, PREFLIGHT, trial_run
from optikube_operator.kube.observe import observe_pipeline, observe_preflight, observe_trial
from optikube_operator.kube.progress_writes import ProgressWrites
from optikube_operator.kube.prometheus import OperatorMetrics
from optikube_operator.kube.publisher import StatusPublisher
from optikube_operator.kube.records import JobKey, JobRecords, RecordStore
from optikube_operator.kube.resources import PREFLIGHT_DEADLINE_SECONDS
from optikube_operator.kube.runs import RunCache
from optikube_operator.kube.status import ConditionUpdate, Outcome, outcome_of
from optikube_operator.kube.wakeups import RETRY_AFTER_ERROR, SafetySweep, Wakeups, next_wakeup

log = logging.getLogger(__name__)
CONCURRENT_RECONCILES = 16
FINISHED_PHASES = ("Succeeded", "Failed")


def now_utc() -> datetime:
    return datetime.now(UTC)


def previous_status(
    body: Mapping[str, Any], records: JobRecords | None = None
) -> OptimizationJobStatus | None:
    """The status to build on: this operator's own last write (newer than a body the watch has not
    caught up with), else the body's."""
    if records is not None and (written := records.written_status) is not None:
        return lenient_status(written)
    return lenient_status(body.get("status"))


class Reconciler:
    def __init__(
        self,
        backend: KubernetesBackend,
        runs: RunCache,
        store: RecordStore,
        metrics: OperatorMetrics,
        announcer: Announcer,
    ) -> None:
        self.backend = backend
        self.runs = runs
        self.store = store
        self.metrics = metrics
        self.announce = announcer
        self.bodies: dict[JobKey, dict[str, Any]] = {}
        self._queued: dict[JobKey, asyncio.Task[None]] = {}
        # reconciles of different jobs run side by side, a bounded number at a time (memory, fairness)
        self._slots = asyncio.Semaphore(CONCURRENT_RECONCILES)
        self._again: set[JobKey] = set()
        self.wakeups = Wakeups(self.request)
        self.sweep = SafetySweep(self.unfinished, self.request)
        self.launcher = RunLauncher(backend, runs, announcer)
        self.publisher = StatusPublisher(backend, metrics, announcer)
        self.progress_writes = ProgressWrites(backend)

    # --- entry points ---------------------------------------------------------------------------

    def remember(self, body: Mapping[str, Any]) -> JobKey:
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        before = self.bodies.get(key)
        if body is before:
            return key
        # once the operator wrote a job's status, its record of that write is the status it builds on
        records = self.store.find(*key)
        written = records is not None and records.uid == meta["uid"] and records.written_json is not None
        self.bodies[key] = as_dict(body, before, status=not written)
        return key

    def job_seen(self, body: Mapping[str, Any]) -> None:
        """A watch event of a job: a pass when the job asks for one. Most events are the echoes of
        the operator's own status writes, which need none (the runs' events and the timers bring
        every other reason for a pass)."""
        meta = body["metadata"]
        before = (self.bodies.get((meta["namespace"], meta["name"])) or {}).get("metadata") or {}
        key = self.remember(body)
        if any(before.get(field) != meta.get(field) for field in ("uid", "generation", "deletionTimestamp")):
            self.request(key)

    def phase(self, key: JobKey) -> str | None:
        """A known job's phase as last written: this operator's write, else the body's."""
        body = self.bodies.get(key)
        if body is None:
            return None
        records = self.store.find(*key)
        if records is not None and records.written_json is not None:
            return records.written_phase
        return (body.get("status") or {}).get("phase")

    def unfinished(self) -> list[JobKey]:
        return [key for key in self.bodies if self.phase(key) not in FINISHED_PHASES]

    def forget(self, namespace: str, name: str) -> None:
        self.bodies.pop((namespace, name), None)
        self.wakeups.cancel((namespace, name))
        self.store.forget(namespace, name)
        self.runs.forget_job(namespace, name)
        self.metrics.forget_job(namespace, name)
        self.progress_writes.forget_job((namespace, name))

    def request(self, key: JobKey) -> None:
        """Reconcile ``key`` soon; bursts of events (many pods changing) coalesce into one pass."""
        if key in self._queued:
            self._again.add(key)
            return
        self._queued[key] = detached.task(self._drain(key))

    async def _drain(self, key: JobKey) -> None:
        try:
            while True:
                self._again.discard(key)
                body = self.bodies.get(key)
                if body is None:
                    return
                try:
                    if isinstance(invalid := await self.reconcile(body), InvalidSpec):
                        log.warning("%s/%s: InvalidSpec: %s", *key, invalid.message)
                except Exception:
                    self.metrics.reconcile_errors.labels(kind="background").inc()
                    log.exception("reconcile of %s/%s failed", *key)
                if key not in self._again:
                    return
        finally:
            self._queued.pop(key, None)

    async def reconcile(self, body: Mapping[str, Any]) -> InvalidSpec | None:
        body = self.bodies[self.remember(body)]
        meta = body["metadata"]
        records = self.store.of(meta["namespace"], meta["name"], meta["uid"])
        key = records.key
        async with self._slots, records.lock:
            self.metrics.reconciles.inc()
            now = now_utc()
            try:
                # progress answered but not yet written goes first: a pass acts on durable records
                await self.progress_writes.flush(records)
                result = await self._reconcile(body, records, now)
            except Exception:
                self.wakeups.arm(key, now + RETRY_AFTER_ERROR, now)
                raise
            if key in self.bodies:
                body = self.bodies[key]
                finished = outcome_of(previous_status(body, records))
                due = next_wakeup(
                    records,
                    now,
                    settle=LAUNCH_SETTLE,
                    exit_grace=RUN_EXIT_GRACE,
                    finished=finished is not None,
                    expires=None if finished is None else _expiry(body, finished),
                )
                self.wakeups.arm(key, due, now)
            return result

    async def ensure_loaded(self, namespace: str, name: str) -> JobRecords | None:
        """The records of a job (loading them if this operator has not yet), for the progress endpoint."""
        body = self.bodies.get((namespace, name))
        if body is None:
            return None
        records = self.store.of(namespace, name, body["metadata"]["uid"])
        if not records.loaded:
            async with records.lock:
                if not records.loaded:
                    await self.backend.load(records, previous_status(body))
        return records

    # --- one pass -------------------------------------------------------------------------------

    async def _reconcile(
        self, body: Mapping[str, Any], records: JobRecords, now: datetime
    ) -> InvalidSpec | None:
        previous = previous_status(body, records)
        finished = outcome_of(previous)
        if finished is not None:
            await self._after_finish(body, previous, finished, now)
            return None
        accepted = accepted_spec(body, records, previous)
        if isinstance(accepted, InvalidSpec):
            await self._fail_invalid(body, previous, accepted, now)
            return accepted
        spec, decision, settings = accepted.spec, accepted.decision, accepted.settings
        if not records.loaded:
            await self.backend.load(records, previous)
            if not records.trials and records.pipeline.state is PipelineState.NOT_STARTED:
                refusal = await dry_run_refusal(self.backend, body, spec, settings)
                if refusal is not None:
                    await self._fail_invalid(body, previous, refusal, now)
                    return refusal
        if records.start_time is None:
            records.start_time = now
        await self.backend.ensure_trainer_account(records.namespace, spec)
        conditions = _pass_conditions(decision.refused_field, settings.suspend)
        written_before = records.written_json
        job = JobPass(body, records, spec, decision.spec, settings, now, conditions)
        await self._observe(job)
        outcome = await self._act(job)
        await self.launcher.hygiene(job)
        if decision.refused_field and (previous is None or not _refused(previous, decision.refused_field)):
            await self.announce.job(
                body,
                "SpecChangeRefused",
                f"{decision.refused_field} cannot change while the job runs",
                warning=True,
            )
        # built on the latest write: a pending write of this pass may have made it newer than `previous`
        latest = previous if records.written_json == written_before else previous_status(body, records)
        await self.publisher.publish(
            body, records, settings, latest, outcome, conditions, decision.spec, spec, now
        )
        return None

    async def _observe(self, job: JobPass) -> None:
        body, records, now = job.body, job.records, job.now
        primary = job.settings.primary.metric
        observe = self.launcher.observe
        for number, trial in sorted(records.trials.items()):
            observation = await observe(job, trial_run(number), active=trial.state.active)
            updated = observe_trial(trial, observation, primary, now)
            if updated != trial:
                await self.backend.write_trial(records, updated)
                await self.announce.trial(body, records, trial, updated)
        observation = await observe(job, PIPELINE, active=records.pipeline.state.active)
        pipeline = observe_pipeline(records.pipeline, observation, now)
        if pipeline != records.pipeline:
            await self.announce.pipeline(body, records.pipeline, pipeline)
            records.pipeline = pipeline
        running = records.preflight.state is PreflightState.RUNNING
        observation = await observe(job, PREFLIGHT, active=running)
        preflight = observe_preflight(records.preflight, observation, PREFLIGHT_DEADLINE_SECONDS, now)
        if preflight != records.preflight:
            # its end is recorded before anything acts on it (trials, its Job's deletion): a
            # restart never runs it again
            await self._record_preflight(job, preflight)

    async def _record_preflight(self, job: JobPass, preflight: ObservedPreflight) -> None:
        """status.preflight written at once (one patch), then announced; memory keeps the record
        the cluster has when the write fails (the next pass tries again)."""
        before, job.records.preflight = job.records.preflight, preflight
        try:
            await self._write_pending(job)
        except BaseException:
            job.records.preflight = before
            raise
        await self.announce.preflight(job.body, before, preflight)

    async def _write_pending(self, job: JobPass) -> None:
        """The status as recorded so far, written before a run it describes is created. It carries
        the pass's conditions, so the pass's closing write has nothing left to add when nothing else
        changed (a job's first pass wrote its status twice: its preflight, then the conditions)."""
        body, records = job.body, job.records
        previous = previous_status(body, records)
        await self.publisher.publish(
            body, records, job.settings, previous, None, job.conditions, job.spec_dict, job.spec, job.now
        )

    async def _act(self, job: JobPass) -> Outcome | None:
        body, records, now = job.body, job.records, job.now
        outcome: Outcome | None = None
        actions = decide(job.settings, records.observed(), now)
        await self.launcher.start_trials(
            job, [action for action in actions if isinstance(action, StartTrial)]
        )
        for action in actions:
            if isinstance(action, StartPreflight):
                await self._record_preflight(job, ObservedPreflight(PreflightState.RUNNING, start_time=now))
                await self.launcher.launch_preflight(job)
            elif isinstance(action, StopTrial):
                trial = records.trials[action.number]
                if trial.state.active:
                    stopped = replace(
                        trial, state=action.reason.trial_state, message=action.reason.message, end_time=now
                    )
                    await self.backend.write_trial(records, stopped)
                    await self.announce.trial(body, records, trial, stopped)
                await self.launcher.delete_run(job, trial_run(action.number))
            elif isinstance(action, StartPipeline):
                previous_pipeline = records.pipeline
                records.pipeline = replace(
                    records.pipeline,
                    state=PipelineState.PENDING,
                    params=dict(action.params),
                    trial_number=action.trial_number,
                    search_ended=action.search_ended.value,
                )
                # recorded before its Job exists: a restart in between launches it, never twice
                await self._write_pending(job)
                records.created_at[PIPELINE] = now
                await self.announce.pipeline(body, previous_pipeline, records.pipeline)
                await self.launcher.launch_pipeline(job)
            elif isinstance(action, StopPipeline):
                records.pipeline = replace(records.pipeline, state=action.pipeline_state)
                await self.launcher.delete_run(job, PIPELINE)
            elif isinstance(action, Finish):
                outcome = Outcome(action.succeeded, action.reason.value, action.message, now)
        return outcome

    # --- publishing ------------------------------------------------------------------------------

    async def _fail_invalid(
        self,
        body: Mapping[str, Any],
        previous: OptimizationJobStatus | None,
        invalid: InvalidSpec,
        now: datetime,
    ) -> None:
        meta = body["metadata"]
        records = self.store.of(meta["namespace"], meta["name"], meta["uid"])
        outcome = Outcome(False, "InvalidSpec", invalid.message, now)
        await self.announce.job(body, "InvalidSpec", invalid.message, warning=True)
        await self.publisher.publish(body, records, None, previous, outcome, [], None, None, now)

    async def _after_finish(
        self, body: Mapping[str, Any], previous: OptimizationJobStatus | None, outcome: Outcome, now: datetime
    ) -> None:
        """A finished job only waits for its cleanup.ttlSecondsAfterFinished."""
        expires = _expiry(body, outcome)
        if expires is not None and now >= expires:
            meta = body["metadata"]
            await self.backend.delete_job(meta["namespace"], meta["name"])


def _expiry(body: Mapping[str, Any], outcome: Outcome) -> datetime | None:
    """When a finished job is deleted: cleanup.ttlSecondsAfterFinished after it finished."""
    ttl = ((body.get("spec") or {}).get("cleanup") or {}).get("ttlSecondsAfterFinished")
    return None if ttl is None else outcome.time + timedelta(seconds=int(ttl))


def _pass_conditions(refused_field: str | None, suspend: bool) -> list[ConditionUpdate]:
    """The conditions a pass writes whatever it does: a refused spec change, suspension."""
    return [
        ConditionUpdate(
            "SpecChangeRefused",
            "True" if refused_field else "False",
            "SpecChangeRefused" if refused_field else "SpecAccepted",
            f"{refused_field} cannot change while the job runs; it keeps its accepted value"
            if refused_field
            else "",
        ),
        ConditionUpdate("Suspended", "True" if suspend else "False", "Suspended" if suspend else "Running"),
    ]


def _refused(previous: OptimizationJobStatus, field: str) -> bool:
    return any(
        c.type == "SpecChangeRefused" and c.status == "True" and field in c.message
        for c in previous.conditions
    )
