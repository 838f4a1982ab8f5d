"""The local run's state file: the trial and pipeline records, as the cluster would keep them.

Each trial is stored as an OptimizationTrial status and the pipeline as `status.pipeline` (the
core's durable records, `optikube_operator.core.records`), plus what only local mode keeps: the
trial's results document, its log tail and its process id. The file is saved atomically (write a
temporary file, fsync, rename, fsync the directory) after every change, so that ``optikube run
--resume`` continues from exactly what finished, whatever killed the CLI.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from optikube_operator.api.status import PipelineStatus, PreflightStatus
from optikube_operator.api.trial import OptimizationTrialStatus
from optikube_operator.core import ObservedPipeline, ObservedPreflight, ObservedState, ObservedTrial
from optikube_operator.core.records import (
    observed_pipeline,
    observed_preflight,
    observed_trial,
    pipeline_status,
    preflight_status,
    trial_status,
)

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
    preflight: ObservedPreflight = field(default_factory=ObservedPreflight)

    def observed(self) -> ObservedState:
        return ObservedState(
            trials=tuple(self.trials[number].record for number in sorted(self.trials)),
            pipeline=self.pipeline,
            start_time=self.start_time,
            preflight=self.preflight,
        )

    def adopt(self, observed: ObservedState) -> None:
        """Take over the records of ``observed`` (after a pure transformation of them)."""
        for trial in observed.trials:
            self.trials[trial.number].record = trial
        self.pipeline = observed.pipeline
        self.preflight = observed.preflight

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
            "preflight": _dumped(preflight_status(self.preflight)),
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
        raw_preflight = data.get("preflight")
        preflight = (
            PreflightStatus.model_validate(raw_preflight, by_alias=True, strict=False)
            if isinstance(raw_preflight, dict)
            else None  # a state file from before preflights, or one whose preflight has not started
        )
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
            preflight=observed_preflight(preflight),
        )

    def save(self, directory: Path) -> None:
        write_json_atomic(directory / STATE_FILE, self.to_json())

    @classmethod
    def load(cls, directory: Path, pipeline_results: dict[str, Any] | None = None) -> RunState:
        return cls.from_json(json.loads((directory / STATE_FILE).read_text()), pipeline_results)


def _dumped(status: PreflightStatus | None) -> dict[str, Any] | None:
    return None if status is None else status.model_dump(mode="json", by_alias=True, exclude_none=True)


TEMPORARY_SUFFIX = ".tmp"


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a power cut, not only a kill, keeps the new file)."""
    try:
        handle = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass  # some file systems cannot sync a directory; the rename itself is still atomic
    finally:
        os.close(handle)


def replace_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` through a temporary sibling renamed over it: a reader (or a kill) sees the old
    file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
    os.close(handle)
    temporary = Path(name)
    try:
        write(temporary)
        with temporary.open("rb+") as stream:
            os.fsync(stream.fileno())
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def write_json_atomic(path: Path, data: Any) -> None:
    def write(temporary: Path) -> None:
        temporary.write_text(json.dumps(data, indent=1, sort_keys=True, default=str))

    replace_atomically(path, write)


def read_json_object(path: Path) -> dict[str, Any] | None:
    """A JSON object written by a run (results, outcome); None when missing, torn or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def append_line(path: Path, entry: Mapping[str, Any]) -> None:
    """Append one JSON line with a single write to an O_APPEND descriptor (a kill cannot interleave
    it with another write; a torn tail, which only a kill inside this write leaves, is repaired by
    `repair_log` on resume)."""
    line = (json.dumps(entry, default=str) + "\n").encode()
    handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(handle, line)
    finally:
        os.close(handle)


def repair_log(path: Path) -> None:
    """Drop a last line that a kill cut short, so that every line of the log is whole JSON."""
    try:
        data = path.read_bytes()
    except OSError:
        return
    if not data or data.endswith(b"\n"):
        return
    with path.open("rb+") as stream:
        stream.truncate(data.rfind(b"\n") + 1)


def remove_temporaries(directory: Path) -> None:
    """Temporary files of writes a kill interrupted (never renamed into place, so never read)."""
    for temporary in directory.rglob(f".*{TEMPORARY_SUFFIX}"):
        if temporary.is_file():
            temporary.unlink(missing_ok=True)
