"""The local run's state file: the trial and pipeline records, as the cluster would keep them.

Each trial is stored as an OptimizationTrial status and the pipeline as `status.pipeline` (the
core's durable records, `optikube_operator.core.records`), plus what only local mode keeps: the
trial's results document, its log tail and its process id. The file is saved atomically (write a
temporary file, then rename) after every change, so that ``optikube run --resume`` continues from
exactly what finished, whatever killed the CLI.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from optikube_operator.api.status import PipelineStatus
from optikube_operator.api.trial import OptimizationTrialStatus
from optikube_operator.core import ObservedPipeline, ObservedState, ObservedTrial
from optikube_operator.core.records import observed_pipeline, observed_trial, pipeline_status, trial_status

STATE_FILE = "state.json"
STATE_VERSION = 2


@dataclass
class LocalTrial:
    record: ObservedTrial
    results: dict[str, Any] = field(default_factory=dict)
    log_tail: str = ""
    pid: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.record.number,
            "params": dict(self.record.params),
            "status": trial_status(self.record).model_dump(mode="json", by_alias=True, exclude_none=True),
            "results": self.results,
            "logTail": self.log_tail,
            "pid": self.pid,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LocalTrial:
        status = OptimizationTrialStatus.model_validate(data["status"], by_alias=True, strict=False)
        return cls(
            record=observed_trial(int(data["number"]), data.get("params") or {}, status),
            results=dict(data.get("results") or {}),
            log_tail=str(data.get("logTail") or ""),
            pid=data.get("pid"),
        )


@dataclass
class RunState:
    job_name: str
    spec_digest: str
    start_time: datetime
    trials: dict[int, LocalTrial] = field(default_factory=dict)
    pipeline: ObservedPipeline = field(default_factory=ObservedPipeline)
    pipeline_log_tail: str = ""
    pipeline_pid: int | None = None
    finished: dict[str, Any] = field(default_factory=dict)  # reason, succeeded, message, time
    interruptions: int = 0

    def observed(self) -> ObservedState:
        return ObservedState(
            trials=tuple(self.trials[number].record for number in sorted(self.trials)),
            pipeline=self.pipeline,
            start_time=self.start_time,
        )

    def adopt(self, observed: ObservedState) -> None:
        """Take over the records of ``observed`` (after a pure transformation of them)."""
        for trial in observed.trials:
            self.trials[trial.number].record = trial
        self.pipeline = observed.pipeline

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "jobName": self.job_name,
            "specDigest": self.spec_digest,
            "startTime": self.start_time.isoformat(),
            "trials": [self.trials[number].to_json() for number in sorted(self.trials)],
            "pipeline": pipeline_status(self.pipeline).model_dump(
                mode="json", by_alias=True, exclude_none=True
            ),
            "pipelineLogTail": self.pipeline_log_tail,
            "pipelinePid": self.pipeline_pid,
            "finished": self.finished,
            "interruptions": self.interruptions,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], pipeline_results: dict[str, Any] | None = None) -> RunState:
        if data.get("version") != STATE_VERSION:
            raise ValueError(
                f"state file version {data.get('version')!r} is not {STATE_VERSION}: this run was made by"
                " another optikube version; start it again with a new --output"
            )
        pipeline = PipelineStatus.model_validate(data.get("pipeline") or {}, by_alias=True, strict=False)
        trials = [LocalTrial.from_json(raw) for raw in data.get("trials", [])]
        return cls(
            job_name=data["jobName"],
            spec_digest=data["specDigest"],
            start_time=datetime.fromisoformat(data["startTime"]),
            trials={trial.record.number: trial for trial in trials},
            pipeline=observed_pipeline(pipeline, pipeline_results),
            pipeline_log_tail=str(data.get("pipelineLogTail") or ""),
            pipeline_pid=data.get("pipelinePid"),
            finished=dict(data.get("finished") or {}),
            interruptions=int(data.get("interruptions", 0)),
        )

    def save(self, directory: Path) -> None:
        write_json_atomic(directory / STATE_FILE, self.to_json())

    @classmethod
    def load(cls, directory: Path, pipeline_results: dict[str, Any] | None = None) -> RunState:
        return cls.from_json(json.loads((directory / STATE_FILE).read_text()), pipeline_results)


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(data, stream, indent=1, sort_keys=True, default=str)
            stream.flush()
            os.fsync(stream.fileno())
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
