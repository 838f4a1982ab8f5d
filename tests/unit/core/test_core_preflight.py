"""The preflight decision: first, once, and its failure ends the job before any trial."""

from __future__ import annotations

from core_fixtures import PASSED, T0, settings_of, spec, spec_dict, trial

from optikube_operator.api.outcomes import FinishReason
from optikube_operator.core import (
    Finish,
    ObservedPipeline,
    ObservedPreflight,
    ObservedState,
    PipelineState,
    PreflightState,
    StartPipeline,
    StartPreflight,
    StartTrial,
    TrialState,
    decide,
)
from optikube_operator.core.recording import preflight_message


def test_a_fresh_job_runs_the_preflight_and_nothing_else() -> None:
    assert decide(spec(), ObservedState(start_time=T0), T0) == [StartPreflight()]
    plain = spec_dict()
    del plain["tuning"]
    assert decide(settings_of(plain), ObservedState(start_time=T0), T0) == [StartPreflight()]


def test_a_running_preflight_is_waited_for_not_started_again() -> None:
    running = ObservedState(start_time=T0, preflight=ObservedPreflight(PreflightState.RUNNING, start_time=T0))
    assert decide(spec(), running, T0) == []


def test_a_passed_preflight_lets_the_trials_start_and_is_never_run_again() -> None:
    actions = decide(spec(), ObservedState(start_time=T0, preflight=PASSED), T0)
    assert actions and all(isinstance(action, StartTrial) for action in actions)
    later = ObservedState(trials=(trial(0, TrialState.SUCCEEDED, 0.9),), start_time=T0, preflight=PASSED)
    assert not any(isinstance(action, StartPreflight) for action in decide(spec(), later, T0))


def test_a_failed_preflight_fails_the_job_with_its_message() -> None:
    failed = ObservedPreflight(
        PreflightState.FAILED, message="spec.data.source.file.path: /x.csv does not exist"
    )
    assert decide(spec(), ObservedState(start_time=T0, preflight=failed), T0) == [
        Finish(
            FinishReason.PREFLIGHT_FAILED,
            succeeded=False,
            message="spec.data.source.file.path: /x.csv does not exist",
        )
    ]


def test_a_job_that_launched_before_preflights_existed_goes_on_without_one() -> None:
    with_trials = ObservedState(trials=(trial(0, TrialState.RUNNING),), start_time=T0)
    assert not any(isinstance(action, StartPreflight) for action in decide(spec(), with_trials, T0))
    plain = spec_dict()
    del plain["tuning"]
    pipeline = ObservedState(start_time=T0, pipeline=ObservedPipeline(state=PipelineState.SUSPENDED))
    assert decide(settings_of(plain), pipeline, T0) == [
        StartPipeline(params={}, trial_number=None, search_ended=FinishReason.NO_SEARCH)
    ]


def test_a_suspended_job_does_not_start_its_preflight() -> None:
    suspended = spec_dict()
    suspended["suspend"] = True
    assert decide(settings_of(suspended), ObservedState(start_time=T0), T0) == []


def test_a_preflights_message_is_its_refusal_else_the_last_line_of_its_log() -> None:
    refusal = "spec.data.source.file.targetColumn: no column 'labl'"
    assert preflight_message(2, refusal + "\n", "Traceback...") == refusal
    assert preflight_message(1, None, "loading\nMemoryError\n\n") == (
        "the preflight exited with code 1: MemoryError"
    )
    assert preflight_message(137, None, "") == "the preflight exited with code 137"
    assert preflight_message(0, refusal, "") == ""
