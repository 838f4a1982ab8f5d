"""The retry and resume policy, shared by both backends: what a restarted backend, or a resumed
local run, continues from. Pure functions of the records."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from optikube_operator.core.observed import (
    ObservedPipeline,
    ObservedPreflight,
    ObservedState,
    ObservedTrial,
    PipelineState,
    PreflightState,
    TrialState,
)

INTERRUPTED = "interrupted: runs again on resume"


def launched(trial: ObservedTrial, now: datetime, *, running: bool) -> ObservedTrial:
    """``trial`` once its run was (re)launched: one more attempt; ``running`` when it runs at once
    (a local process) rather than waiting to be scheduled (a Kubernetes Job). The new run reports
    from step 0 again: the series of an attempt that was cut off is dropped, else every step the
    new run reports would be refused as a replay (and the pruner would judge the dead attempt)."""
    return replace(
        trial,
        state=TrialState.RUNNING if running else TrialState.PENDING,
        attempts=trial.attempts + 1,
        start_time=now if running else None,
        end_time=None,
        message="",
        intermediate={},
        latest_values={},
        latest_step=None,
    )


def pipeline_launched(pipeline: ObservedPipeline, now: datetime, *, running: bool) -> ObservedPipeline:
    return replace(
        pipeline,
        state=PipelineState.RUNNING if running else PipelineState.PENDING,
        attempts=pipeline.attempts + 1,
        start_time=now if running else pipeline.start_time,
        end_time=None,
        message="",
    )


def needs_launch(trial: ObservedTrial, has_run: bool) -> bool:
    """A trial recorded as active whose run does not exist (the backend stopped between recording it
    and starting its run, or the run vanished) is launched; one that has a run is adopted."""
    return trial.state.active and not has_run


def interrupted(observed: ObservedState) -> ObservedState:
    """What an interrupted run (Ctrl-C, SIGTERM of the local CLI) is recorded as: its active runs
    are pending again, so that a resume runs them with the same numbers and params."""
    trials = tuple(
        replace(t, state=TrialState.PENDING, start_time=None, message=INTERRUPTED) if t.state.active else t
        for t in observed.trials
    )
    pipeline = observed.pipeline
    if pipeline.state is PipelineState.RUNNING:
        pipeline = replace(pipeline, state=PipelineState.PENDING)
    preflight = observed.preflight
    if preflight.state is PreflightState.RUNNING:
        preflight = ObservedPreflight()  # it only reads: running it again is harmless
    return replace(observed, trials=trials, pipeline=pipeline, preflight=preflight)


def resumed(observed: ObservedState) -> ObservedState:
    """What a resumed run continues from: a failed pipeline gets another attempt (it resumes from its
    last finished stage's checkpoint); finished trials are never run again."""
    pipeline = observed.pipeline
    if pipeline.state is PipelineState.FAILED:
        pipeline = replace(pipeline, state=PipelineState.PENDING, message="", end_time=None)
    preflight = observed.preflight
    if preflight.state in (PreflightState.RUNNING, PreflightState.FAILED):
        # a preflight cut off, or one that failed on data since fixed, runs again
        preflight = ObservedPreflight()
    return replace(observed, pipeline=pipeline, preflight=preflight)
