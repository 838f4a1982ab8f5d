"""Optuna study management: samplers and a study rebuilt from recorded trials.

The study is never the source of truth. It is rebuilt in memory from the observed trials each
time the core needs it (cheap: a few milliseconds at 500 trials), so a restarted operator or CLI
continues the same search. Two things make this deterministic and restart-safe:

* every suggestion uses a fresh sampler seeded from (job seed, trial number), so the params of
  trial k depend only on the trials recorded before it, not on how many times anybody asked;
* the system attributes a sampler writes while suggesting (CMA-ES's optimizer state, NSGA-II's
  generation) are returned with the suggestion, recorded with the trial, and put back on rebuild.

Only Optuna's public API is used here (`create_trial`, `add_trials`, `ask`, `get_trials`).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.storages import InMemoryStorage
from optuna.trial import FrozenTrial
from optuna.trial import TrialState as OptunaState

from optikube_operator.api.tuning import DEFAULT_NSGA2_POPULATION, Parameter
from optikube_operator.core.observed import ObservedTrial, TrialState
from optikube_operator.core.settings import JobSettings
from optikube_operator.core.trial_pruners import make_trial_pruner, rung_attrs

optuna.logging.set_verbosity(optuna.logging.WARNING)

SAMPLERS = ("grid", "random", "tpe", "gp", "cmaes", "nsga2")


class TuningError(ValueError):
    """A search setting the core cannot turn into a study; the message names the field."""


@dataclass(frozen=True)
class Suggestion:
    params: dict[str, Any]
    sampler_attrs: dict[str, Any]


def distribution(name: str, param: Parameter) -> BaseDistribution:
    path = f'spec.tuning.searchSpace["{name}"]'
    if param.type == "categorical":
        if not param.choices:
            raise TuningError(f"{path}.choices: a categorical parameter needs choices")
        return CategoricalDistribution(list(param.choices))
    if param.low is None or param.high is None:
        raise TuningError(f"{path}: {param.type} parameters need low and high")
    if param.type == "int":
        step = 1 if param.step is None else int(param.step)
        return IntDistribution(int(param.low), int(param.high), log=param.log, step=step)
    return FloatDistribution(float(param.low), float(param.high), log=param.log, step=param.step)


def distributions(settings: JobSettings) -> dict[str, BaseDistribution]:
    return {name: distribution(name, param) for name, param in settings.search_space.items()}


def in_space(param: Parameter, value: Any) -> bool:
    """Whether ``value`` is one the dimension can produce (a trial recorded under another space may not)."""
    if param.type == "categorical":
        return any(type(value) is type(choice) and value == choice for choice in param.choices or [])
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if param.type == "int" and not float(value).is_integer():
        return False
    low, high = param.low, param.high
    if low is None or high is None or not low <= value <= high:
        return False
    if param.step is not None:
        ratio = (value - low) / param.step
        return abs(ratio - round(ratio)) < 1e-8
    return True


def trial_seed(seed: int, number: int) -> int:
    return (seed * 1_000_003 + number * 7919 + 17) % (2**32)


def make_sampler(settings: JobSettings, number: int) -> optuna.samplers.BaseSampler:
    sampler = settings.sampler
    seed = trial_seed(settings.sampler_seed, number)
    startup = sampler.effective_startup_trials()
    if sampler.type == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if sampler.type == "tpe":
        # constant_liar keeps parallel trials apart; multivariate models parameter interactions.
        return optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=startup, multivariate=True, constant_liar=True
        )
    if sampler.type == "gp":
        try:
            import torch  # noqa: F401  (Optuna's GP sampler is written in torch)
        except ImportError as error:
            raise TuningError(
                "spec.tuning.sampler.type: gp needs torch where the operator runs "
                "(install optikube[trainer]); use tpe otherwise"
            ) from error
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup)
    if sampler.type == "cmaes":
        return optuna.samplers.CmaEsSampler(
            seed=seed, popsize=sampler.population_size, warn_independent_sampling=False
        )
    if sampler.type == "nsga2":
        population = sampler.population_size or DEFAULT_NSGA2_POPULATION
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=population)
    raise TuningError("grid suggestions come from grid_points, not from a sampler")


def _objective_values(settings: JobSettings, trial: ObservedTrial) -> list[float] | None:
    values = [trial.values.get(objective.metric) for objective in settings.objectives]
    if any(value is None or not math.isfinite(float(value)) for value in values):
        return None
    return [float(value) for value in values if value is not None]


def _frozen(
    settings: JobSettings,
    trial: ObservedTrial,
    dists: Mapping[str, BaseDistribution],
    *,
    single_objective: bool,
    extra_attrs: Mapping[str, Any],
) -> FrozenTrial:
    params = dict(trial.params)
    usable = set(params) == set(dists) and all(
        in_space(settings.search_space[name], value) for name, value in params.items()
    )
    if not usable:
        # Recorded under another search space: keep its number (Hyperband brackets and grid
        # bookkeeping depend on dense numbers) but let it inform nothing.
        return optuna.trial.create_trial(state=OptunaState.FAIL)
    values = _objective_values(settings, trial)
    common: dict[str, Any] = {
        "params": params,
        "distributions": dict(dists),
        "intermediate_values": dict(trial.intermediate),
        "system_attrs": {**trial.sampler_attrs, **extra_attrs},
    }
    if trial.state is TrialState.SUCCEEDED and values is not None:
        return optuna.trial.create_trial(
            state=OptunaState.COMPLETE, values=values[:1] if single_objective else values, **common
        )
    if trial.state in (TrialState.PRUNED, TrialState.STOPPED):
        return optuna.trial.create_trial(state=OptunaState.PRUNED, **common)
    if trial.state.active or trial.state is TrialState.SUSPENDED:
        # a suspended trial runs again with these params: the sampler must keep away from them
        return optuna.trial.create_trial(state=OptunaState.RUNNING, **common)
    return optuna.trial.create_trial(state=OptunaState.FAIL, **common)


def build_study(
    settings: JobSettings,
    trials: Iterable[ObservedTrial],
    *,
    sampler: optuna.samplers.BaseSampler | None = None,
    for_trial_pruner: bool = False,
    judged: int | None = None,
) -> optuna.Study:
    """An in-memory study holding ``trials`` in number order (Optuna numbers == ours)."""
    dists = distributions(settings)
    directions = [settings.primary] if for_trial_pruner else list(settings.objectives)
    pruner = make_trial_pruner(settings) if for_trial_pruner else optuna.pruners.NopPruner()
    study = optuna.create_study(
        storage=InMemoryStorage(),
        sampler=sampler or optuna.samplers.RandomSampler(seed=settings.sampler_seed),
        pruner=pruner,
        study_name=settings.job_name,
        directions=[objective.direction for objective in directions],
    )
    ordered = sorted(trials, key=lambda trial: trial.number)
    frozen: list[FrozenTrial] = []
    for trial in ordered:
        while len(frozen) < trial.number:  # a hole in the numbering: keep numbers aligned
            frozen.append(optuna.trial.create_trial(state=OptunaState.FAIL))
        rungs = _rungs(study, trial, judged) if for_trial_pruner else {}
        frozen.append(_frozen(settings, trial, dists, single_objective=for_trial_pruner, extra_attrs=rungs))
    study.add_trials(frozen)
    return study


def _rungs(study: optuna.Study, trial: ObservedTrial, judged: int | None) -> dict[str, float]:
    """The rung records successive halving and Hyperband keep on trials, rebuilt from reports."""
    series = dict(trial.intermediate)
    # The newest step of the trial being judged is judged live by the pruner, not restored.
    if trial.number == judged and series:
        series = {step: value for step, value in series.items() if step < max(series)}
    return rung_attrs(study, trial.number, series) if series else {}


def suggest(settings: JobSettings, trials: Sequence[ObservedTrial], number: int) -> Suggestion:
    """The params for trial ``number``, given every recorded trial (new ones included)."""
    sampler = make_sampler(settings, number)
    study = build_study(settings, trials, sampler=sampler)
    if len(study.get_trials(deepcopy=False)) != number:
        raise ValueError(f"trial numbers are not dense: cannot suggest trial {number}")
    trial = study.ask(distributions(settings))
    frozen = study.get_trials(deepcopy=False)[trial.number]
    return Suggestion(params=dict(frozen.params), sampler_attrs=dict(frozen.system_attrs))


def grid_points(settings: JobSettings) -> list[dict[str, Any]]:
    """Every grid point, in an order shuffled by the seed (so a truncated grid is a fair sample)."""
    axes: list[list[Any]] = []
    for name, param in settings.search_space.items():
        if param.type == "categorical":
            axes.append(list(param.choices or []))
        elif param.type == "int" and param.low is not None and param.high is not None:
            axes.append(list(range(int(param.low), int(param.high) + 1, int(param.step or 1))))
        elif param.type == "float" and param.step and param.low is not None and param.high is not None:
            count = math.floor((param.high - param.low) / param.step + 1e-9) + 1
            axes.append([round(param.low + i * param.step, 12) for i in range(count)])
        else:
            raise TuningError(
                f'spec.tuning.searchSpace["{name}"]: grid search needs choices, an int range or a float step'
            )
    names = list(settings.search_space)
    points = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes)]
    random.Random(settings.sampler_seed).shuffle(points)
    return points


def _key(params: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((name, repr(value)) for name, value in params.items()))


def unvisited_grid_points(settings: JobSettings, trials: Iterable[ObservedTrial]) -> list[dict[str, Any]]:
    seen = {_key(trial.params) for trial in trials}
    return [point for point in grid_points(settings) if _key(point) not in seen]


def should_prune_trial(settings: JobSettings, trials: Sequence[ObservedTrial], number: int) -> bool:
    if settings.pruner.type == "none":
        return False
    target = next((trial for trial in trials if trial.number == number), None)
    if target is None or not target.state.active or not target.intermediate:
        return False
    if not _may_prune(settings, trials, target):
        return False
    study = build_study(settings, trials, for_trial_pruner=True, judged=number)
    frozen = study.get_trials(deepcopy=False)[number]
    return bool(study.pruner.prune(study, frozen))


def _may_prune(settings: JobSettings, trials: Sequence[ObservedTrial], target: ObservedTrial) -> bool:
    """False when the median or percentile pruner is sure to answer no, without building the study
    (every intermediate progress asks, and the study is most of a reply's cost): Optuna's prunes
    nothing before `startupTrials` trials completed (at least one) nor before `warmupSteps`. Counting
    succeeded trials over-counts the completed ones, so a True here still asks Optuna."""
    pruner = settings.pruner
    if pruner.type not in ("median", "percentile"):
        return True
    succeeded = sum(1 for trial in trials if trial.state is TrialState.SUCCEEDED)
    return succeeded >= max(1, pruner.startup_trials) and max(target.intermediate) >= pruner.warmup_steps


def preflight(settings: JobSettings) -> None:
    """Raise TuningError for search settings the core cannot use, before anything starts."""
    if not settings.search_space:
        return
    distributions(settings)
    if settings.sampler.type == "grid":
        grid_points(settings)
    else:
        make_sampler(settings, 0)
