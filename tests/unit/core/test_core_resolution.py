"""Whether the validation split can tell the trials apart, counted in validation samples."""

from __future__ import annotations

import copy

from core_fixtures import BASE_SPEC, settings_of, spec, trial

from optikube_operator.core import ObservedState, ObservedTrial, TrialState
from optikube_operator.core.resolution import REASON_SPREAD, REASON_TOO_SMALL, validation_resolution
from optikube_operator.core.summary import summarize

S = TrialState
N = 30  # iris's validation split at the default 0.2: one sample is worth 1/30 of an accuracy


def _scored(number: int, correct: int, samples: int = N) -> ObservedTrial:
    return trial(
        number, S.SUCCEEDED, correct / samples, valLoss=0.1 * (number + 1), validationSamples=samples
    )


def test_trials_within_one_validation_sample_cannot_be_told_apart_and_the_job_suggests_k_fold() -> None:
    trials = (_scored(0, 29), _scored(1, 30), _scored(2, 29), trial(3, S.FAILED))
    verdict = validation_resolution(spec(), trials)
    assert verdict is not None and not verdict.distinguishable
    assert (verdict.samples, verdict.trials, verdict.samples_apart) == (N, 3, 1)
    assert verdict.reason == REASON_TOO_SMALL
    assert "spec.data.crossValidation" in verdict.message and "30 samples" in verdict.message
    summary = summarize(spec(), ObservedState(trials=trials))
    assert summary.resolution == verdict


def test_scores_two_samples_apart_are_told_apart() -> None:
    verdict = validation_resolution(spec(), (_scored(0, 28), _scored(1, 30)))
    assert verdict is not None and verdict.distinguishable and verdict.samples_apart == 2
    assert verdict.reason == REASON_SPREAD and "crossValidation" not in verdict.message


def test_the_same_spread_on_a_larger_split_is_many_samples() -> None:
    # 0.9 vs 0.933: one sample of 30, but 100 samples of 3000
    small = validation_resolution(spec(), (_scored(0, 27), _scored(1, 28)))
    large = validation_resolution(spec(), (_scored(0, 2700, 3000), _scored(1, 2800, 3000)))
    assert small is not None and not small.distinguishable
    assert large is not None and large.distinguishable and large.samples_apart == 100


def test_with_cross_validation_on_the_message_asks_for_more_data_not_for_k_fold() -> None:
    raw = copy.deepcopy(BASE_SPEC)
    raw["data"]["crossValidation"] = {"folds": 5}
    verdict = validation_resolution(settings_of(raw), (_scored(0, 149, 150), _scored(1, 149, 150)))
    assert verdict is not None and not verdict.distinguishable
    assert "5-fold cross-validation" in verdict.message and "More data" in verdict.message


def test_nothing_is_judged_without_two_scored_trials_a_counted_metric_or_a_sample_count() -> None:
    assert validation_resolution(spec(), (_scored(0, 29), trial(1, S.RUNNING))) is None
    # an older trainer's records carry no sample count
    assert validation_resolution(spec(), (trial(0, S.SUCCEEDED, 0.9), trial(1, S.SUCCEEDED, 0.9))) is None
    raw = copy.deepcopy(BASE_SPEC)
    raw["objectives"] = [{"metric": "valLoss", "direction": "minimize"}]  # continuous: no sample steps
    assert validation_resolution(settings_of(raw), (_scored(0, 29), _scored(1, 29))) is None
