"""Recording what runs report and how they end: the same rules for both backends."""

from __future__ import annotations

from datetime import UTC, datetime

from optikube_operator.api.progress import AnyProgress, parse_progress
from optikube_operator.core import ObservedPipeline, ObservedTrial, PipelineState, TrialState
from optikube_operator.core.recording import (
    record_pipeline_exit,
    record_pipeline_progress,
    record_trial_exit,
    record_trial_progress,
    stale_progress,
    values_from_results,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
RESULTS = {
    "optimized": {
        "metrics": {"accuracy": 0.95, "f1": 0.94},
        "parameters": 1200,
        "sizeBytes": 5000,
        "latencyMs": {"batch1P50": 0.2, "batch32P50": 1.5},
    }
}


def running(number: int = 0) -> ObservedTrial:
    return ObservedTrial(number=number, params={}, state=TrialState.RUNNING, start_time=NOW)


def test_values_come_from_contract_4_results_when_the_final_push_was_lost() -> None:
    assert values_from_results(RESULTS) == {
        "accuracy": 0.95,
        "f1": 0.94,
        "parameters": 1200.0,
        "sizeBytes": 5000.0,
        "latencyMs": 0.2,
        "latencyMsBatch32": 1.5,
    }
    trial = record_trial_exit(running(), 0, RESULTS, NOW)
    assert trial.state is TrialState.SUCCEEDED and trial.values["accuracy"] == 0.95


def test_intermediate_events_keep_the_primary_series_and_the_latest_values() -> None:
    trial = running(1)
    for step, accuracy in enumerate((0.5, 0.6)):
        event = parse_progress(
            {
                "type": "intermediate",
                "trial": 1,
                "epoch": step,
                "step": step,
                "values": {"accuracy": accuracy, "valLoss": 1.0 - accuracy},
            }
        )
        trial = record_trial_progress(trial, event, "accuracy", NOW)
    assert trial.intermediate == {0: 0.5, 1: 0.6}
    assert trial.latest_step == 1 and trial.latest_values == {"accuracy": 0.6, "valLoss": 0.4}


def test_a_replayed_or_out_of_order_step_changes_nothing() -> None:
    def at(step: int, accuracy: float) -> AnyProgress:
        return parse_progress(
            {
                "type": "intermediate",
                "trial": 1,
                "epoch": step,
                "step": step,
                "values": {"accuracy": accuracy},
            }
        )

    trial = record_trial_progress(
        record_trial_progress(running(1), at(0, 0.5), "accuracy", NOW), at(1, 0.6), "accuracy", NOW
    )
    for stale in (at(1, 0.9), at(0, 0.1)):
        assert stale_progress(trial, stale)
        assert record_trial_progress(trial, stale, "accuracy", NOW) == trial
    assert not stale_progress(trial, at(2, 0.7))
    assert record_trial_progress(trial, at(2, 0.7), "accuracy", NOW).intermediate == {0: 0.5, 1: 0.6, 2: 0.7}


def test_a_finished_trial_ignores_late_and_replayed_events() -> None:
    trial = record_trial_progress(
        running(1), parse_progress({"type": "pruned", "trial": 1, "epoch": 2}), "a", NOW
    )
    assert trial.state is TrialState.PRUNED
    final = parse_progress({"type": "final", "trial": 1, "values": {"accuracy": 0.9}})
    assert record_trial_progress(trial, final, "accuracy", NOW) == trial
    assert record_trial_exit(trial, 1, None, NOW) == trial


def test_a_crash_or_a_silent_clean_exit_fails_the_trial() -> None:
    crashed = record_trial_exit(running(2), 137, None, NOW, reason="OOMKilled")
    assert crashed.state is TrialState.FAILED and crashed.message.endswith("code 137 (OOMKilled)")
    silent = record_trial_exit(running(3), 0, None, NOW)
    assert silent.state is TrialState.FAILED and "without reporting results" in silent.message
    reported = record_trial_progress(
        running(4), parse_progress({"type": "failed", "trial": 4, "message": "ValueError: boom"}), "a", NOW
    )
    assert record_trial_exit(reported, 1, None, NOW).message == "ValueError: boom"


def test_the_pipeline_records_stages_and_succeeds_only_when_its_run_exits_cleanly() -> None:
    pipeline = ObservedPipeline(state=PipelineState.PENDING)
    stage = parse_progress(
        {"type": "stage", "trial": None, "stage": "pruning", "status": "completed", "durationSeconds": 2.0}
    )
    pipeline = record_pipeline_progress(pipeline, stage, NOW)
    assert pipeline.state is PipelineState.RUNNING and pipeline.stage == "pruning"
    final = parse_progress({"type": "final", "trial": None, "values": {"accuracy": 0.9}, "results": RESULTS})
    pipeline = record_pipeline_progress(pipeline, final, NOW)
    assert pipeline.state is PipelineState.RUNNING and pipeline.values == {"accuracy": 0.9}
    done = record_pipeline_exit(pipeline, 0, NOW)
    assert done.state is PipelineState.SUCCEEDED and done.results == RESULTS
    failed = record_pipeline_exit(ObservedPipeline(state=PipelineState.RUNNING), 3, NOW)
    assert failed.state is PipelineState.FAILED and "code 3" in failed.message


def _progress(raw: dict[str, object]) -> AnyProgress:
    return parse_progress(raw)


def test_unconfirmed_steps_after_the_record_come_first_and_the_rest_change_nothing() -> None:
    """An operator that answered steps 2 and 3 and was killed before writing them has a record up to
    step 1; the trainer's next message carries them (`unconfirmed`): recorded once, in order."""
    trial = record_trial_progress(
        running(),
        _progress({"type": "intermediate", "trial": 0, "epoch": 1, "step": 1, "values": {"accuracy": 0.2}}),
        "accuracy",
        NOW,
    )
    unconfirmed = [
        {"epoch": step, "step": step, "values": {"accuracy": step / 10}} for step in (1, 3, 2, 4)
    ]  # step 1 is recorded already, 4 is not before the message's own step
    message = {"type": "intermediate", "trial": 0, "epoch": 4, "step": 4, "values": {"accuracy": 0.45}}
    after = record_trial_progress(trial, _progress({**message, "unconfirmed": unconfirmed}), "accuracy", NOW)
    assert after.intermediate == {1: 0.2, 2: 0.2, 3: 0.3, 4: 0.45}
    assert after.latest_step == 4 and after.latest_values == {"accuracy": 0.45}
    final = {"type": "final", "trial": 0, "values": {"accuracy": 0.5}}
    ended = record_trial_progress(
        after,
        _progress({**final, "unconfirmed": [{"epoch": 5, "step": 5, "values": {"accuracy": 0.48}}]}),
        "accuracy",
        NOW,
    )
    assert ended.state is TrialState.SUCCEEDED and ended.intermediate[5] == 0.48 and ended.latest_step == 5
