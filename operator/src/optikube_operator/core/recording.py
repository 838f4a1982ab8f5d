"""Recording what runs report (Contract 3 progress) and how they end (exit codes, results files).

Pure functions from a recorded trial or pipeline and one observation to the new record: both
backends call them (the local CLI on its state file, the operator on OptimizationTrial status),
so a trial means the same thing wherever it ran. A record that is no longer active never changes:
late or replayed progress of a finished trial is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from optikube_operator.api.progress import (
    AnyProgress,
    FailedProgress,
    FinalProgress,
    IntermediateProgress,
    PrunedProgress,
    ResendingProgress,
    StageProgress,
)
from optikube_operator.api.trial import MAX_INTERMEDIATE_VALUES
from optikube_operator.core.observed import (
    ObservedPipeline,
    ObservedPreflight,
    ObservedStage,
    ObservedTrial,
    PipelineState,
    PreflightState,
    TrialState,
)

MAX_MESSAGE = 1000
MAX_STAGES = 32


def _numbers(values: Mapping[str, Any]) -> dict[str, float]:
    return {
        str(k): float(v) for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }


def values_from_results(results: Mapping[str, Any]) -> dict[str, float]:
    """Objective values (Contract 3 names) from a Contract 4 results document.

    Used when a run exited cleanly but its final push was lost: the trainer also writes its
    results to <outputDir>/results.json.
    """
    if isinstance(results.get("values"), Mapping):
        return _numbers(results["values"])
    block = results.get("optimized") or results.get("baseline") or results
    if not isinstance(block, Mapping):
        return {}
    values: dict[str, float] = {}
    metrics = block.get("metrics")
    if isinstance(metrics, Mapping):
        values.update(_numbers(metrics))
    values.update(_numbers({name: block.get(name) for name in ("sizeBytes", "parameters", "macs")}))
    latency = block.get("latencyMs")
    if isinstance(latency, Mapping):
        values.update(
            _numbers({"latencyMs": latency.get("batch1P50"), "latencyMsBatch32": latency.get("batch32P50")})
        )
    return values


def _with_step(series: Mapping[int, float], step: int, value: float) -> dict[int, float]:
    updated = {**series, step: value}
    if len(updated) > MAX_INTERMEDIATE_VALUES:  # only without a pruner (validation bounds the rest)
        updated = dict(sorted(updated.items())[-MAX_INTERMEDIATE_VALUES:])
    return updated


def _record_step(
    trial: ObservedTrial, step: int, raw_values: Mapping[str, Any], primary: str, now: datetime
) -> ObservedTrial:
    values = _numbers(raw_values)
    series = trial.intermediate
    if primary in values:
        series = _with_step(series, step, values[primary])
    return replace(
        trial,
        state=TrialState.RUNNING,
        intermediate=series,
        latest_values=values,
        latest_step=step,
        start_time=trial.start_time or now,
    )


def stale_progress(trial: ObservedTrial, progress: AnyProgress) -> bool:
    """Intermediate progress for a step already reported (replayed, or out of order): recording it
    would rewrite a value the pruner has already judged."""
    return (
        isinstance(progress, IntermediateProgress)
        and trial.latest_step is not None
        and progress.step <= trial.latest_step
    )


def record_trial_progress(
    trial: ObservedTrial, progress: AnyProgress, primary: str, now: datetime
) -> ObservedTrial:
    """``trial`` after ``progress``; ``primary`` is the metric whose series the pruner reads.

    The steps the message carries as `unconfirmed` come first: those after the record's latest
    step are ones an operator acknowledged and lost before writing them (a restart), the others
    are recorded already."""
    if not trial.state.active or stale_progress(trial, progress):
        return trial  # late progress of a stopped trial, replayed steps: they change nothing
    own_step = progress.step if isinstance(progress, IntermediateProgress) else None
    resent = progress.unconfirmed if isinstance(progress, ResendingProgress) else []
    for earlier in sorted(resent, key=lambda entry: entry.step):
        newer = trial.latest_step is None or earlier.step > trial.latest_step
        if newer and (own_step is None or earlier.step < own_step):
            trial = _record_step(trial, earlier.step, earlier.values, primary, now)
    if isinstance(progress, IntermediateProgress):
        return _record_step(trial, progress.step, progress.values, primary, now)
    if isinstance(progress, FinalProgress):
        return replace(trial, state=TrialState.SUCCEEDED, values=_numbers(progress.values), end_time=now)
    if isinstance(progress, PrunedProgress):
        return replace(trial, state=TrialState.PRUNED, end_time=now, message="stopped by the pruner")
    if isinstance(progress, FailedProgress):
        return replace(trial, state=TrialState.FAILED, message=progress.message[-MAX_MESSAGE:], end_time=now)
    return trial


def record_trial_exit(
    trial: ObservedTrial, exit_code: int, results: Mapping[str, Any] | None, now: datetime, reason: str = ""
) -> ObservedTrial:
    """``trial`` after its run ended with ``exit_code``; ``results`` is its results file, if any."""
    if not trial.state.active:
        return trial
    values = values_from_results(results) if results else {}
    if exit_code == 0 and values:
        return replace(trial, state=TrialState.SUCCEEDED, values=values, end_time=now)
    if exit_code == 0:
        message = "the trainer exited without reporting results"
    else:
        message = (
            trial.message or f"the trainer exited with code {exit_code}{f' ({reason})' if reason else ''}"
        )
    return replace(trial, state=TrialState.FAILED, message=message[-MAX_MESSAGE:], end_time=now)


def record_pipeline_progress(
    pipeline: ObservedPipeline, progress: AnyProgress, now: datetime
) -> ObservedPipeline:
    if not pipeline.state.active:
        return pipeline
    pipeline = replace(pipeline, state=PipelineState.RUNNING, start_time=pipeline.start_time or now)
    if isinstance(progress, StageProgress):
        stage = ObservedStage(progress.stage, progress.status, progress.duration_seconds)
        return replace(pipeline, stages=(*pipeline.stages, stage)[-MAX_STAGES:])
    if isinstance(progress, FinalProgress):
        if pipeline.values:
            return pipeline  # replayed, or the termination message's copy of a pushed final progress
        # the run still has to exit: the record turns Succeeded on its exit (or its Job's success)
        return replace(pipeline, values=_numbers(progress.values), results=dict(progress.results))
    if isinstance(progress, FailedProgress):
        return replace(pipeline, message=progress.message[-MAX_MESSAGE:])
    return pipeline


def record_pipeline_exit(
    pipeline: ObservedPipeline, exit_code: int, now: datetime, results: Mapping[str, Any] | None = None
) -> ObservedPipeline:
    if not pipeline.state.active:
        return pipeline
    if exit_code == 0:
        found = dict(results) if results and not pipeline.results else dict(pipeline.results)
        values = dict(pipeline.values) or (values_from_results(found) if found else {})
        return replace(pipeline, state=PipelineState.SUCCEEDED, results=found, values=values, end_time=now)
    message = pipeline.message or f"the pipeline exited with code {exit_code}"
    return replace(pipeline, state=PipelineState.FAILED, message=message, end_time=now)


def preflight_message(exit_code: int, refusal: str | None, log_tail: str) -> str:
    """Why a preflight failed: the `<spec field>: <problem>` it wrote (exit code 2, the outcome file
    locally, the termination message in a cluster), else the last line of its log."""
    if exit_code == 0:
        return ""
    if refusal:
        return refusal.strip()
    lines = [line for line in log_tail.strip().splitlines() if line.strip()]
    return f"the preflight exited with code {exit_code}" + (f": {lines[-1].strip()}" if lines else "")


def record_preflight_exit(
    preflight: ObservedPreflight, exit_code: int, message: str, now: datetime
) -> ObservedPreflight:
    """The preflight after its process exited: passed on 0, else failed with ``message`` (what it
    wrote: `<spec field>: <problem>`, or its log's tail when it wrote nothing)."""
    if exit_code == 0:
        return replace(preflight, state=PreflightState.PASSED, message="", end_time=now)
    text = message.strip() or f"the preflight exited with code {exit_code}"
    return replace(preflight, state=PreflightState.FAILED, message=text[:MAX_MESSAGE], end_time=now)
