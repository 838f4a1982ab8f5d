"""Recording events and process exits into the local run state."""

from __future__ import annotations

from optikube_operator.local.events import (
    record_pipeline_exit,
    record_trial_event,
    record_trial_exit,
    values_from_results,
)
from optikube_operator.local.state import PipelineRecord, RunState, TrialRecord

NOW = "2026-01-01T00:00:00+00:00"
RESULTS = {
    "optimized": {
        "metrics": {"accuracy": 0.95, "f1": 0.94},
        "parameters": 1200,
        "sizeBytes": 5000,
        "latencyMs": {"batch1P50": 0.2, "batch32P50": 1.5},
    }
}


def test_values_come_from_contract_4_results_when_the_final_push_was_lost() -> None:
    assert values_from_results(RESULTS) == {
        "accuracy": 0.95,
        "f1": 0.94,
        "parameters": 1200.0,
        "sizeBytes": 5000.0,
        "latencyMs": 0.2,
        "latencyMsBatch32": 1.5,
    }
    trial = TrialRecord(number=0, params={}, state="Running")
    record_trial_exit(trial, 0, RESULTS, "", NOW)
    assert trial.state == "Succeeded" and trial.values["accuracy"] == 0.95


def test_events_move_a_trial_and_late_events_change_nothing() -> None:
    trial = TrialRecord(number=1, params={}, state="Running")
    record_trial_event(trial, {"type": "intermediate", "step": 2, "values": {"accuracy": 0.5, "x": "y"}}, NOW)
    assert trial.intermediate == {"2": {"accuracy": 0.5}}
    record_trial_event(trial, {"type": "pruned", "epoch": 2}, NOW)
    assert trial.state == "Pruned"
    record_trial_event(trial, {"type": "final", "values": {"accuracy": 0.9}}, NOW)
    assert trial.state == "Pruned" and trial.values == {}


def test_a_crash_fails_the_trial_with_its_log_tail() -> None:
    trial = TrialRecord(number=2, params={}, state="Running")
    record_trial_exit(trial, 1, None, "Traceback ...\nValueError: boom\n", NOW)
    assert trial.state == "Failed" and "exited with code 1" in trial.message
    assert trial.log_tail.endswith("ValueError: boom\n")
    clean_but_silent = TrialRecord(number=3, params={}, state="Running")
    record_trial_exit(clean_but_silent, 0, None, "", NOW)
    assert clean_but_silent.state == "Failed" and "without reporting results" in clean_but_silent.message


def test_pipeline_exit_and_state_round_trip() -> None:
    pipeline = PipelineRecord(state="Running")
    record_pipeline_exit(pipeline, 3, "tail", NOW)
    assert pipeline.state == "Failed" and pipeline.log_tail == "tail"
    state = RunState(
        job_name="j",
        spec_digest="d",
        start_time=NOW,
        pipeline=pipeline,
        trials={
            0: TrialRecord(
                number=0,
                params={"a.b": 1},
                state="Succeeded",
                values={"accuracy": 1.0},
                intermediate={"0": {"accuracy": 0.5}},
            )
        },
    )
    again = RunState.from_json(state.to_json())
    assert again == state
    observed = again.observed()
    assert observed.trials[0].intermediate == {0: {"accuracy": 0.5}} and observed.pipeline.value == "Failed"
