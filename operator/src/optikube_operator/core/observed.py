"""What a backend has observed about a job: its trials and its final pipeline."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class TrialState(enum.StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    PRUNED = "Pruned"
    FAILED = "Failed"
    TIMED_OUT = "TimedOut"
    # stopped because the search ended (goal reached, pipeline started) before it finished
    STOPPED = "Stopped"

    @property
    def active(self) -> bool:
        return self in (TrialState.PENDING, TrialState.RUNNING)

    @property
    def failure(self) -> bool:
        # A trial that ran past trialTimeout is a failure of the budget, like a crash.
        return self in (TrialState.FAILED, TrialState.TIMED_OUT)


class PipelineState(enum.StrEnum):
    NOT_STARTED = "NotStarted"
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True)
class ObservedTrial:
    """One recorded trial. ``params`` maps dotted spec paths to values."""

    number: int
    params: Mapping[str, Any]
    state: TrialState
    # step (epoch index) -> metric name -> value, as reported by intermediate events
    intermediate: Mapping[int, Mapping[str, float]] = field(default_factory=dict)
    # final metric values (Contract 3 "final" event values)
    values: Mapping[str, float] = field(default_factory=dict)
    start_time: datetime | None = None
    end_time: datetime | None = None
    message: str = ""
    # system attributes the sampler wrote when it suggested this trial (see core.study)
    sampler_attrs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ObservedState:
    trials: tuple[ObservedTrial, ...] = ()
    pipeline: PipelineState = PipelineState.NOT_STARTED
    pipeline_message: str = ""
    start_time: datetime | None = None

    def trial(self, number: int) -> ObservedTrial:
        for trial in self.trials:
            if trial.number == number:
                return trial
        raise KeyError(f"no trial number {number}")

    def count(self, *states: TrialState) -> int:
        return sum(1 for trial in self.trials if trial.state in states)

    @property
    def active_trials(self) -> list[ObservedTrial]:
        return [trial for trial in self.trials if trial.state.active]

    @property
    def next_number(self) -> int:
        # Dense numbering: a restart never reuses or skips a number.
        return max((trial.number for trial in self.trials), default=-1) + 1
