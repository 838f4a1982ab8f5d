"""Which trial wins a tie of the objectives: the validation loss, then fewer parameters."""

from __future__ import annotations

from core_fixtures import T0, settings_of, spec, spec_dict, trial

from optikube_operator.api.outcomes import FinishReason
from optikube_operator.core import ObservedState, StartPipeline, TrialState, decide
from optikube_operator.core.selection import best_trial, pareto_front, select
from optikube_operator.core.summary import summarize

S = TrialState


def test_a_tie_of_accuracy_goes_to_the_lower_validation_loss_not_the_lower_number() -> None:
    # the issue's case: the same accuracy, trial 0's loss 400x worse
    trials = (
        trial(0, S.SUCCEEDED, 0.9, valLoss=40.0, parameters=1000),
        trial(1, S.SUCCEEDED, 0.9, valLoss=0.1, parameters=1000),
        trial(2, S.SUCCEEDED, 0.8, valLoss=0.05, parameters=10),  # lower accuracy: never chosen
    )
    settings = spec()
    chosen = select(settings, trials)
    assert chosen is not None and chosen.trial.number == 1
    best = best_trial(settings, trials)
    assert best is not None and best.number == 1
    summary = summarize(settings, ObservedState(trials=trials))
    assert summary.best is not None and summary.best.number == 1


def test_a_tie_of_accuracy_and_loss_goes_to_fewer_parameters() -> None:
    trials = (
        trial(0, S.SUCCEEDED, 0.9, valLoss=0.2, parameters=5000),
        trial(1, S.SUCCEEDED, 0.9, valLoss=0.2, parameters=800),
        trial(2, S.SUCCEEDED, 0.9, valLoss=0.2, parameters=3000),
    )
    chosen = select(spec(), trials)
    assert chosen is not None and chosen.trial.number == 1


def test_only_a_full_tie_falls_back_to_the_lowest_number_and_missing_values_rank_last() -> None:
    same = (
        trial(3, S.SUCCEEDED, 0.9, valLoss=0.2, parameters=800),
        trial(1, S.SUCCEEDED, 0.9, valLoss=0.2, parameters=800),
    )
    chosen = select(spec(), same)
    assert chosen is not None and chosen.trial.number == 1
    # a record without a loss (an older trainer's, or a diverged one) loses the tie to one with it
    partial = (trial(0, S.SUCCEEDED, 0.9), trial(1, S.SUCCEEDED, 0.9, valLoss=3.0))
    chosen = select(spec(), partial)
    assert chosen is not None and chosen.trial.number == 1


def test_the_final_pipeline_gets_the_tie_winners_params() -> None:
    settings = settings_of(spec_dict(maxTrials=2))
    trials = (
        trial(0, S.SUCCEEDED, 1.0, valLoss=0.8, parameters=900),
        trial(1, S.SUCCEEDED, 1.0, valLoss=0.002, parameters=900),
    )
    actions = decide(settings, ObservedState(trials=trials), T0)
    assert actions == [
        StartPipeline(params=trials[1].params, trial_number=1, search_ended=FinishReason.MAX_TRIALS_REACHED)
    ]


def test_several_objectives_keep_pareto_semantics_and_break_remaining_ties_by_loss() -> None:
    raw = spec_dict(sampler={"type": "nsga2"})
    raw["objectives"].append({"metric": "latencyMs", "direction": "minimize"})
    settings = settings_of(raw)
    trials = (
        # dominated by 1 (same accuracy, slower): its far lower loss cannot make it chosen
        trial(0, S.SUCCEEDED, 0.9, latencyMs=2.0, valLoss=0.01),
        trial(1, S.SUCCEEDED, 0.9, latencyMs=1.0, valLoss=0.5),
        trial(2, S.SUCCEEDED, 0.9, latencyMs=1.0, valLoss=0.3),
    )
    assert [t.number for t in pareto_front(settings, trials)] == [1, 2]
    chosen = select(settings, trials)
    assert chosen is not None and chosen.trial.number == 2
