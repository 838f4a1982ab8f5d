"""What watch() yields, from two snapshots: the same comparison for both backends."""

from __future__ import annotations

from typing import Any

from optikube_operator.api.status import OptimizationJobStatus
from optikube_operator.client import (
    JobSnapshot,
    PhaseChanged,
    StageChanged,
    TrialFinished,
    TrialPruned,
    TrialRecord,
    TrialReported,
    TrialStarted,
)
from optikube_operator.client.updates import updates_between


def _snapshot(phase: str, *trials: TrialRecord, stage: str | None = None, **status: Any) -> JobSnapshot:
    parsed = OptimizationJobStatus.model_validate({"phase": phase, "stage": stage, **status}, by_alias=True)
    return JobSnapshot(name="job", where="here", status=parsed, trials=trials)


def _trial(number: int, state: str, step: int | None = None, **values: float) -> TrialRecord:
    return TrialRecord(
        number=number,
        state=state,
        params={"training.learningRate": 0.01},
        latest_step=step,
        latest_values=dict(values),
        values=dict(values) if state == "Succeeded" else {},
    )


def test_the_first_snapshot_is_the_job_as_it_is() -> None:
    now = _snapshot("Tuning", _trial(0, "Running", 1, accuracy=0.5), _trial(1, "Pending"))
    updates = updates_between(None, now)
    assert [type(u) for u in updates] == [PhaseChanged, TrialStarted, TrialReported]
    assert str(updates[0]) == "job: phase - -> Tuning"
    assert str(updates[1]) == "job: trial 0 started (training.learningRate=0.01)"
    assert str(updates[2]) == "job: trial 0 step 1: accuracy=0.5"


def test_a_trial_reports_then_ends_pruned_or_otherwise() -> None:
    before = _snapshot("Tuning", _trial(0, "Running", 0, accuracy=0.4), _trial(1, "Running", 0, accuracy=0.3))
    after = _snapshot(
        "Tuning", _trial(0, "Succeeded", 1, accuracy=0.6), _trial(1, "Pruned", 1, accuracy=0.31)
    )
    updates = updates_between(before, after)
    assert [(type(u), u.trial.number) for u in updates] == [  # type: ignore[attr-defined]
        (TrialReported, 0),
        (TrialFinished, 0),
        (TrialReported, 1),
        (TrialPruned, 1),
    ]
    assert updates_between(after, after) == []


def test_a_trial_seen_only_once_it_ended_still_starts_and_ends() -> None:
    updates = updates_between(_snapshot("Tuning"), _snapshot("Tuning", _trial(2, "Failed")))
    assert [type(u) for u in updates] == [TrialStarted, TrialFinished]


def test_the_phase_that_ends_the_job_comes_last_after_the_stage() -> None:
    before = _snapshot("Training", stage="train")
    after = _snapshot("Succeeded", stage="evaluation", message="Succeeded")
    updates = updates_between(before, after)
    assert [type(u) for u in updates] == [StageChanged, PhaseChanged]
    assert str(updates[-1]) == "job: phase Training -> Succeeded"
    failed = updates_between(before, _snapshot("Failed", stage="train", message="the pipeline failed"))
    assert str(failed[-1]) == "job: phase Training -> Failed: the pipeline failed"


def test_a_suspended_trial_that_runs_again_starts_again() -> None:
    suspended = _snapshot("Suspended", _trial(0, "Suspended", 1, accuracy=0.5))
    running = _snapshot("Tuning", _trial(0, "Running", 1, accuracy=0.5))
    assert [type(u) for u in updates_between(suspended, running)] == [PhaseChanged, TrialStarted]
