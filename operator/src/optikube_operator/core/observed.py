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
    # stopped by spec.suspend; it runs again, with the same number and params, on resume
    SUSPENDED = "Suspended"

    @property
    def active(self) -> bool:
        return self in (TrialState.PENDING, TrialState.RUNNING)

    @property
    def failure(self) -> bool:
        # A trial that ran past trialTimeout is a failure of the budget, like a crash.
        return self in (TrialState.FAILED, TrialState.TIMED_OUT)

    @property
    def finished(self) -> bool:
        return not self.active and self is not TrialState.SUSPENDED


class PipelineState(enum.StrEnum):
    NOT_STARTED = "NotStarted"
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SUSPENDED = "Suspended"

    @property
    def active(self) -> bool:
        return self in (PipelineState.PENDING, PipelineState.RUNNING)


class PreflightState(enum.StrEnum):
    NOT_STARTED = "NotStarted"
    RUNNING = "Running"
    PASSED = "Passed"
    FAILED = "Failed"


@dataclass(frozen=True)
class ObservedPreflight:
    """The job's preflight: its data loaded and its models built once, before the first trial."""

    state: PreflightState = PreflightState.NOT_STARTED
    message: str = ""
    start_time: datetime | None = None
    end_time: datetime | None = None


@dataclass(frozen=True)
class ObservedTrial:
    """One recorded trial. ``params`` maps dotted spec paths to values."""

    number: int
    params: Mapping[str, Any]
    state: TrialState
    # step -> the primary objective's value, as reported by intermediate events (for the pruner)
    intermediate: Mapping[int, float] = field(default_factory=dict)
    # every value of the latest intermediate event, and its step
    latest_values: Mapping[str, float] = field(default_factory=dict)
    latest_step: int | None = None
    # final metric values (Contract 3 "final" event values)
    values: Mapping[str, float] = field(default_factory=dict)
    start_time: datetime | None = None
    end_time: datetime | None = None
    message: str = ""
    # system attributes the sampler wrote when it suggested this trial (see core.study)
    sampler_attrs: Mapping[str, Any] = field(default_factory=dict)
    attempts: int = 0


@dataclass(frozen=True)
class ObservedStage:
    """A pipeline stage as its events told it."""

    name: str
    status: str  # started | completed | retried | skipped
    duration_seconds: float | None = None


@dataclass(frozen=True)
class ObservedPipeline:
    state: PipelineState = PipelineState.NOT_STARTED
    params: Mapping[str, Any] = field(default_factory=dict)
    # the trial whose params were chosen (None without a search) and why the search ended
    trial_number: int | None = None
    search_ended: str = ""
    stages: tuple[ObservedStage, ...] = ()
    start_time: datetime | None = None
    end_time: datetime | None = None
    message: str = ""
    attempts: int = 0
    # the final event's values and results document (Contract 4)
    values: Mapping[str, float] = field(default_factory=dict)
    results: Mapping[str, Any] = field(default_factory=dict)

    @property
    def stage(self) -> str:
        """The stage running now, or the last one that ran."""
        return self.stages[-1].name if self.stages else ""


@dataclass(frozen=True)
class ObservedState:
    trials: tuple[ObservedTrial, ...] = ()
    pipeline: ObservedPipeline = field(default_factory=ObservedPipeline)
    start_time: datetime | None = None
    preflight: ObservedPreflight = field(default_factory=ObservedPreflight)

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
