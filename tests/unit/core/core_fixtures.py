"""Specs and observed states for the core's unit tests."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from optikube_operator.api.validation import validate_spec
from optikube_operator.core import JobSettings, ObservedPreflight, ObservedTrial, PreflightState, TrialState

T0 = datetime(2026, 1, 1, tzinfo=UTC)
# a job whose preflight is done: what decisions about trials start from
PASSED = ObservedPreflight(PreflightState.PASSED)

BASE_SPEC: dict[str, Any] = {
    "seed": 7,
    "data": {"source": {"builtin": "digits"}},
    "objectives": [{"metric": "accuracy", "direction": "maximize"}],
    "training": {"epochs": 9, "learningRate": 0.01, "batchSize": 64},
    "model": {"builtin": {"name": "mlp"}, "params": {"width": 32}},
    "tuning": {
        "sampler": {"type": "tpe"},
        "pruner": {"type": "none"},
        "maxTrials": 6,
        "parallelTrials": 2,
        "maxFailedTrials": 2,
        "searchSpace": {
            "training.learningRate": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
            "model.params.width": {"type": "int", "low": 16, "high": 128, "step": 16},
        },
    },
}


def spec_dict(**tuning: Any) -> dict[str, Any]:
    result = copy.deepcopy(BASE_SPEC)
    result["tuning"].update(tuning)
    return result


def settings_of(raw: dict[str, Any], job_name: str = "optikube") -> JobSettings:
    """The settings of a camelCase spec, validated as the operator and the CLI validate it."""
    parsed, errors = validate_spec(raw)
    assert parsed is not None, errors
    return JobSettings.from_spec(parsed, job_name)


def spec(**tuning: Any) -> JobSettings:
    return settings_of(spec_dict(**tuning))


def trial(
    number: int,
    state: TrialState,
    accuracy: float | None = None,
    *,
    curve: list[float] | None = None,
    started: timedelta = timedelta(0),
    params: dict[str, Any] | None = None,
    **values: float,
) -> ObservedTrial:
    final = dict(values)
    if accuracy is not None:
        final["accuracy"] = accuracy
    return ObservedTrial(
        number=number,
        params=params
        or {"training.learningRate": 0.001 * (number + 1), "model.params.width": 16 * (1 + number % 8)},
        state=state,
        intermediate=dict(enumerate(curve or [])),
        values=final,
        start_time=T0 + started,
    )
