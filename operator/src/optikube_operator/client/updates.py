"""What `JobHandle.watch()` yields: typed updates of a job, found by comparing two snapshots of it
(the same comparison for both backends). They are not Kubernetes Events (`kubectl get events`
shows those): a `JobUpdate` is a change the client saw in the job's status or its trials."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from optikube_operator.client.records import JobSnapshot, TrialRecord


def _values(values: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}"
        for name, value in values.items()
    )


@dataclass(frozen=True)
class JobUpdate:
    """A change of one job."""

    job: str


@dataclass(frozen=True)
class PhaseChanged(JobUpdate):
    """The job's phase moved (Pending, Tuning, Training, ..., Succeeded, Failed, Suspended)."""

    phase: str
    previous: str | None
    message: str | None = None

    def __str__(self) -> str:
        ended = self.phase in ("Succeeded", "Failed") and self.message not in (None, "", self.phase)
        said = f": {self.message}" if ended else ""
        return f"{self.job}: phase {self.previous or '-'} -> {self.phase}{said}"


@dataclass(frozen=True)
class StageChanged(JobUpdate):
    """The final pipeline moved to another stage (train, pruning, quantization, evaluation, ...)."""

    stage: str | None
    previous: str | None

    def __str__(self) -> str:
        return f"{self.job}: pipeline stage {self.previous or '-'} -> {self.stage or '-'}"


@dataclass(frozen=True)
class TrialUpdate(JobUpdate):
    """A change of one trial; `trial` is its record after the change."""

    trial: TrialRecord


@dataclass(frozen=True)
class TrialStarted(TrialUpdate):
    def __str__(self) -> str:
        params = _values(self.trial.params)
        return f"{self.job}: trial {self.trial.number} started" + (f" ({params})" if params else "")


@dataclass(frozen=True)
class TrialReported(TrialUpdate):
    """The trial's progress: the values of its latest step (epoch)."""

    @property
    def step(self) -> int | None:
        return self.trial.latest_step

    @property
    def values(self) -> Mapping[str, float]:
        return self.trial.latest_values

    def __str__(self) -> str:
        return f"{self.job}: trial {self.trial.number} step {self.step}: {_values(self.values)}"


@dataclass(frozen=True)
class TrialPruned(TrialUpdate):
    """The trial pruner stopped the trial early."""

    def __str__(self) -> str:
        return f"{self.job}: trial {self.trial.number} pruned at step {self.trial.latest_step}"


@dataclass(frozen=True)
class TrialFinished(TrialUpdate):
    """The trial ended otherwise: Succeeded, Failed, TimedOut or Stopped."""

    def __str__(self) -> str:
        values = _values(self.trial.values)
        note = f" ({self.trial.message})" if self.trial.message and self.trial.state != "Succeeded" else ""
        return (
            f"{self.job}: trial {self.trial.number} {self.trial.state}"
            + (f": {values}" if values else "")
            + note
        )


# Every kind of update watch() yields, for filtering on them (`isinstance(update, UPDATE_KINDS)`).
UPDATE_KINDS: tuple[type[JobUpdate], ...] = (
    PhaseChanged,
    StageChanged,
    TrialStarted,
    TrialReported,
    TrialPruned,
    TrialFinished,
)


def _trial_updates(job: str, before: TrialRecord | None, after: TrialRecord) -> list[JobUpdate]:
    updates: list[JobUpdate] = []
    if after.started and (before is None or not before.started):
        updates.append(TrialStarted(job, after))
    if after.latest_step is not None and (before is None or before.latest_step != after.latest_step):
        updates.append(TrialReported(job, after))
    if after.finished and (before is None or before.state != after.state):
        updates.append(TrialPruned(job, after) if after.state == "Pruned" else TrialFinished(job, after))
    return updates


def updates_between(before: JobSnapshot | None, after: JobSnapshot) -> list[JobUpdate]:
    """What changed from `before` (None: nothing seen yet) to `after`, in the order it happened as
    far as two snapshots tell: a phase the job entered, its trials by number, the pipeline's stage,
    and last the phase that finished it."""
    job = after.name
    phase: list[JobUpdate] = []
    if before is None or before.phase != after.phase:
        phase.append(PhaseChanged(job, after.phase, before.phase if before else None, after.status.message))
    first, last = ([], phase) if after.finished else (phase, [])
    trials: list[JobUpdate] = []
    for trial in after.trials:
        trials += _trial_updates(job, before.trial(trial.number) if before else None, trial)
    stage: list[JobUpdate] = []
    previous_stage = before.stage if before else None
    if after.stage != previous_stage and after.stage is not None:
        stage.append(StageChanged(job, after.stage, previous_stage))
    return [*first, *trials, *stage, *last]
