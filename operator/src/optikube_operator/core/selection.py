"""Best trial, Pareto front and the rule that picks the final pipeline's params.

The rule (documented in docs/tuning.md):

1. Candidates are the succeeded trials that report every objective and meet every constraint of
   ``spec.tuning.selection.constraints``.
2. Among the candidates' Pareto front (over all objectives), pick the best value of the
   primary objective; ties go to the next objectives in order, then to the lower validation loss
   (``valLoss``), then to fewer parameters, and only then to the lowest trial number.
3. When no trial meets the constraints, the same choice is made over all succeeded trials and
   the result says the constraints were not met.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from optikube_operator.api.objectives import Objective
from optikube_operator.core.observed import ObservedTrial, TrialState
from optikube_operator.core.settings import JobSettings


@dataclass(frozen=True)
class Selection:
    trial: ObservedTrial
    constraints_met: bool


def _complete(settings: JobSettings, trials: Sequence[ObservedTrial]) -> list[ObservedTrial]:
    return [
        trial
        for trial in trials
        if trial.state is TrialState.SUCCEEDED
        and all(objective.metric in trial.values for objective in settings.objectives)
    ]


def dominates(settings: JobSettings, a: ObservedTrial, b: ObservedTrial) -> bool:
    better_somewhere = False
    for objective in settings.objectives:
        va = objective.oriented(a.values[objective.metric])
        vb = objective.oriented(b.values[objective.metric])
        if va < vb:
            return False
        better_somewhere = better_somewhere or va > vb
    return better_somewhere


def pareto_front(settings: JobSettings, trials: Sequence[ObservedTrial]) -> list[ObservedTrial]:
    complete = _complete(settings, trials)
    front = [t for t in complete if not any(dominates(settings, other, t) for other in complete)]
    return sorted(front, key=lambda trial: trial.number)


# What breaks a tie of the objectives, smaller first: accuracy counts whole validation samples, so
# on a small split trials tie often, and the loss (a continuous score of the same predictions)
# still tells them apart; then the smaller model; the trial number only makes the order total.
TIE_BREAKERS = ("valLoss", "parameters")


def _smaller_first(trial: ObservedTrial, metric: str) -> float:
    value = trial.values.get(metric)
    return float(value) if value is not None and math.isfinite(value) else math.inf


def _ranking_key(
    settings: JobSettings, trial: ObservedTrial, objectives: Sequence[Objective] | None = None
) -> tuple[float, ...]:
    keys = [-o.oriented(trial.values[o.metric]) for o in objectives or settings.objectives]
    ties = [_smaller_first(trial, metric) for metric in TIE_BREAKERS]
    return (*keys, *ties, float(trial.number))


def select(settings: JobSettings, trials: Sequence[ObservedTrial]) -> Selection | None:
    complete = _complete(settings, trials)
    if not complete:
        return None
    candidates = [t for t in complete if all(c.met(t.values) for c in settings.constraints)]
    constraints_met = bool(candidates)
    pool = pareto_front(settings, candidates if candidates else complete)
    best = min(pool, key=lambda trial: _ranking_key(settings, trial))
    return Selection(trial=best, constraints_met=constraints_met)


def best_trial(settings: JobSettings, trials: Sequence[ObservedTrial]) -> ObservedTrial | None:
    """The best trial by the primary objective alone (ties: validation loss, parameters, number)."""
    complete = _complete(settings, trials)
    if not complete:
        return None
    return min(complete, key=lambda t: _ranking_key(settings, t, (settings.primary,)))


def goal_reached(settings: JobSettings, trials: Sequence[ObservedTrial]) -> ObservedTrial | None:
    if settings.goal is None:
        return None
    goal = settings.goal
    for trial in sorted(_complete(settings, trials), key=lambda t: t.number):
        meets = all(c.met(trial.values) for c in settings.constraints)
        if meets and settings.primary.reaches(trial.values[settings.primary.metric], goal):
            return trial
    return None
