"""The pruners judge a study rebuilt from records exactly as Optuna judges a live study.

`core.pruners.halving_parameters` reads Optuna's private successive-halving and Hyperband
attributes (nothing public exposes them); these tests fail loudly if an Optuna upgrade changes
them, by comparing every prune decision with a live study driven through Optuna's public API.
"""

from __future__ import annotations

import random

import optuna
import pytest
from core_fixtures import spec

from optikube_operator.core import ObservedState, ObservedTrial, TrialState
from optikube_operator.core.study import build_study, distributions, should_prune_trial
from optikube_operator.core.trial_pruners import halving_parameters, make_trial_pruner

TRIAL_PRUNERS = [
    {"type": "successiveHalving", "minResource": 1, "reductionFactor": 2},
    {"type": "hyperband", "minResource": 1, "reductionFactor": 3},
    {"type": "median", "startupTrials": 2, "warmupSteps": 1},
    {"type": "percentile", "percentile": 40.0, "startupTrials": 3, "warmupSteps": 2},
]


def _curve(seed: int, steps: int) -> list[float]:
    rng = random.Random(seed)
    quality = rng.uniform(0.2, 0.9)
    return [quality * (step + 1) / steps + rng.uniform(-0.02, 0.02) for step in range(steps)]


@pytest.mark.parametrize("pruner", TRIAL_PRUNERS, ids=[p["type"] for p in TRIAL_PRUNERS])
def test_rebuilt_studies_prune_exactly_like_a_live_one(pruner: dict[str, object]) -> None:
    settings = spec(pruner=pruner, maxTrials=40)
    live = optuna.create_study(
        study_name=settings.job_name, direction="maximize", pruner=make_trial_pruner(settings)
    )
    recorded: list[ObservedTrial] = []
    decisions = {"live": [], "rebuilt": []}  # type: dict[str, list[bool]]
    for number in range(16):
        trial = live.ask(distributions(settings))
        params = dict(trial.params)
        series: dict[int, float] = {}
        state = TrialState.SUCCEEDED
        for step, value in enumerate(_curve(number, settings.steps_per_trial)):
            trial.report(value, step)
            series[step] = value
            running = ObservedTrial(
                number=number, params=params, state=TrialState.RUNNING, intermediate=series
            )
            rebuilt = should_prune_trial(settings, (*recorded, running), number)
            pruned = trial.should_prune()
            decisions["live"].append(pruned)
            decisions["rebuilt"].append(rebuilt)
            if pruned:
                state = TrialState.PRUNED
                live.tell(trial, state=optuna.trial.TrialState.PRUNED)
                break
        else:
            live.tell(trial, series[max(series)])
        values = {"accuracy": series[max(series)]} if state is TrialState.SUCCEEDED else {}
        recorded.append(
            ObservedTrial(number=number, params=params, state=state, intermediate=dict(series), values=values)
        )
    assert decisions["rebuilt"] == decisions["live"]
    assert any(decisions["live"]), "the scenario must prune something to compare"


def test_a_median_pruner_before_its_startup_trials_answers_without_building_a_study(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every intermediate progress asks the pruner, and rebuilding the study was most of a reply's
    cost; before `startupTrials` trials succeeded (or before `warmupSteps`) Optuna cannot prune."""
    import optikube_operator.core.study as study

    settings = spec(pruner={"type": "median", "startupTrials": 2, "warmupSteps": 1})

    def no_study(*args: object, **kwargs: object) -> None:
        raise AssertionError("the study was built")

    monkeypatch.setattr(study, "build_study", no_study)
    running = ObservedTrial(number=1, params={}, state=TrialState.RUNNING, intermediate={0: 0.1, 1: 0.1})
    done = ObservedTrial(number=0, params={}, state=TrialState.SUCCEEDED, intermediate={0: 0.9}, values={})
    assert should_prune_trial(settings, (done, running), 1) is False  # one succeeded, two needed
    early = ObservedTrial(number=3, params={}, state=TrialState.RUNNING, intermediate={0: 0.1})
    assert should_prune_trial(settings, (done, done, early), 3) is False  # within the warm-up


def test_optunas_private_halving_attributes_are_still_there() -> None:
    halving = spec(pruner={"type": "successiveHalving", "minResource": 2, "reductionFactor": 4})
    study = build_study(halving, [], for_trial_pruner=True)
    assert halving_parameters(study, 0) == (2, 4, 0)
    hyperband = spec(pruner={"type": "hyperband", "minResource": 1, "reductionFactor": 3})
    study = build_study(hyperband, [], for_trial_pruner=True)
    brackets = {halving_parameters(study, number) for number in range(50)}
    assert len(brackets) > 1 and all(b is not None and b[:2] == (1, 3) for b in brackets)
    assert (
        halving_parameters(build_study(spec(pruner={"type": "median"}), [], for_trial_pruner=True), 0) is None
    )
    observed = ObservedState()
    assert not should_prune_trial(hyperband, observed.trials, 0)
