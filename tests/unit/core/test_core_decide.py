"""Decisions of the orchestration core for given observed states."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from core_fixtures import PASSED, T0, settings_of, spec, spec_dict, trial

from optikube_operator.api.outcomes import FinishReason
from optikube_operator.core import (
    Action,
    Finish,
    ObservedPipeline,
    ObservedState,
    PipelineState,
    StartPipeline,
    StartTrial,
    StopPipeline,
    StopTrial,
    TrialState,
    decide,
)
from optikube_operator.core.actions import StopReason

S = TrialState


def _starts(actions: list[Action]) -> list[StartTrial]:
    return [a for a in actions if isinstance(a, StartTrial)]


def test_fresh_job_starts_parallel_trials_with_dense_numbers_in_range() -> None:
    actions = decide(spec(), ObservedState(start_time=T0, preflight=PASSED), T0)
    starts = _starts(actions)
    assert [s.number for s in starts] == [0, 1]
    for start in starts:
        assert 1e-4 <= start.params["training.learningRate"] <= 1e-1
        assert start.params["model.params.width"] in range(16, 129, 16)
    assert starts[0].params != starts[1].params


def test_same_state_same_decision() -> None:
    observed = ObservedState(
        trials=(trial(0, S.SUCCEEDED, 0.9), trial(1, S.PRUNED, curve=[0.2])), start_time=T0
    )
    assert decide(spec(), observed, T0) == decide(spec(), observed, T0)


def test_parallel_trials_respected() -> None:
    observed = ObservedState(trials=(trial(0, S.RUNNING), trial(1, S.PENDING)), start_time=T0)
    assert decide(spec(), observed, T0) == []
    observed = ObservedState(trials=(trial(0, S.RUNNING), trial(1, S.SUCCEEDED, 0.5)), start_time=T0)
    assert [s.number for s in _starts(decide(spec(), observed, T0))] == [2]


def test_restart_with_trials_in_every_state_continues_without_duplicates() -> None:
    trials = (
        trial(0, S.SUCCEEDED, 0.9),
        trial(1, S.PRUNED, curve=[0.1]),
        trial(2, S.FAILED),
        trial(3, S.TIMED_OUT),
        trial(4, S.RUNNING),
    )
    observed = ObservedState(trials=trials, start_time=T0)
    actions = decide(spec(maxFailedTrials=5, maxTrials=8), observed, T0)
    # one slot free (parallel 2, one running): the next number, never an old one
    assert [type(a) for a in actions] == [StartTrial]
    assert _starts(actions)[0].number == 5
    # Recording that start and deciding again gives no second start with the same number.
    recorded = ObservedState(trials=(*trials, trial(5, S.PENDING)), start_time=T0)
    assert decide(spec(maxFailedTrials=5, maxTrials=8), recorded, T0) == []


def test_suggestions_depend_on_history_not_on_repetition() -> None:
    history = ObservedState(trials=(trial(0, S.SUCCEEDED, 0.9), trial(1, S.SUCCEEDED, 0.8)), start_time=T0)
    first = decide(spec(parallelTrials=1), history, T0)
    again = decide(spec(parallelTrials=1), history, T0 + timedelta(seconds=5))
    assert first == again


def test_timed_out_trial_is_stopped() -> None:
    observed = ObservedState(
        trials=(trial(0, S.RUNNING), trial(1, S.RUNNING, started=timedelta(minutes=9))), start_time=T0
    )
    actions = decide(spec(trialTimeout="10m", maxFailedTrials=3), observed, T0 + timedelta(minutes=10))
    assert StopTrial(0, StopReason.TIMED_OUT) in actions
    assert StopTrial(1, StopReason.TIMED_OUT) not in actions
    # the timed-out trial frees its slot in the same decision
    assert [s.number for s in _starts(actions)] == [2]


def test_a_trial_that_ignores_a_prune_reply_is_stopped_by_the_core() -> None:
    finished = tuple(trial(n, S.SUCCEEDED, 0.9, curve=[0.5, 0.8, 0.9]) for n in range(3))
    pruner = {"type": "median", "startupTrials": 2, "warmupSteps": 1}
    # told to prune at step 1 (the reply): the trainer is stopping itself, the core waits
    told = trial(3, S.RUNNING, curve=[0.1, 0.2])
    assert not any(
        isinstance(a, StopTrial)
        for a in decide(spec(pruner=pruner, maxTrials=10), ObservedState(trials=(*finished, told)), T0)
    )
    # it reported step 2 anyway: it did not listen, so the core stops it
    laggard = trial(3, S.RUNNING, curve=[0.1, 0.2, 0.25])
    observed = ObservedState(trials=(*finished, laggard), start_time=T0)
    actions = decide(spec(pruner=pruner, maxTrials=10), observed, T0)
    assert StopTrial(3, StopReason.PRUNED) in actions
    good = trial(3, S.RUNNING, curve=[0.6, 0.85])
    assert not any(
        isinstance(a, StopTrial)
        for a in decide(spec(pruner=pruner, maxTrials=10), ObservedState(trials=(*finished, good)), T0)
    )


def test_goal_reached_stops_running_trials_and_starts_pipeline_with_best() -> None:
    observed = ObservedState(
        trials=(trial(0, S.SUCCEEDED, 0.90), trial(1, S.SUCCEEDED, 0.98), trial(2, S.RUNNING)), start_time=T0
    )
    actions = decide(spec(goal=0.97), observed, T0)
    assert actions[0] == StopTrial(2, StopReason.JOB_FINISHED)
    pipeline = actions[1]
    assert isinstance(pipeline, StartPipeline)
    assert pipeline.trial_number == 1 and pipeline.search_ended is FinishReason.GOAL_REACHED
    assert pipeline.params == observed.trial(1).params


def test_too_many_failures_finishes_the_job() -> None:
    trials = (trial(0, S.FAILED), trial(1, S.TIMED_OUT), trial(2, S.FAILED), trial(3, S.RUNNING))
    actions = decide(spec(maxFailedTrials=2), ObservedState(trials=trials, start_time=T0), T0)
    assert actions[0] == StopTrial(3, StopReason.JOB_FINISHED)
    assert isinstance(actions[-1], Finish)
    assert actions[-1].reason is FinishReason.TOO_MANY_FAILURES and not actions[-1].succeeded
    # at the limit the search goes on
    tolerated = ObservedState(trials=trials[:2], start_time=T0)
    assert _starts(decide(spec(maxFailedTrials=2), tolerated, T0))


def test_deadline_stops_new_trials_then_runs_pipeline() -> None:
    observed = ObservedState(trials=(trial(0, S.SUCCEEDED, 0.7), trial(1, S.RUNNING)), start_time=T0)
    late = T0 + timedelta(hours=2)
    assert decide(spec(maxDuration="1h"), observed, late) == []  # waits for trial 1
    done = ObservedState(trials=(trial(0, S.SUCCEEDED, 0.7), trial(1, S.SUCCEEDED, 0.8)), start_time=T0)
    actions = decide(spec(maxDuration="1h"), done, late)
    assert actions == [
        StartPipeline(
            params=done.trial(1).params, trial_number=1, search_ended=FinishReason.DEADLINE_EXCEEDED
        )
    ]
    nothing = ObservedState(trials=(trial(0, S.FAILED),), start_time=T0)
    (finish,) = decide(spec(maxDuration="1h"), nothing, late)
    assert isinstance(finish, Finish) and finish.reason is FinishReason.DEADLINE_EXCEEDED


def test_max_trials_reached_waits_for_running_then_pipeline() -> None:
    trials = tuple(trial(n, S.SUCCEEDED, 0.5 + n / 100) for n in range(5))
    running = ObservedState(trials=(*trials, trial(5, S.RUNNING)), start_time=T0)
    assert decide(spec(), running, T0) == []
    done = ObservedState(trials=(*trials, trial(5, S.PRUNED, curve=[0.1])), start_time=T0)
    (action,) = decide(spec(), done, T0)
    assert isinstance(action, StartPipeline)
    assert action.search_ended is FinishReason.MAX_TRIALS_REACHED and action.trial_number == 4


def test_grid_search_is_exhausted() -> None:
    grid = {
        "sampler": {"type": "grid"},
        "maxTrials": 50,
        "parallelTrials": 4,
        "searchSpace": {
            "training.batchSize": {"type": "categorical", "choices": [32, 64]},
            "model.params.width": {"type": "int", "low": 16, "high": 32, "step": 16},
        },
    }
    starts = _starts(decide(spec(**grid), ObservedState(start_time=T0, preflight=PASSED), T0))
    points = [dict(s.params) for s in starts]
    assert len(points) == 4 and len({tuple(sorted(p.items())) for p in points}) == 4
    finished = tuple(trial(s.number, S.SUCCEEDED, 0.5 + s.number / 10, params=dict(s.params)) for s in starts)
    (action,) = decide(spec(**grid), ObservedState(trials=finished, start_time=T0), T0)
    assert isinstance(action, StartPipeline)
    assert action.search_ended is FinishReason.SEARCH_SPACE_EXHAUSTED and action.trial_number == 3


def test_pipeline_outcomes_finish_the_job() -> None:
    trials = (trial(0, S.SUCCEEDED, 0.9), trial(1, S.RUNNING))
    running = ObservedState(
        trials=trials, pipeline=ObservedPipeline(state=PipelineState.RUNNING), start_time=T0
    )
    assert decide(spec(), running, T0) == [StopTrial(1, StopReason.JOB_FINISHED)]
    ok = ObservedState(
        trials=trials[:1], pipeline=ObservedPipeline(state=PipelineState.SUCCEEDED), start_time=T0
    )
    assert decide(spec(), ok, T0) == [Finish(FinishReason.SUCCEEDED, succeeded=True)]
    bad = ObservedState(
        trials=trials[:1], pipeline=ObservedPipeline(state=PipelineState.FAILED, message="oom")
    )
    (finish,) = decide(spec(), bad, T0)
    assert isinstance(finish, Finish) and finish.reason is FinishReason.PIPELINE_FAILED
    assert finish.message == "oom"


def test_no_search_space_runs_the_pipeline_directly() -> None:
    plain = spec_dict()
    del plain["tuning"]
    assert decide(settings_of(plain), ObservedState(start_time=T0, preflight=PASSED), T0) == [
        StartPipeline(params={}, trial_number=None, search_ended=FinishReason.NO_SEARCH)
    ]


def test_suspend_stops_running_trials_as_suspended_and_starts_nothing() -> None:
    suspended = replace(spec(), suspend=True)
    observed = ObservedState(trials=(trial(0, S.SUCCEEDED, 0.9), trial(1, S.RUNNING)), start_time=T0)
    assert decide(suspended, observed, T0) == [StopTrial(1, StopReason.SUSPENDED)]
    assert StopReason.SUSPENDED.trial_state is S.SUSPENDED
    pipeline = ObservedState(
        trials=observed.trials[:1], pipeline=ObservedPipeline(state=PipelineState.RUNNING)
    )
    assert decide(suspended, pipeline, T0) == [StopPipeline()]


def test_resuming_runs_suspended_trials_again_before_new_ones_with_the_same_params() -> None:
    paused = trial(1, S.SUSPENDED)
    observed = ObservedState(trials=(trial(0, S.SUCCEEDED, 0.9), paused), start_time=T0)
    actions = decide(spec(), observed, T0)
    starts = _starts(actions)
    assert [s.number for s in starts] == [1, 2]  # trial 1 again, then one new trial (parallelTrials 2)
    assert starts[0].params == paused.params
    pipeline = ObservedPipeline(state=PipelineState.SUSPENDED, params={"a.b": 1}, trial_number=0)
    resumed = decide(spec(), ObservedState(trials=observed.trials[:1], pipeline=pipeline), T0)
    assert resumed == [StartPipeline(params={"a.b": 1}, trial_number=0, search_ended=FinishReason.NO_SEARCH)]


def test_a_suspended_trial_keeps_the_search_open_even_at_max_trials() -> None:
    trials = (*(trial(n, S.SUCCEEDED, 0.5) for n in range(5)), trial(5, S.SUSPENDED))
    actions = decide(spec(), ObservedState(trials=trials, start_time=T0), T0)
    assert [a.number for a in _starts(actions)] == [5]
