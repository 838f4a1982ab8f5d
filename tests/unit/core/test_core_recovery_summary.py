"""The shared retry/resume policy and the job summary both backends publish."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from core_fixtures import T0, settings_of, spec, spec_dict, trial

from optikube_operator.core import ObservedPipeline, ObservedState, PipelineState, TrialState
from optikube_operator.core.recovery import interrupted, launched, needs_launch, resumed
from optikube_operator.core.summary import summarize

S = TrialState


def test_an_interrupted_run_leaves_its_active_trials_pending_with_their_params() -> None:
    observed = ObservedState(
        trials=(trial(0, S.SUCCEEDED, 0.9), trial(1, S.RUNNING)),
        pipeline=ObservedPipeline(state=PipelineState.NOT_STARTED),
    )
    after = interrupted(observed)
    assert after.trials[0] == observed.trials[0]
    assert after.trials[1].state is S.PENDING and after.trials[1].params == observed.trials[1].params
    assert needs_launch(after.trials[1], has_run=False) and not needs_launch(after.trials[0], has_run=False)
    relaunched = launched(after.trials[1], T0, running=True)
    assert relaunched.attempts == 1 and relaunched.state is S.RUNNING and relaunched.start_time == T0


def test_resuming_retries_a_failed_pipeline_but_never_a_finished_trial() -> None:
    failed = ObservedPipeline(state=PipelineState.FAILED, message="oom", attempts=1)
    after = resumed(ObservedState(trials=(trial(0, S.FAILED),), pipeline=failed))
    assert after.pipeline.state is PipelineState.PENDING and after.pipeline.attempts == 1
    assert after.trials[0].state is S.FAILED


def test_summary_counts_the_best_trial_and_the_progress() -> None:
    done = [
        replace(trial(n, S.SUCCEEDED, 0.5 + n / 10), end_time=T0 + timedelta(seconds=10)) for n in range(3)
    ]
    observed = ObservedState(trials=(*done, trial(3, S.RUNNING), trial(4, S.PRUNED)), start_time=T0)
    summary = summarize(spec(), observed)
    assert summary.count(S.SUCCEEDED) == 3 and summary.count(S.RUNNING) == 1
    assert summary.best is not None and summary.best.number == 2
    assert [t.number for t in summary.running] == [3]
    assert summary.finished_trials == 4 and 0 < summary.percent < 75
    assert summary.eta_seconds == 10.0  # one more wave of 2 parallel trials, 10 s each


def test_multi_objective_summary_has_a_pareto_front() -> None:
    raw = spec_dict(sampler={"type": "nsga2"})
    raw["objectives"].append({"metric": "latencyMs", "direction": "minimize"})
    trials = (trial(0, S.SUCCEEDED, 0.9, latencyMs=2.0), trial(1, S.SUCCEEDED, 0.8, latencyMs=1.0))
    summary = summarize(settings_of(raw), ObservedState(trials=trials))
    assert [t.number for t in summary.pareto_front] == [0, 1]
