"""The local run's state: what was recorded about each trial and the pipeline.

It is saved atomically (write a temporary file, then rename) after every change, so that
``optikube run --resume`` continues from exactly what finished, whatever killed the CLI.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from optikube_operator.core import ObservedState, ObservedTrial, PipelineState, TrialState

STATE_FILE = "state.json"
STATE_VERSION = 1


@dataclass
class TrialRecord:
    number: int
    params: dict[str, Any]
    state: str = TrialState.PENDING.value
    intermediate: dict[str, dict[str, float]] = field(default_factory=dict)  # JSON keys are strings
    values: dict[str, float] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    start_time: str | None = None
    end_time: str | None = None
    message: str = ""
    log_tail: str = ""
    sampler_attrs: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    pid: int | None = None

    @property
    def trial_state(self) -> TrialState:
        return TrialState(self.state)

    def observed(self) -> ObservedTrial:
        return ObservedTrial(
            number=self.number,
            params=self.params,
            state=self.trial_state,
            intermediate={int(step): values for step, values in self.intermediate.items()},
            values=self.values,
            start_time=_time(self.start_time),
            end_time=_time(self.end_time),
            message=self.message,
            sampler_attrs=self.sampler_attrs,
        )


@dataclass
class PipelineRecord:
    state: str = PipelineState.NOT_STARTED.value
    params: dict[str, Any] = field(default_factory=dict)
    trial_number: int | None = None
    search_ended: str = ""
    stage: str = ""
    stages: list[dict[str, Any]] = field(default_factory=list)
    start_time: str | None = None
    end_time: str | None = None
    message: str = ""
    log_tail: str = ""
    attempts: int = 0
    pid: int | None = None


@dataclass
class RunState:
    job_name: str
    spec_digest: str
    start_time: str
    trials: dict[int, TrialRecord] = field(default_factory=dict)
    pipeline: PipelineRecord = field(default_factory=PipelineRecord)
    finished: dict[str, Any] = field(default_factory=dict)  # reason, succeeded, message
    interruptions: int = 0

    def observed(self) -> ObservedState:
        return ObservedState(
            trials=tuple(self.trials[number].observed() for number in sorted(self.trials)),
            pipeline=PipelineState(self.pipeline.state),
            pipeline_message=self.pipeline.message,
            start_time=_time(self.start_time),
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["version"] = STATE_VERSION
        data["trials"] = [asdict(self.trials[number]) for number in sorted(self.trials)]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunState:
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"state file version {data.get('version')!r} is not {STATE_VERSION}")
        trials = {int(raw["number"]): TrialRecord(**raw) for raw in data.get("trials", [])}
        return cls(
            job_name=data["job_name"],
            spec_digest=data["spec_digest"],
            start_time=data["start_time"],
            trials=trials,
            pipeline=PipelineRecord(**data.get("pipeline", {})),
            finished=dict(data.get("finished", {})),
            interruptions=int(data.get("interruptions", 0)),
        )

    def save(self, directory: Path) -> None:
        write_json_atomic(directory / STATE_FILE, self.to_json())

    @classmethod
    def load(cls, directory: Path) -> RunState:
        return cls.from_json(json.loads((directory / STATE_FILE).read_text()))


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


def iso(moment: datetime) -> str:
    return moment.isoformat()


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
