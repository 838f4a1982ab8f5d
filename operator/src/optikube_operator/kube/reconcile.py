"""Observe -> decide -> act for one OptimizationJob.

1. the spec: validated (an invalid one fails the job with reason InvalidSpec, naming the field) and
   checked against the spec the job was accepted with (refused changes leave the job untouched);
2. observe: the records (loaded once, then kept in memory and written through) and what each run's
   Job and pods show;
3. decide: `core.decide`;
4. act: `KubernetesBackend`, then the run hygiene of `core.recovery` (an active record without a run
   gets one; a finished one's pods go as cleanup.keepTrialPods says);
5. report: the status (one replace, only when it changed), Events and metrics.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from optikube_operator.api import GROUP, OptimizationJobSpec
from optikube_operator.api.status import OptimizationJobStatus
from optikube_operator.api.validation import FieldError, lenient_status, validate_manifest, validate_spec
from optikube_operator.core import (
    Finish,
    JobSettings,
    ObservedTrial,
    PipelineState,
    StartPipeline,
    StartTrial,
    StopPipeline,
    StopTrial,
    decide,
)
from optikube_operator.core.recovery import launched, needs_launch, pipeline_launched
from optikube_operator.core.summary import summarize
from optikube_operator.kube.announce import Announcer
from optikube_operator.kube.backend import KubernetesBackend
from optikube_operator.kube.client import ApiError
from optikube_operator.kube.observe import observe_pipeline, observe_run, observe_trial
from optikube_operator.kube.prometheus import OperatorMetrics
from optikube_operator.kube.records import JobKey, JobRecords, RecordStore
from optikube_operator.kube.resources import artifacts_location
from optikube_operator.kube.runs import RunCache
from optikube_operator.kube.spec_changes import SpecDecision, accept_spec
from optikube_operator.kube.status import ConditionUpdate, Outcome, build_status, outcome_of
from optikube_operator.kube.wakeups import RETRY_AFTER_ERROR, Wakeups, next_wakeup

log = logging.getLogger(__name__)
# after a final, pruned or failed event the trainer still writes its results and exits
RUN_EXIT_GRACE = timedelta(seconds=30)
LAUNCH_SETTLE = timedelta(seconds=30)
CONCURRENT_RECONCILES = 16


def now_utc() -> datetime:
    return datetime.now(UTC)


def as_dict(body: Mapping[str, Any]) -> dict[str, Any]:
    """A plain, private copy of an OptimizationJob kopf hands over (its Body is a read-only view),
    without what the operator never reads (managedFields, kopf's own annotations)."""
    plain = copy.deepcopy(
        {key: body[key] for key in body if key in ("apiVersion", "kind", "metadata", "spec", "status")}
    )
    meta = plain.get("metadata") or {}
    meta.pop("managedFields", None)
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith(f"{GROUP}/")}
    meta["annotations"] = annotations
    return plain


@dataclass(frozen=True)
class AcceptedSpec:
    """What a generation of the spec runs with (cached on the job's records)."""

    generation: int | None
    spec: OptimizationJobSpec
    decision: SpecDecision
    settings: JobSettings


@dataclass(frozen=True)
class InvalidSpec:
    """The job's spec passed the CRD but not the typed model: the job failed, naming the field."""

    errors: tuple[FieldError, ...]

    @property
    def message(self) -> str:
        return "; ".join(str(error) for error in self.errors)


def previous_status(
    body: Mapping[str, Any], records: JobRecords | None = None
) -> OptimizationJobStatus | None:
    """The status to build on: this operator's own last write (newer than a body the watch has not
    caught up with), else the body's."""
    if records is not None and records.written_status is not None:
        return lenient_status(records.written_status)
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

    # --- entry points ---------------------------------------------------------------------------

    def remember(self, body: Mapping[str, Any]) -> JobKey:
        plain = as_dict(body)
        meta = plain["metadata"]
        key = (meta["namespace"], meta["name"])
        self.bodies[key] = plain
        return key

    def forget(self, namespace: str, name: str) -> None:
        self.bodies.pop((namespace, name), None)
        self.wakeups.cancel((namespace, name))
        self.store.forget(namespace, name)
        self.runs.forget_job(namespace, name)
        self.metrics.forget_job(namespace, name)

    def request(self, key: JobKey) -> None:
        """Reconcile ``key`` soon; bursts of events (many pods changing) coalesce into one pass."""
        if key in self._queued:
            self._again.add(key)
            return
        self._queued[key] = asyncio.get_running_loop().create_task(self._drain(key))

    async def _drain(self, key: JobKey) -> None:
        try:
            while True:
                self._again.discard(key)
                body = self.bodies.get(key)
                if body is None:
                    return
                try:
                    await self.reconcile(body)
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
                result = await self._reconcile(body, records, now)
            except Exception:
                self.wakeups.arm(key, now + RETRY_AFTER_ERROR, now)
                raise
            if key in self.bodies:
                finished = outcome_of(previous_status(self.bodies[key], records)) is not None
                due = next_wakeup(
                    records, now, settle=LAUNCH_SETTLE, exit_grace=RUN_EXIT_GRACE, finished=finished
                )
                self.wakeups.arm(key, due, now)
            return result

    async def ensure_loaded(self, namespace: str, name: str) -> JobRecords | None:
        """The records of a job (loading them if this operator has not yet), for the report endpoint."""
        body = self.bodies.get((namespace, name))
        if body is None:
            return None
        records = self.store.of(namespace, name, body["metadata"]["uid"])
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
        accepted = self._accepted_spec(body, records, previous)
        if isinstance(accepted, InvalidSpec):
            await self._fail_invalid(body, previous, accepted, now)
            return accepted
        spec, decision, settings = accepted.spec, accepted.decision, accepted.settings
        if not records.loaded:
            await self.backend.load(records, previous)
            if not records.trials and records.pipeline.state is PipelineState.NOT_STARTED:
                refusal = await self._dry_run(body, spec, settings)
                if refusal is not None:
                    await self._fail_invalid(body, previous, refusal, now)
                    return refusal
        if records.start_time is None:
            records.start_time = now
        await self.backend.ensure_trainer_account(records.namespace, spec)
        await self._observe(body, records, settings, now)
        outcome = await self._act(body, records, spec, decision.spec, settings, now)
        await self._hygiene(body, records, spec, decision.spec, settings, now)
        conditions = [
            ConditionUpdate(
                "SpecChangeRefused",
                "True" if decision.refused_field else "False",
                "SpecChangeRefused" if decision.refused_field else "SpecAccepted",
                f"{decision.refused_field} cannot change while the job runs; it keeps its accepted value"
                if decision.refused_field
                else "",
            ),
            ConditionUpdate(
                "Suspended",
                "True" if settings.suspend else "False",
                "Suspended" if settings.suspend else "Running",
            ),
        ]
        if decision.refused_field and (previous is None or not _refused(previous, decision.refused_field)):
            await self.announce.job(
                body,
                "SpecChangeRefused",
                f"{decision.refused_field} cannot change while the job runs",
                warning=True,
            )
        await self._write_status(
            body, records, settings, previous, outcome, conditions, decision.spec, spec, now
        )
        return None

    def _accepted_spec(
        self, body: Mapping[str, Any], records: JobRecords, previous: OptimizationJobStatus | None
    ) -> AcceptedSpec | InvalidSpec:
        """The spec to run with, validated; cached per generation (validating costs more than the
        rest of a reconcile, and only a new generation can change it)."""
        generation = body["metadata"].get("generation")
        cached = records.accepted
        if cached is not None and cached.generation == generation:
            return cached
        errors = validate_manifest(body)
        if errors:
            return InvalidSpec(tuple(errors))
        current = OptimizationJobSpec.model_validate(body["spec"], by_alias=True, by_name=False).to_dict()
        decision = accept_spec(current, _accepted(previous))
        spec, problems = validate_spec(decision.spec)
        if spec is None:
            return InvalidSpec(tuple(problems))
        records.accepted = AcceptedSpec(generation, spec, decision, JobSettings.from_spec(spec, records.name))
        records.settings = records.accepted.settings
        return records.accepted

    async def _dry_run(
        self, body: Mapping[str, Any], spec: OptimizationJobSpec, settings: JobSettings
    ) -> InvalidSpec | None:
        """What the apiserver would refuse in the Jobs derived from the spec fails the job up front."""
        timeout = settings.trial_timeout.total_seconds() if settings.trial_timeout else None
        try:
            await self.backend.dry_run(body, spec, timeout)
        except ApiError as error:
            if error.status not in (400, 422):
                raise
            causes = error.details.get("causes") or []
            message = (
                "; ".join(f"{c.get('field', '')}: {c.get('message', '')}" for c in causes) or error.message
            )
            return InvalidSpec(
                (FieldError("spec.resources", f"the apiserver refuses the trial Job: {message}"),)
            )
        return None

    async def _observe(
        self, body: Mapping[str, Any], records: JobRecords, settings: JobSettings, now: datetime
    ) -> None:
        namespace, name = records.key
        primary = settings.primary.metric
        for number, trial in sorted(records.trials.items()):
            observation = observe_run(self.runs.get((namespace, name, number)))
            updated = observe_trial(trial, observation, primary, now)
            if updated != trial:
                await self.backend.write_trial(records, updated)
                await self.announce.trial(body, records, trial, updated)
        observation = observe_run(self.runs.get((namespace, name, None)))
        pipeline = observe_pipeline(records.pipeline, observation, now)
        if pipeline != records.pipeline:
            await self.announce.pipeline(body, records.pipeline, pipeline)
            records.pipeline = pipeline

    async def _act(
        self,
        body: Mapping[str, Any],
        records: JobRecords,
        spec: OptimizationJobSpec,
        spec_dict: Mapping[str, Any],
        settings: JobSettings,
        now: datetime,
    ) -> Outcome | None:
        namespace, name = records.key
        timeout = settings.trial_timeout.total_seconds() if settings.trial_timeout else None
        outcome: Outcome | None = None
        actions = decide(settings, records.observed(), now)
        # the trials of one wave start side by side: the apiserver, not the order, sets the pace
        starts = [action for action in actions if isinstance(action, StartTrial)]
        await asyncio.gather(
            *(self._start_trial(body, records, spec, spec_dict, start, timeout, now) for start in starts)
        )
        for action in actions:
            if isinstance(action, StopTrial):
                trial = records.trials[action.number]
                if trial.state.active:
                    stopped = replace(
                        trial, state=action.reason.trial_state, message=action.reason.message, end_time=now
                    )
                    await self.backend.write_trial(records, stopped)
                    await self.announce.trial(body, records, trial, stopped)
                await self.backend.delete_run(namespace, name, action.number)
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
                await self._write_status(
                    body, records, settings, previous_status(body, records), None, [], spec_dict, spec, now
                )
                records.created_at[None] = now
                await self.announce.pipeline(body, previous_pipeline, records.pipeline)
                await self._launch_pipeline(body, records, spec, spec_dict, now)
            elif isinstance(action, StopPipeline):
                records.pipeline = replace(records.pipeline, state=action.pipeline_state)
                await self.backend.delete_run(namespace, name, None)
            elif isinstance(action, Finish):
                outcome = Outcome(action.succeeded, action.reason.value, action.message, now)
        return outcome

    async def _start_trial(
        self,
        body: Mapping[str, Any],
        records: JobRecords,
        spec: OptimizationJobSpec,
        spec_dict: Mapping[str, Any],
        start: StartTrial,
        timeout: float | None,
        now: datetime,
    ) -> None:
        before = records.trials.get(start.number)
        trial = await self.backend.create_trial(
            body, records, start.number, start.params, start.sampler_attrs
        )
        records.created_at[start.number] = now
        await self.announce.trial(body, records, before, trial)
        await self._launch_trial(body, records, spec, spec_dict, trial, timeout, now)

    async def _launch_trial(
        self,
        body: Mapping[str, Any],
        records: JobRecords,
        spec: OptimizationJobSpec,
        spec_dict: Mapping[str, Any],
        trial: ObservedTrial,
        timeout: float | None,
        now: datetime,
    ) -> None:
        records.launched_at[trial.number] = now
        created = await self.backend.launch(
            body, spec_dict, spec, trial.number, trial.params, resume=False, timeout=timeout
        )
        if created:
            await self.backend.write_trial(records, launched(trial, now, running=False))

    async def _launch_pipeline(
        self,
        body: Mapping[str, Any],
        records: JobRecords,
        spec: OptimizationJobSpec,
        spec_dict: Mapping[str, Any],
        now: datetime,
    ) -> None:
        pipeline = records.pipeline
        # a retry resumes from the last finished stage, when the artifacts are on a volume
        resume = pipeline.attempts > 0 and spec.artifacts is not None and spec.artifacts.pvc is not None
        records.launched_at[None] = now
        created = await self.backend.launch(
            body, spec_dict, spec, None, pipeline.params, resume=resume, timeout=None
        )
        if created:
            records.pipeline = pipeline_launched(pipeline, now, running=False)

    async def _hygiene(
        self,
        body: Mapping[str, Any],
        records: JobRecords,
        spec: OptimizationJobSpec,
        spec_dict: Mapping[str, Any],
        settings: JobSettings,
        now: datetime,
    ) -> None:
        """Runs match records: an active record without a Job gets one; a finished record's Job is
        deleted while it still runs, and once done unless cleanup.keepTrialPods keeps its pods."""
        namespace, name = records.key
        timeout = settings.trial_timeout.total_seconds() if settings.trial_timeout else None
        keep = spec.cleanup.keep_trial_pods
        runs = self.runs.of_job(namespace, name)
        for number, trial in sorted(records.trials.items()):
            objects = runs.get(number)
            observation = observe_run(objects) if objects is not None else None
            exists = observation is not None and observation.exists and not observation.deleting
            if needs_launch(trial, exists) and _launch_due(records.launched_at.get(number), now):
                await self._launch_trial(body, records, spec, spec_dict, trial, timeout, now)
            elif not trial.state.active and exists and observation is not None:
                kept = keep == "all" or (keep == "failed" and trial.state.failure)
                if observation.finished and not kept:
                    await self.backend.delete_run(namespace, name, number)
                elif not observation.finished and _past_grace(trial.end_time, now):
                    # it reported its end but did not exit: it is stopped
                    await self.backend.delete_run(namespace, name, number)
        pipeline = records.pipeline
        objects = runs.get(None)
        observation = observe_run(objects) if objects is not None else None
        exists = observation is not None and observation.exists and not observation.deleting
        if pipeline.state.active and not exists and _launch_due(records.launched_at.get(None), now):
            await self._launch_pipeline(body, records, spec, spec_dict, now)

    # --- reporting ------------------------------------------------------------------------------

    async def _write_status(
        self,
        body: Mapping[str, Any],
        records: JobRecords,
        settings: JobSettings | None,
        previous: OptimizationJobStatus | None,
        outcome: Outcome | None,
        conditions: list[ConditionUpdate],
        spec_dict: Mapping[str, Any] | None,
        spec: OptimizationJobSpec | None,
        now: datetime,
    ) -> None:
        observed = records.observed()
        summary = summarize(settings, observed) if settings is not None else None
        if outcome is not None:
            kind = "Succeeded" if outcome.succeeded else "Failed"
            conditions = [*conditions, ConditionUpdate(kind, "True", outcome.reason, outcome.message)]
        status = build_status(
            settings=settings,
            observed=observed,
            summary=summary,
            outcome=outcome,
            previous=previous,
            conditions=conditions,
            generation=body["metadata"].get("generation"),
            accepted_spec=spec_dict,
            artifacts_location=artifacts_location(spec, records.name) if spec is not None else None,
            job_name=records.name,
            now=now,
        )
        if status != records.written_status:
            await self.backend.write_job_status(body, status)
            records.written_status = status
            if outcome is not None:
                await self.announce.finished(body, outcome)
        if summary is not None and settings is not None:
            best = summary.best
            value = best.values.get(settings.primary.metric) if best is not None else None
            self.metrics.publish_job(
                records.namespace,
                records.name,
                summary.counts,
                len(summary.running),
                (settings.primary.metric, value) if value is not None else None,
                observed.pipeline.results,
            )

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
        await self._write_status(body, records, None, previous, outcome, [], None, None, now)

    async def _after_finish(
        self, body: Mapping[str, Any], previous: OptimizationJobStatus | None, outcome: Outcome, now: datetime
    ) -> None:
        """A finished job only waits for its cleanup.ttlSecondsAfterFinished."""
        spec = body.get("spec") or {}
        ttl = (spec.get("cleanup") or {}).get("ttlSecondsAfterFinished")
        if ttl is not None and now >= outcome.time + timedelta(seconds=int(ttl)):
            meta = body["metadata"]
            await self.backend.delete_job(meta["namespace"], meta["name"])


def _launch_due(launched: datetime | None, now: datetime) -> bool:
    """A run this operator launched a moment ago is not launched again before its watch event has
    had time to arrive (the create of a second launch would only find it AlreadyExists)."""
    return launched is None or now - launched >= LAUNCH_SETTLE


def _past_grace(ended: datetime | None, now: datetime) -> bool:
    """A run that reported its own end gets this long to exit before its pods are deleted."""
    return ended is None or now - ended >= RUN_EXIT_GRACE


def _accepted(previous: OptimizationJobStatus | None) -> dict[str, Any] | None:
    return (
        dict(previous.accepted_spec) if previous is not None and previous.accepted_spec is not None else None
    )


def _refused(previous: OptimizationJobStatus, field: str) -> bool:
    return any(
        c.type == "SpecChangeRefused" and c.status == "True" and field in c.message
        for c in previous.conditions
    )
