"""The decision function: (spec, observed state, now) -> actions. Pure and deterministic."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from optikube_operator.core.actions import (
    Action,
    Finish,
    FinishReason,
    StartPipeline,
    StartTrial,
    StopReason,
    StopTrial,
)
from optikube_operator.core.observed import ObservedState, ObservedTrial, PipelineState, TrialState
from optikube_operator.core.selection import goal_reached, select
from optikube_operator.core.settings import TuningSettings, read_settings
from optikube_operator.core.study import should_prune_trial, suggest, unvisited_grid_points


def should_prune(spec: Any, observed: ObservedState, trial_number: int, job_name: str = "optikube") -> bool:
    """The reply to a trial's intermediate report: should it stop now?"""
    settings = read_settings(spec, job_name)
    return should_prune_trial(settings, observed.trials, trial_number)


def decide(spec: Any, observed: ObservedState, now: datetime, job_name: str = "optikube") -> list[Action]:
    """What to do next. Calling it twice on the same state gives the same list."""
    settings = read_settings(spec, job_name)
    if observed.pipeline is PipelineState.SUCCEEDED:
        return [Finish(FinishReason.SUCCEEDED, succeeded=True)]
    if observed.pipeline is PipelineState.FAILED:
        return [Finish(FinishReason.PIPELINE_FAILED, succeeded=False, message=observed.pipeline_message)]
    if observed.pipeline in (PipelineState.PENDING, PipelineState.RUNNING):
        return _stop_all(observed.trials, StopReason.JOB_FINISHED)
    if not settings.search_space:
        return [StartPipeline(params={}, trial_number=None, search_ended=FinishReason.NO_SEARCH)]

    stops: list[Action] = list(_trial_stops(settings, observed, now))
    # Judge the rest of the search as if the stops had already happened.
    ending = {stop.number: stop.reason for stop in stops if isinstance(stop, StopTrial)}
    trials = tuple(_as_stopped(trial, ending.get(trial.number)) for trial in observed.trials)
    active = [trial for trial in trials if trial.state.active]

    failures = sum(1 for trial in trials if trial.state.failure)
    if settings.max_failed_trials is not None and failures > settings.max_failed_trials:
        limit = settings.max_failed_trials
        message = f"{failures} trials failed or timed out (spec.tuning.maxFailedTrials: {limit})"
        return [
            *stops,
            *_stop_all(active, StopReason.JOB_FINISHED),
            Finish(FinishReason.TOO_MANY_FAILURES, succeeded=False, message=message),
        ]

    reason = _search_end(settings, observed, trials, now)
    if reason is None:
        return [*stops, *_new_trials(settings, observed, trials)]
    if reason is FinishReason.GOAL_REACHED:
        stops = [*stops, *_stop_all(active, StopReason.JOB_FINISHED)]
    elif active:
        # The budget or the deadline stops new trials; the running ones finish (trialTimeout bounds them).
        return stops
    chosen = select(settings, trials)
    if chosen is None:
        final = FinishReason.DEADLINE_EXCEEDED if reason is FinishReason.DEADLINE_EXCEEDED else None
        return [
            *stops,
            Finish(
                final or FinishReason.NO_SUCCESSFUL_TRIAL,
                succeeded=False,
                message=f"the search ended ({reason.value}) without a successful trial",
            ),
        ]
    return [
        *stops,
        StartPipeline(
            params=dict(chosen.trial.params), trial_number=chosen.trial.number, search_ended=reason
        ),
    ]


def _stop_all(trials: tuple[ObservedTrial, ...] | list[ObservedTrial], reason: StopReason) -> list[Action]:
    return [StopTrial(trial.number, reason) for trial in trials if trial.state.active]


def _as_stopped(trial: ObservedTrial, reason: StopReason | None) -> ObservedTrial:
    if reason is None:
        return trial
    states = {
        StopReason.PRUNED: TrialState.PRUNED,
        StopReason.TIMED_OUT: TrialState.TIMED_OUT,
        StopReason.JOB_FINISHED: TrialState.STOPPED,
    }
    return replace(trial, state=states[reason])


def _trial_stops(settings: TuningSettings, observed: ObservedState, now: datetime) -> list[StopTrial]:
    stops: list[StopTrial] = []
    for trial in observed.trials:
        if not trial.state.active:
            continue
        timeout = settings.trial_timeout
        if timeout is not None and trial.start_time is not None and now - trial.start_time >= timeout:
            stops.append(StopTrial(trial.number, StopReason.TIMED_OUT))
        elif trial.state is TrialState.RUNNING and should_prune_trial(
            settings, observed.trials, trial.number
        ):
            # Normally the trainer stops on the report's reply; this catches one that did not.
            stops.append(StopTrial(trial.number, StopReason.PRUNED))
    return stops


def _search_end(
    settings: TuningSettings, observed: ObservedState, trials: tuple[ObservedTrial, ...], now: datetime
) -> FinishReason | None:
    if goal_reached(settings, trials) is not None:
        return FinishReason.GOAL_REACHED
    deadline = settings.max_duration
    if deadline is not None and observed.start_time is not None and now - observed.start_time >= deadline:
        return FinishReason.DEADLINE_EXCEEDED
    if len(trials) >= settings.max_trials:
        return FinishReason.MAX_TRIALS_REACHED
    if settings.sampler_type == "grid" and not unvisited_grid_points(settings, trials):
        return FinishReason.SEARCH_SPACE_EXHAUSTED
    return None


def _new_trials(
    settings: TuningSettings, observed: ObservedState, trials: tuple[ObservedTrial, ...]
) -> list[Action]:
    active = sum(1 for trial in trials if trial.state.active)
    count = min(settings.parallel_trials - active, settings.max_trials - len(trials))
    actions: list[Action] = []
    known = list(trials)
    number = observed.next_number
    for _ in range(max(count, 0)):
        if settings.sampler_type == "grid":
            points = unvisited_grid_points(settings, known)
            if not points:
                break
            params, attrs = points[0], {}
        else:
            suggestion = suggest(settings, known, number)
            params, attrs = suggestion.params, suggestion.sampler_attrs
        actions.append(StartTrial(number, params, attrs))
        known.append(
            ObservedTrial(number=number, params=params, state=TrialState.PENDING, sampler_attrs=attrs)
        )
        number += 1
    return actions
