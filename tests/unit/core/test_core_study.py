"""The Optuna study rebuilt from recorded trials: samplers, pruners, selection, cost."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from core_fixtures import T0, settings_of, spec, spec_dict, trial

from optikube_operator.api.outcomes import FinishReason
from optikube_operator.api.tuning import Sampler
from optikube_operator.core import (
    ObservedState,
    ObservedTrial,
    StartPipeline,
    TrialState,
    decide,
    should_prune,
)
from optikube_operator.core.selection import pareto_front, select
from optikube_operator.core.study import TuningError, grid_points, suggest

S = TrialState


@pytest.mark.parametrize("sampler", ["random", "tpe", "cmaes", "nsga2"])
def test_each_sampler_suggests_in_range_and_deterministically(sampler: str) -> None:
    settings = spec(sampler={"type": sampler, "startupTrials": 2} if sampler == "tpe" else {"type": sampler})
    trials: list[ObservedTrial] = []
    for number in range(12):
        suggestion = suggest(settings, trials, number)
        assert suggestion == suggest(settings, trials, number)
        lr = suggestion.params["training.learningRate"]
        assert 1e-4 <= lr <= 1e-1
        accuracy = 1.0 - abs(lr - 0.01)
        trials.append(
            ObservedTrial(
                number=number,
                params=suggestion.params,
                state=S.SUCCEEDED,
                values={"accuracy": accuracy},
                sampler_attrs=suggestion.sampler_attrs,
            )
        )
    assert len({tuple(sorted(t.params.items())) for t in trials}) > 8


def test_cmaes_state_travels_with_the_trials() -> None:
    settings = spec(sampler={"type": "cmaes", "populationSize": 4})
    trials: list[ObservedTrial] = []
    for number in range(14):
        suggestion = suggest(settings, trials, number)
        trials.append(
            ObservedTrial(
                number,
                suggestion.params,
                S.SUCCEEDED,
                values={"accuracy": 0.5},
                sampler_attrs=suggestion.sampler_attrs,
            )
        )
    generations = {
        t.sampler_attrs.get("cma:generation") for t in trials if "cma:generation" in t.sampler_attrs
    }
    # CMA-ES advanced past its first generation only because its state was handed back.
    assert generations and max(g for g in generations if g is not None) >= 1


def test_hyperband_prunes_a_laggard_and_keeps_a_leader() -> None:
    epochs = 9
    pruner = {"type": "hyperband", "minResource": 1, "reductionFactor": 3}
    job = spec(pruner=pruner, maxTrials=40)
    finished = [
        trial(n, S.SUCCEEDED, 0.5 + 0.04 * n, curve=[0.3 + 0.04 * n + 0.02 * s for s in range(epochs)])
        for n in range(9)
    ]
    # Trial 9 falls in Hyperband's most aggressive bracket (rungs at epochs 1, 3, 9) for this study.
    laggard = trial(9, S.RUNNING, curve=[0.01 * s for s in range(2)])
    leader = trial(9, S.RUNNING, curve=[0.9 + 0.001 * s for s in range(2)])
    assert should_prune(job, ObservedState(trials=(*finished, laggard)), 9)
    assert not should_prune(job, ObservedState(trials=(*finished, leader)), 9)


def test_successive_halving_uses_rungs_rebuilt_from_reports() -> None:
    pruner = {"type": "successiveHalving", "minResource": 1, "reductionFactor": 2}
    job = spec(pruner=pruner, maxTrials=40)
    others = [trial(n, S.SUCCEEDED, 0.9, curve=[0.5, 0.8, 0.85, 0.9]) for n in range(4)]
    assert should_prune(job, ObservedState(trials=(*others, trial(4, S.RUNNING, curve=[0.1, 0.2]))), 4)
    assert not should_prune(job, ObservedState(trials=(*others, trial(4, S.RUNNING, curve=[0.6, 0.9]))), 4)


def test_no_pruner_never_prunes() -> None:
    others = [trial(n, S.SUCCEEDED, 0.9, curve=[0.9, 0.9]) for n in range(5)]
    observed = ObservedState(trials=(*others, trial(5, S.RUNNING, curve=[0.0, 0.0])))
    assert not should_prune(spec(), observed, 5)


def test_multi_objective_pareto_front_and_selection_with_constraints() -> None:
    job = spec_dict(
        sampler={"type": "nsga2"},
        selection={"constraints": [{"metric": "latencyMs", "max": 2.0}]},
    )
    job["objectives"] = [
        {"metric": "accuracy", "direction": "maximize"},
        {"metric": "latencyMs", "direction": "minimize"},
    ]
    trials = (
        trial(0, S.SUCCEEDED, 0.95, latencyMs=3.0),  # most accurate, too slow
        trial(1, S.SUCCEEDED, 0.92, latencyMs=1.5),  # best within the constraint
        trial(2, S.SUCCEEDED, 0.80, latencyMs=0.5),  # fastest
        trial(3, S.SUCCEEDED, 0.85, latencyMs=1.8),  # dominated by 1
        trial(4, S.FAILED),
    )
    settings = settings_of(job)
    assert [t.number for t in pareto_front(settings, trials)] == [0, 1, 2]
    chosen = select(settings, trials)
    assert chosen is not None and chosen.trial.number == 1 and chosen.constraints_met
    strict = settings_of(
        {
            **job,
            "tuning": {**job["tuning"], "selection": {"constraints": [{"metric": "latencyMs", "max": 0.1}]}},
        }
    )
    fallback = select(strict, trials)
    assert fallback is not None and fallback.trial.number == 0 and not fallback.constraints_met
    five = settings_of(job | {"tuning": {**job["tuning"], "maxTrials": 5}})
    done = decide(five, ObservedState(trials=trials), T0)
    assert done == [
        StartPipeline(params=trials[1].params, trial_number=1, search_ended=FinishReason.MAX_TRIALS_REACHED)
    ]


def test_grid_needs_finite_values() -> None:
    # validation refuses such a spec first (a CRD rule); the core names the field all the same
    settings = replace(spec(), sampler=Sampler(type="grid"))
    with pytest.raises(TuningError, match=r'searchSpace\["training.learningRate"\]'):
        grid_points(settings)


def test_rebuilding_500_trials_is_cheap() -> None:
    settings = spec(sampler={"type": "tpe"}, maxTrials=1000, pruner={"type": "hyperband"})
    trials = [
        trial(n, S.SUCCEEDED if n % 3 else S.PRUNED, 0.5 + (n % 17) / 100, curve=[0.1 * s for s in range(5)])
        for n in range(500)
    ]
    observed = ObservedState(trials=(*trials, trial(500, S.RUNNING, curve=[0.05, 0.1, 0.2])), start_time=T0)
    started = time.perf_counter()
    should_prune(spec(pruner={"type": "hyperband"}, maxTrials=1000), observed, 500)
    suggest(settings, trials, 500)
    assert time.perf_counter() - started < 5.0
