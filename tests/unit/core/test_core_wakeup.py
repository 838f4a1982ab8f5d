"""next_deadline is the moment decide's answer changes with nothing else observed."""

from __future__ import annotations

from datetime import timedelta

from core_fixtures import T0, spec, trial

from optikube_operator.core import ObservedState, PipelineState, TrialState
from optikube_operator.core.decide import decide
from optikube_operator.core.observed import ObservedPipeline
from optikube_operator.core.wakeup import next_deadline

S = TrialState
TICK = timedelta(microseconds=1)


def test_a_running_trials_timeout_is_the_moment_decide_stops_it() -> None:
    settings = spec(trialTimeout="10m", maxTrials=2)
    observed = ObservedState(
        trials=(trial(0, S.RUNNING), trial(1, S.RUNNING, started=timedelta(minutes=4))), start_time=T0
    )
    due = next_deadline(settings, observed, T0 + timedelta(minutes=5))
    assert due == T0 + timedelta(minutes=10)
    assert decide(settings, observed, due - TICK) == []
    assert decide(settings, observed, due) != []
    # after it the next one is trial 1's
    assert next_deadline(settings, observed, due) == T0 + timedelta(minutes=14)


def test_the_search_deadline_is_the_moment_decide_ends_the_search() -> None:
    settings = spec(maxDuration="1h", maxTrials=3, parallelTrials=1)
    observed = ObservedState(trials=(trial(0, S.SUCCEEDED, 0.7),), start_time=T0)
    due = next_deadline(settings, observed, T0 + timedelta(minutes=1))
    assert due == T0 + timedelta(hours=1)
    before, at = decide(settings, observed, due - TICK), decide(settings, observed, due)
    assert before != at


def test_nothing_timed_means_only_events_move_the_job() -> None:
    observed = ObservedState(trials=(trial(0, S.RUNNING),), start_time=T0)
    assert next_deadline(spec(), observed, T0) is None
    # a past deadline has had its pass: it is not a reason to wake again and again
    late = T0 + timedelta(hours=2)
    assert next_deadline(spec(maxDuration="1h"), observed, late) is None
    # the search is over once the pipeline started: maxDuration no longer applies
    pipeline = ObservedState(
        trials=(trial(0, S.SUCCEEDED, 0.9),),
        pipeline=ObservedPipeline(state=PipelineState.RUNNING),
        start_time=T0,
    )
    assert next_deadline(spec(maxDuration="1h"), pipeline, T0) is None
