"""The job summary both backends publish: trial counts, the best trial, the Pareto front, the
running trials, the progress estimate and whether the validation split tells the trials apart
(local results.json, and the OptimizationJob status)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from optikube_operator.core.observed import ObservedState, ObservedTrial, PipelineState, TrialState
from optikube_operator.core.resolution import ValidationResolution, validation_resolution
from optikube_operator.core.selection import best_trial, pareto_front, select
from optikube_operator.core.settings import JobSettings

# what a trial costs against a whole job, for the progress estimate: the search, then the pipeline
PIPELINE_SHARE = 0.25


@dataclass(frozen=True)
class JobSummary:
    counts: dict[TrialState, int]
    # the trial the choice rule picks (with one objective: the best value)
    best: ObservedTrial | None
    constraints_met: bool | None
    pareto_front: tuple[ObservedTrial, ...]
    running: tuple[ObservedTrial, ...]
    percent: float
    eta_seconds: float | None = None
    finished_trials: int = field(default=0)
    # whether the validation split can tell the succeeded trials apart (None: nothing to judge)
    resolution: ValidationResolution | None = None

    def count(self, state: TrialState) -> int:
        return self.counts.get(state, 0)


def _duration(trial: ObservedTrial) -> float | None:
    if trial.start_time is None or trial.end_time is None:
        return None
    return (trial.end_time - trial.start_time).total_seconds()


def search_eta_seconds(settings: JobSettings, trials: Sequence[ObservedTrial]) -> float | None:
    """Remaining tuning time: mean finished-trial duration times the remaining waves of trials."""
    durations = [d for trial in trials if (d := _duration(trial)) is not None]
    if not durations:
        return None
    finished = sum(1 for trial in trials if trial.state.finished)
    waves = math.ceil(max(settings.max_trials - finished, 0) / max(settings.parallel_trials, 1))
    return waves * sum(durations) / len(durations)


def _percent(settings: JobSettings, observed: ObservedState, finished: int) -> float:
    pipeline = observed.pipeline.state
    if pipeline is PipelineState.SUCCEEDED:
        return 100.0
    search = 1.0 if not settings.search_space else min(finished / max(settings.max_trials, 1), 1.0)
    if pipeline is PipelineState.NOT_STARTED:
        return round(100 * (1 - PIPELINE_SHARE) * search, 1)
    return round(100 * (1 - PIPELINE_SHARE), 1)


def summarize(settings: JobSettings, observed: ObservedState) -> JobSummary:
    trials = observed.trials
    counts: dict[TrialState, int] = {}
    for trial in trials:
        counts[trial.state] = counts.get(trial.state, 0) + 1
    chosen = select(settings, trials) if settings.search_space else None
    best = chosen.trial if chosen is not None else best_trial(settings, trials)
    front = tuple(pareto_front(settings, trials)) if settings.multi_objective else ((best,) if best else ())
    finished = sum(1 for trial in trials if trial.state.finished)
    searching = observed.pipeline.state is PipelineState.NOT_STARTED and settings.search_space
    return JobSummary(
        counts=counts,
        best=best,
        constraints_met=None if chosen is None else chosen.constraints_met,
        pareto_front=front,
        running=tuple(trial for trial in trials if trial.state.active),
        percent=_percent(settings, observed, finished),
        eta_seconds=search_eta_seconds(settings, trials) if searching else None,
        finished_trials=finished,
        resolution=validation_resolution(settings, trials) if settings.search_space else None,
    )
