"""The OptimizationJob status says when the validation split cannot tell the trials apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from optikube_operator.api.status import OptimizationJobStatus
from optikube_operator.api.validation import validate_spec
from optikube_operator.core import (
    JobSettings,
    ObservedPreflight,
    ObservedState,
    ObservedTrial,
    PreflightState,
    TrialState,
)
from optikube_operator.core.records import observed_preflight
from optikube_operator.core.summary import summarize
from optikube_operator.kube.status import build_status

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SPEC: dict[str, Any] = {
    "data": {"source": {"builtin": "iris"}},
    "model": {"builtin": {"name": "mlp"}},
    "objectives": [{"metric": "accuracy", "direction": "maximize"}],
    "tuning": {
        "maxTrials": 4,
        "searchSpace": {"training.learningRate": {"type": "float", "low": 1e-4, "high": 1e-1}},
    },
}


def _settings() -> JobSettings:
    parsed, errors = validate_spec(SPEC)
    assert parsed is not None, errors
    return JobSettings.from_spec(parsed, "iris")


def _status(
    trials: tuple[ObservedTrial, ...],
    previous: dict[str, Any] | None = None,
    preflight: ObservedPreflight | None = None,
) -> dict[str, Any]:
    settings = _settings()
    observed = ObservedState(trials=trials, start_time=NOW, preflight=preflight or ObservedPreflight())
    return build_status(
        settings=settings,
        observed=observed,
        summary=summarize(settings, observed),
        outcome=None,
        previous=None if previous is None else OptimizationJobStatus.model_validate(previous),
        conditions=[],
        generation=1,
        accepted_spec=None,
        artifacts_location=None,
        job_name="iris",
        now=NOW,
    )


def _trial(number: int, correct: int, samples: int = 30) -> ObservedTrial:
    values = {"accuracy": correct / samples, "valLoss": 0.2, "validationSamples": float(samples)}
    return ObservedTrial(
        number, {"training.learningRate": 0.01 * (number + 1)}, TrialState.SUCCEEDED, values=values
    )


def _condition(status: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in status["conditions"] if c["type"] == "TrialsDistinguishable"), None)


def test_trials_one_sample_apart_turn_the_condition_false_with_a_cross_validation_hint() -> None:
    status = _status((_trial(0, 29), _trial(1, 30)))
    condition = _condition(status)
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("False", "ValidationSplitTooSmall")
    assert "spec.data.crossValidation" in condition["message"] and "30 samples" in condition["message"]


def test_the_condition_turns_true_once_scores_spread_and_is_absent_before_two_trials() -> None:
    assert _condition(_status((_trial(0, 29),))) is None
    before = _status((_trial(0, 29), _trial(1, 30)))
    after = _status((_trial(0, 29), _trial(1, 30), _trial(2, 20)), previous=before)
    condition = _condition(after)
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("True", "ScoresSpreadBeyondOneSample")


def test_the_preflights_record_is_in_the_status_once_started_and_reloads_as_it_was() -> None:
    message = "spec.data.source.file.path: /data/churn.csv does not exist"
    preflight = ObservedPreflight(PreflightState.FAILED, message, NOW, NOW + timedelta(seconds=3))
    status = _status((), preflight=preflight)
    assert status["preflight"] == {
        "phase": "Failed",
        "message": message,
        "startTime": "2026-01-01T00:00:00Z",
        "completionTime": "2026-01-01T00:00:03Z",
    }
    assert status["phase"] == "Pending" and "pipeline" not in status
    assert observed_preflight(OptimizationJobStatus.model_validate(status).preflight) == preflight
    assert "preflight" not in _status(())  # not started: nothing recorded
