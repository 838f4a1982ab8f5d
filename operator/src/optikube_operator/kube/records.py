"""The records of each job, held in memory and written through to the cluster.

The operator is the only writer of OptimizationTrial status and OptimizationJob status (one replica,
`Recreate`), so after loading them once (a consistent LIST after a start) its memory is the truth,
and every change is written to the cluster before anything that depends on it is done: a restart
reloads exactly what was recorded. A per-job lock serializes reconciles and progress of one job.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from optikube_operator.api.status import OptimizationJobStatus
from optikube_operator.api.trial import OptimizationTrialStatus
from optikube_operator.core import (
    JobSettings,
    ObservedPipeline,
    ObservedPreflight,
    ObservedState,
    ObservedTrial,
)
from optikube_operator.core.records import observed_pipeline, observed_preflight, observed_trial
from optikube_operator.kube.names import RunRef

JobKey = tuple[str, str]  # (namespace, name)


@dataclass
class JobRecords:
    namespace: str
    name: str
    uid: str
    trials: dict[int, ObservedTrial] = field(default_factory=dict)
    pipeline: ObservedPipeline = field(default_factory=ObservedPipeline)
    # kept in the job's status.preflight, written before its Job is created and once it ended
    preflight: ObservedPreflight = field(default_factory=ObservedPreflight)
    start_time: datetime | None = None
    loaded: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # the last status written, as compact JSON (as a dict it is kilobytes of small objects, and
    # each of hundreds of jobs keeps one): what the next status builds on, and what a patch that
    # would change nothing is compared with; its phase apart, for the jobs-by-phase gauge that
    # every event of a job updates
    written_json: str | None = None
    written_phase: str | None = None
    # when each trial's record was created (time-to-running metric)
    created_at: dict[RunRef, datetime] = field(default_factory=dict)
    # when this operator last asked for each run's Job; the watch shows it later
    launched_at: dict[RunRef, datetime] = field(default_factory=dict)
    # the settings of the latest reconcile (the progress endpoint's prune decisions use them)
    settings: JobSettings | None = None
    # the validated spec of the latest generation (reconcile.AcceptedSpec)
    accepted: Any = None
    # trials whose record in memory is ahead of their OptimizationTrial status (progress answered
    # before its write, `progress_writes`), and each trial's latest step in its status
    unwritten: set[int] = field(default_factory=set)
    durable_steps: dict[int, int] = field(default_factory=dict)

    @property
    def key(self) -> JobKey:
        return self.namespace, self.name

    @property
    def written_status(self) -> dict[str, Any] | None:
        return None if self.written_json is None else json.loads(self.written_json)

    def is_written(self, status: Mapping[str, Any]) -> bool:
        return self.written_json == _compact(status)

    def record_written(self, status: Mapping[str, Any]) -> None:
        self.written_json = _compact(status)
        self.written_phase = status.get("phase")

    def trial_written(self, trial: ObservedTrial) -> None:
        """``trial`` is what its OptimizationTrial status now holds."""
        self.trials[trial.number] = trial
        self.unwritten.discard(trial.number)
        if trial.latest_step is not None:
            self.durable_steps[trial.number] = trial.latest_step
        else:
            self.durable_steps.pop(trial.number, None)

    def observed(self) -> ObservedState:
        return ObservedState(
            trials=tuple(self.trials[number] for number in sorted(self.trials)),
            pipeline=self.pipeline,
            start_time=self.start_time,
            preflight=self.preflight,
        )

    def load(self, trial_objects: list[dict[str, Any]], status: OptimizationJobStatus | None) -> None:
        """Take the recorded state from the cluster: the job's OptimizationTrials and its status."""
        self.trials = {}
        self.unwritten = set()
        self.durable_steps = {}
        for obj in trial_objects:
            spec = obj.get("spec") or {}
            if spec.get("stage", "trial") != "trial" or "number" not in spec:
                continue
            raw_status = obj.get("status")
            parsed = (
                OptimizationTrialStatus.model_validate(raw_status, by_alias=True, strict=False)
                if isinstance(raw_status, dict)
                else None
            )
            record = observed_trial(int(spec["number"]), spec.get("params") or {}, parsed)
            self.trial_written(record)
        self.pipeline = observed_pipeline(status.pipeline if status is not None else None)
        self.preflight = observed_preflight(status.preflight if status is not None else None)
        if status is not None and status.start_time is not None:
            self.start_time = status.start_time
        self.loaded = True


class RecordStore:
    def __init__(self) -> None:
        self._jobs: dict[JobKey, JobRecords] = {}

    def of(self, namespace: str, name: str, uid: str) -> JobRecords:
        """The records of a job; a job recreated under the same name (another uid) starts afresh."""
        records = self._jobs.get((namespace, name))
        if records is None or records.uid != uid:
            records = JobRecords(namespace, name, uid)
            self._jobs[(namespace, name)] = records
        return records

    def find(self, namespace: str, name: str) -> JobRecords | None:
        return self._jobs.get((namespace, name))

    def forget(self, namespace: str, name: str) -> None:
        self._jobs.pop((namespace, name), None)

    def __iter__(self) -> Iterator[JobRecords]:
        return iter(list(self._jobs.values()))


def _compact(status: Mapping[str, Any]) -> str:
    return json.dumps(status, separators=(",", ":"), sort_keys=True)
