"""The decision function: (settings, observed state, now) -> actions. Pure and deterministic."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from optikube_operator.api.outcomes import FinishReason
from optikube_operator.core.actions import (
    Action,
    Finish,
    StartPipeline,
    StartPreflight,
    StartTrial,
    StopPipeline,
    StopReason,
    StopTrial,
)
from optikube_operator.core.observed import (
    ObservedState,
    ObservedTrial,
    PipelineState,
    PreflightState,
    TrialState,
)
from optikube_operator.core.selection import goal_reached, select
from optikube_operator.core.settings import JobSettings
from optikube_operator.core.study import should_prune_trial, suggest, unvisited_grid_points


def should_prune(settings: JobSettings, observed: ObservedState, trial_number: int) -> bool:
    """The reply to a trial's intermediate progress: should it stop now?"""
    return should_prune_trial(settings, observed.trials, trial_number)


def decide(settings: JobSettings, observed: ObservedState, now: datetime) -> list[Action]:
    """What to do next. Calling it twice on the same state gives the same list."""
    pipeline = observed.pipeline
    if pipeline.state is PipelineState.SUCCEEDED:
        return [Finish(FinishReason.SUCCEEDED, succeeded=True)]
    if pipeline.state is PipelineState.FAILED:
        return [Finish(FinishReason.PIPELINE_FAILED, succeeded=False, message=pipeline.message)]
    if settings.suspend:
        stops: list[Action] = _stop_all(observed.trials, StopReason.SUSPENDED)
        return [*stops, StopPipeline()] if pipeline.state.active else stops
    if pipeline.state is PipelineState.SUSPENDED:
        # resumed: the same pipeline again, from its last finished stage
        return [
            StartPipeline(
                params=dict(pipeline.params),
                trial_number=pipeline.trial_number,
                search_ended=FinishReason(pipeline.search_ended or FinishReason.NO_SEARCH),
            )
        ]
    if pipeline.state.active:
        return _stop_all(observed.trials, StopReason.JOB_FINISHED)
    preflight = _preflight_step(observed)
    if preflight is not None:
        return preflight
    if not settings.search_space:
        return [StartPipeline(params={}, trial_number=None, search_ended=FinishReason.NO_SEARCH)]

    stops = list(_trial_stops(settings, observed, now))
    # Judge the rest of the search as if the stops had already happened.
    ending = {stop.number: stop.reason for stop in stops if isinstance(stop, StopTrial)}
    trials = tuple(_as_stopped(trial, ending.get(trial.number)) for trial in observed.trials)
    active = [trial for trial in trials if trial.state.active]

    failures = sum(1 for trial in trials if trial.state.failure)
    if failures > settings.max_failed_trials:
        limit = settings.max_failed_trials
        message = f"{failures} trials failed or timed out (spec.tuning.maxFailedTrials: {limit})"
        return [
            *stops,
            *_stop_all(active, StopReason.JOB_FINISHED),
            Finish(FinishReason.TOO_MANY_FAILURES, succeeded=False, message=message),
        ]

    reason = _search_end(settings, observed, trials, now)
    if reason is None:
        return [*stops, *_resumed_trials(settings, trials), *_new_trials(settings, observed, trials)]
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


def _preflight_step(observed: ObservedState) -> list[Action] | None:
    """The preflight comes before the first launch, once: None when it has passed, or when the job
    launched runs without one (recorded by an earlier version), so that nothing runs twice."""
    preflight = observed.preflight
    if preflight.state is PreflightState.PASSED:
        return None
    if preflight.state is PreflightState.FAILED:
        return [Finish(FinishReason.PREFLIGHT_FAILED, succeeded=False, message=preflight.message)]
    if observed.trials or observed.pipeline.state is not PipelineState.NOT_STARTED:
        return None
    return [] if preflight.state is PreflightState.RUNNING else [StartPreflight()]


def _stop_all(trials: tuple[ObservedTrial, ...] | list[ObservedTrial], reason: StopReason) -> list[Action]:
    return [StopTrial(trial.number, reason) for trial in trials if trial.state.active]


def _as_stopped(trial: ObservedTrial, reason: StopReason | None) -> ObservedTrial:
    return trial if reason is None else replace(trial, state=reason.trial_state)


def _trial_stops(settings: JobSettings, observed: ObservedState, now: datetime) -> list[StopTrial]:
    stops: list[StopTrial] = []
    for trial in observed.trials:
        if not trial.state.active:
            continue
        timeout = settings.trial_timeout
        if timeout is not None and trial.start_time is not None and now - trial.start_time >= timeout:
            stops.append(StopTrial(trial.number, StopReason.TIMED_OUT))
        elif trial.state is TrialState.RUNNING and _ignored_prune(settings, observed, trial):
            # Normally the trainer stops on the reply to its progress; this catches one that did not.
            stops.append(StopTrial(trial.number, StopReason.PRUNED))
    return stops


def _ignored_prune(settings: JobSettings, observed: ObservedState, trial: ObservedTrial) -> bool:
    """Whether the trainer reported another step after the reply that told it to prune.

    The reply to the latest progress may say prune and the trainer is stopping now; only progress
    after that one shows it did not listen.
    """
    if len(trial.intermediate) < 2:
        return False
    latest = max(trial.intermediate)
    earlier = replace(trial, intermediate={s: v for s, v in trial.intermediate.items() if s < latest})
    trials = tuple(earlier if t.number == trial.number else t for t in observed.trials)
    return should_prune_trial(settings, trials, trial.number)


def _search_end(
    settings: JobSettings, observed: ObservedState, trials: tuple[ObservedTrial, ...], now: datetime
) -> FinishReason | None:
    if goal_reached(settings, trials) is not None:
        return FinishReason.GOAL_REACHED
    deadline = settings.max_duration
    if deadline is not None and observed.start_time is not None and now - observed.start_time >= deadline:
        return FinishReason.DEADLINE_EXCEEDED
    if any(trial.state is TrialState.SUSPENDED for trial in trials):
        return None  # they run again first
    if len(trials) >= settings.max_trials:
        return FinishReason.MAX_TRIALS_REACHED
    if settings.sampler.type == "grid" and not unvisited_grid_points(settings, trials):
        return FinishReason.SEARCH_SPACE_EXHAUSTED
    return None


def _resumed_trials(settings: JobSettings, trials: tuple[ObservedTrial, ...]) -> list[Action]:
    """Suspended trials start again, with their own number and params, before any new one."""
    room = settings.parallel_trials - sum(1 for trial in trials if trial.state.active)
    suspended = [trial for trial in trials if trial.state is TrialState.SUSPENDED]
    return [StartTrial(t.number, dict(t.params), dict(t.sampler_attrs)) for t in suspended[: max(room, 0)]]


def _new_trials(
    settings: JobSettings, observed: ObservedState, trials: tuple[ObservedTrial, ...]
) -> list[Action]:
    busy = sum(1 for trial in trials if trial.state.active or trial.state is TrialState.SUSPENDED)
    count = min(settings.parallel_trials - busy, settings.max_trials - len(trials))
    actions: list[Action] = []
    known = list(trials)
    number = observed.next_number
    for _ in range(max(count, 0)):
        if settings.sampler.type == "grid":
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
