"""What the client answers, typed: a trial's record, a job's state at one moment (`JobSnapshot`) and
its results. Both backends build them from the same API shapes (an OptimizationJob status and the
OptimizationTrial statuses; local runs keep those in their state file), so a job gives the same
answers locally and on a cluster."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from optikube_operator.api.status import (
    TERMINAL_PHASES,
    Condition,
    ModelMeasurement,
    OptimizationJobStatus,
    RuntimeMeasurement,
)
from optikube_operator.api.trial import OptimizationTrialStatus

# A trial's states that end it (Suspended does not: it runs again on resume).
FINISHED_TRIAL_STATES = frozenset({"Succeeded", "Pruned", "Failed", "TimedOut", "Stopped"})


@dataclass(frozen=True)
class TrialRecord:
    """One tuning trial: its parameters, its final objective values and its state."""

    number: int
    state: str  # Pending, Running, Succeeded, Pruned, Failed, TimedOut, Stopped, Suspended
    params: Mapping[str, Any] = field(default_factory=dict)
    values: Mapping[str, float] = field(default_factory=dict)
    latest_step: int | None = None
    latest_values: Mapping[str, float] = field(default_factory=dict)
    message: str = ""
    attempts: int = 0
    start_time: datetime | None = None
    end_time: datetime | None = None

    @classmethod
    def of(
        cls, number: int, params: Mapping[str, Any], status: OptimizationTrialStatus | None
    ) -> TrialRecord:
        status = status or OptimizationTrialStatus()
        return cls(
            number=number,
            state=status.phase,
            params=dict(params),
            values=dict(status.final_values),
            latest_step=status.latest_step,
            latest_values=dict(status.latest_values),
            message=status.message or "",
            attempts=status.attempts,
            start_time=status.start_time,
            end_time=status.completion_time,
        )

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_TRIAL_STATES

    @property
    def started(self) -> bool:
        """Whether it ran (or runs) in its latest attempt."""
        return self.state not in ("Pending", "Suspended")


@dataclass(frozen=True)
class JobSnapshot:
    """A job as its backend showed it at one moment."""

    name: str
    where: str  # `namespace NS` on a cluster, the job's folder locally
    status: OptimizationJobStatus
    trials: tuple[TrialRecord, ...] = ()
    spec: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def phase(self) -> str:
        return self.status.phase

    @property
    def stage(self) -> str | None:
        return self.status.stage

    @property
    def finished(self) -> bool:
        return self.status.phase in TERMINAL_PHASES

    @property
    def end_condition(self) -> Condition | None:
        """The Succeeded or Failed condition of a finished job (its reason and message)."""
        return next((c for c in self.status.conditions if c.type == self.phase and c.status == "True"), None)

    @property
    def reason(self) -> str | None:
        condition = self.end_condition
        return condition.reason if condition is not None else None

    def trial(self, number: int) -> TrialRecord | None:
        return next((trial for trial in self.trials if trial.number == number), None)

    @property
    def best_trial(self) -> TrialRecord | None:
        best = self.status.best_trial
        if best is None:
            return None
        known = self.trial(best.number)
        if known is not None:
            return known
        return TrialRecord(number=best.number, state="Succeeded", params=best.params, values=best.values)

    def same_as(self, other: JobSnapshot | None) -> bool:
        return other is not None and other.status == self.status and other.trials == self.trials


@dataclass(frozen=True)
class JobResults:
    """Baseline vs optimized, the runtimes tried and the search's outcome: the parts of results.json
    every backend has (the status' `results`), plus the whole document where the backend can read it
    (local runs)."""

    job: str
    phase: str
    reason: str | None
    baseline: ModelMeasurement | None
    optimized: ModelMeasurement | None
    size_ratio: float | None
    speedup: float | None
    runtime: str | None
    runtimes: tuple[RuntimeMeasurement, ...]
    accuracy_drop: float | None
    best_trial: TrialRecord | None
    trial_counts: Mapping[str, int]
    location: str | None  # where results.json is: a local path, or one inside the pods' volume
    document: Mapping[str, Any] | None = None

    @classmethod
    def of(cls, snapshot: JobSnapshot, document: Mapping[str, Any] | None = None) -> JobResults:
        status = snapshot.status
        results = status.results
        best = snapshot.best_trial
        return cls(
            job=snapshot.name,
            phase=snapshot.phase,
            reason=snapshot.reason,
            baseline=results.baseline if results else None,
            optimized=results.optimized if results else None,
            size_ratio=results.size_ratio if results else None,
            speedup=results.speedup if results else None,
            runtime=results.runtime if results else None,
            runtimes=tuple(results.runtimes) if results else (),
            accuracy_drop=results.accuracy_drop if results else None,
            best_trial=best,
            trial_counts=status.trial_counts.model_dump(by_alias=True),
            location=status.artifacts.results if status.artifacts else None,
            document=document,
        )

    def to_dict(self) -> dict[str, Any]:
        """The camelCase document `optikube results -o json` prints (the same from both backends)."""
        results = self._status_results()
        best = self.best_trial
        return {
            "job": self.job,
            "phase": self.phase,
            "reason": self.reason,
            **results,
            "bestTrial": None
            if best is None
            else {"number": best.number, "params": dict(best.params), "values": dict(best.values)},
            "trialCounts": dict(self.trial_counts),
            "resultsFile": self.location,
        }

    def _status_results(self) -> dict[str, Any]:
        def dumped(model: Any) -> Any:
            return None if model is None else model.model_dump(mode="json", by_alias=True, exclude_none=True)

        return {
            "baseline": dumped(self.baseline),
            "optimized": dumped(self.optimized),
            "sizeRatio": self.size_ratio,
            "speedup": self.speedup,
            "runtime": self.runtime,
            "runtimes": [dumped(runtime) for runtime in self.runtimes],
            "accuracyDrop": self.accuracy_drop,
        }
