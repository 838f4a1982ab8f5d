"""The local state file stores the same records the cluster keeps, and reads back identically."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from optikube_operator.core import ObservedPipeline, ObservedStage, ObservedTrial, PipelineState, TrialState
from optikube_operator.local.state import LocalTrial, RunState

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_state_round_trips_through_json() -> None:
    trial = ObservedTrial(
        number=0,
        params={"a.b": 1},
        state=TrialState.SUCCEEDED,
        values={"accuracy": 1.0},
        intermediate={0: 0.5, 1: 0.75},
        latest_values={"accuracy": 0.75, "valLoss": 0.2},
        latest_step=1,
        start_time=NOW,
        end_time=NOW,
        sampler_attrs={"NSGAIISampler:generation": 0},
        attempts=2,
    )
    pipeline = ObservedPipeline(
        state=PipelineState.FAILED,
        params={"a.b": 1},
        trial_number=0,
        search_ended="MaxTrialsReached",
        stages=(ObservedStage("train", "completed", 1.5),),
        message="boom",
        attempts=1,
    )
    state = RunState(
        job_name="j",
        spec_digest="d",
        start_time=NOW,
        trials={0: LocalTrial(trial, results={"x": 1}, log_tail="tail")},
        pipeline=pipeline,
        pipeline_log_tail="ptail",
    )
    again = RunState.from_json(state.to_json())
    assert again == state
    assert again.observed().trials[0].intermediate == {0: 0.5, 1: 0.75}


def test_a_state_file_of_another_version_is_refused_with_a_way_out() -> None:
    with pytest.raises(ValueError, match="new --output"):
        RunState.from_json({"version": 1})
