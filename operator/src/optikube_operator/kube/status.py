"""The OptimizationJob status the operator writes: a pure function of the records, bounded for etcd.

The full trial history lives in the OptimizationTrials; the status keeps the counts, the best trial,
a bounded Pareto front and the running trials, the pipeline's record and its results, and
Kubernetes-style conditions whose lastTransitionTime only moves when their status does (among
them TrialsDistinguishable: whether the validation split can rank the trials).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from optikube_operator.api.export import RUNTIMES
from optikube_operator.api.status import (
    MAX_CONDITIONS,
    MAX_MESSAGE,
    MAX_METRICS,
    MAX_PARETO_POINTS,
    MAX_QUANTIZATION,
    MAX_RUNNING_TRIALS,
    MAX_RUNTIME_ERROR,
    MAX_RUNTIMES,
    MAX_SKIP_REASON,
    MAX_SKIPPED_STAGES,
    OptimizationJobStatus,
)
from optikube_operator.core import JobSettings, ObservedState, ObservedTrial, PipelineState, TrialState
from optikube_operator.core.records import pipeline_status, preflight_status
from optikube_operator.core.resolution import CONDITION
from optikube_operator.core.summary import JobSummary
from optikube_operator.kube import names

STAGE_PHASES = {
    "train": "Training",
    "distillation": "Compressing",
    "pruning": "Compressing",
    "lowRank": "Compressing",
    "weightSharing": "Compressing",
    "quantization": "Quantizing",
    "evaluation": "Evaluating",
}
COUNT_FIELDS = {
    TrialState.PENDING: "pending",
    TrialState.RUNNING: "running",
    TrialState.SUCCEEDED: "succeeded",
    TrialState.PRUNED: "pruned",
    TrialState.FAILED: "failed",
    TrialState.TIMED_OUT: "timedOut",
    TrialState.STOPPED: "stopped",
    TrialState.SUSPENDED: "suspended",
}


@dataclass(frozen=True)
class Outcome:
    """How a job ended (from the core's Finish, or an invalid spec)."""

    succeeded: bool
    reason: str
    message: str
    time: datetime


@dataclass(frozen=True)
class ConditionUpdate:
    type: str
    status: str  # True | False
    reason: str
    message: str = ""


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def phase_of(settings: JobSettings | None, observed: ObservedState, outcome: Outcome | None) -> str:
    if outcome is not None:
        return "Succeeded" if outcome.succeeded else "Failed"
    if settings is not None and settings.suspend:
        return "Suspended"
    pipeline = observed.pipeline
    if pipeline.state is not PipelineState.NOT_STARTED:
        return STAGE_PHASES.get(pipeline.stage, "Training")
    return "Tuning" if observed.trials else "Pending"


def merge_conditions(
    previous: Sequence[Mapping[str, Any]],
    updates: Sequence[ConditionUpdate],
    generation: int | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """Conditions after ``updates``; an unchanged status keeps its lastTransitionTime."""
    by_type = {str(c.get("type")): dict(c) for c in previous}
    for update in updates:
        old = by_type.get(update.type)
        moved = old is None or old.get("status") != update.status
        by_type[update.type] = {
            "type": update.type,
            "status": update.status,
            "reason": update.reason,
            "message": update.message[:MAX_MESSAGE],
            "lastTransitionTime": _iso(now) if moved else old.get("lastTransitionTime"),  # type: ignore[union-attr]
            "observedGeneration": generation,
        }
    return sorted(by_type.values(), key=lambda c: str(c["type"]))[:MAX_CONDITIONS]


def _trial_summary(trial: ObservedTrial) -> dict[str, Any]:
    return {"number": trial.number, "params": dict(trial.params), "values": dict(trial.values)}


def bounded_results(results: Mapping[str, Any]) -> dict[str, Any] | None:
    """The bounded Results of the pipeline's results document (Contract 4)."""
    if not results:
        return None
    out: dict[str, Any] = {}
    for side in ("baseline", "optimized"):
        block = results.get(side)
        if isinstance(block, Mapping):
            out[side] = _measurement(block)
    baseline, optimized = out.get("baseline", {}), out.get("optimized", {})
    if baseline.get("sizeBytes") and optimized.get("sizeBytes"):
        out["sizeRatio"] = round(optimized["sizeBytes"] / baseline["sizeBytes"], 4)
    base_latency = (baseline.get("latencyMs") or {}).get("batch1P50")
    new_latency = (optimized.get("latencyMs") or {}).get("batch1P50")
    if base_latency and new_latency:
        out["speedup"] = round(base_latency / new_latency, 3)
    export_only = _latency((results.get("baseline") or {}).get("onnxRuntimeLatencyMs")) or {}
    if export_only.get("batch1P50") and new_latency:
        out["speedupVsOnnxRuntime"] = round(export_only["batch1P50"] / new_latency, 3)
    out.update(_runtime_results(results))
    skipped = _skipped_stages(results.get("stages"))
    if skipped:
        out["skippedStages"] = skipped
    return out or None


def _skipped_stages(stages: Any) -> list[dict[str, Any]]:
    """The stages results.json records as skipped, what skipped them and the numbers behind it."""
    skipped: list[dict[str, Any]] = []
    for stage in stages if isinstance(stages, Sequence) else []:
        named = isinstance(stage, Mapping) and isinstance(stage.get("name"), str)
        if not named or not stage.get("skipped"):
            continue
        budget: Mapping[str, Any] = stage["budget"] if isinstance(stage.get("budget"), Mapping) else {}
        latency: Mapping[str, Any] = (
            budget["latencyCheck"] if isinstance(budget.get("latencyCheck"), Mapping) else {}
        )
        record: dict[str, Any] = {
            "name": stage["name"][:64],
            "check": "latency" if latency.get("slower") is True else "accuracyBudget",
        }
        if isinstance(budget.get("reason"), str):
            record["reason"] = budget["reason"][:MAX_SKIP_REASON]
        skipped.append(record)
    return skipped[:MAX_SKIPPED_STAGES]


LATENCY_KEYS = ("batch1P50", "batch1P90", "batch32P50", "batch32P90")


def _finite(value: Any) -> bool:
    """A number JSON and the status schema take: a trainer's document is not trusted to hold one."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _measured(value: Any) -> bool:
    """A count, size or latency the status schema takes (finite, >= 0)."""
    return _finite(value) and value >= 0


def _latency(block: Any) -> dict[str, float] | None:
    if not isinstance(block, Mapping):
        return None
    return {key: block[key] for key in LATENCY_KEYS if _measured(block.get(key))} or None


def _measurement(block: Mapping[str, Any]) -> dict[str, Any]:
    """A model's measurements as the status schema takes them (ModelMeasurement)."""
    counts = ("parameters", "sizeBytes", "macs")
    out: dict[str, Any] = {key: block[key] for key in counts if _measured(block.get(key))}
    metrics = block.get("metrics")
    if isinstance(metrics, Mapping):
        finite = {str(name): value for name, value in metrics.items() if _finite(value)}
        out["metrics"] = dict(list(finite.items())[:MAX_METRICS])
    latency = _latency(block.get("latencyMs"))
    if latency is not None:
        out["latencyMs"] = latency
    return out


def _runtime_record(candidate: Mapping[str, Any]) -> dict[str, Any]:
    """One runtime results.json lists, as the status schema takes it (RuntimeMeasurement)."""
    record: dict[str, Any] = {"runtime": candidate["runtime"]}
    if candidate.get("quantization"):
        record["quantization"] = str(candidate["quantization"])[:MAX_QUANTIZATION]
    if candidate.get("error"):
        record["error"] = str(candidate["error"])[:MAX_RUNTIME_ERROR]
    for key, source in (("optimized", "latencyMs"), ("baseline", "baselineLatencyMs")):
        latency = _latency(candidate.get(source))
        if latency is not None:
            record[key] = latency
    metrics = candidate.get("metrics")
    accuracy: Any = metrics.get("accuracy") if isinstance(metrics, Mapping) else None
    if _measured(accuracy) and accuracy <= 1:
        record["accuracy"] = accuracy
    if isinstance(candidate.get("withinBudget"), bool):
        record["withinBudget"] = candidate["withinBudget"]
    if candidate.get("shipped") is True:
        record["shipped"] = True
    return record


def _runtime_results(results: Mapping[str, Any]) -> dict[str, Any]:
    """The shipped runtime, every runtime tried (bounded) and the budget's validation drop: what
    `kubectl describe` should answer without opening results.json."""
    out: dict[str, Any] = {}
    runtime = results.get("runtime")
    if isinstance(runtime, Mapping):
        if runtime.get("chosen") in RUNTIMES:
            out["runtime"] = runtime["chosen"]
        tried = [
            _runtime_record(candidate)
            for candidate in runtime.get("candidates") or []
            if isinstance(candidate, Mapping) and candidate.get("runtime") in RUNTIMES
        ]
        if tried:
            out["runtimes"] = tried[:MAX_RUNTIMES]
    budget = results.get("budget")
    drop = budget.get("drop") if isinstance(budget, Mapping) else None
    if _finite(drop):
        out["accuracyDrop"] = drop
    return out


def _search_status(
    summary: JobSummary, settings: JobSettings | None, outcome: Outcome | None, job_name: str
) -> dict[str, Any]:
    """The search's part of the status: trial counts, the best trial, the Pareto front, the running
    trials and the progress."""
    counts: dict[str, Any] = {field: summary.count(state) for state, field in COUNT_FIELDS.items()}
    counts["completed"] = summary.finished_trials
    part: dict[str, Any] = {"trialCounts": counts}
    best = summary.best
    if best is not None and settings is not None:
        part["bestTrial"] = {
            **_trial_summary(best),
            "objectiveValue": best.values.get(settings.primary.metric),
        }
    part["paretoFront"] = [_trial_summary(t) for t in summary.pareto_front[:MAX_PARETO_POINTS]]
    part["runningTrials"] = [
        {
            "number": trial.number,
            "name": names.run_name(job_name, names.trial_run(trial.number)),
            "startTime": _iso(trial.start_time),
            "epoch": trial.latest_step or 0,
            "values": dict(trial.latest_values),
        }
        for trial in summary.running[:MAX_RUNNING_TRIALS]
    ]
    percent = 100.0 if outcome is not None and outcome.succeeded else summary.percent
    progress: dict[str, Any] = {"percent": percent}
    if summary.eta_seconds is not None and outcome is None:
        # rounded, so that the status does not change on every resync
        progress["etaSeconds"] = int(round(summary.eta_seconds / 10.0) * 10)
    part["progress"] = progress
    return part


def _artifacts(location: str) -> dict[str, str]:
    return {
        "location": location,
        "model": f"{location}/pipeline/model/",
        "results": f"{location}/pipeline/results.json",
        "report": f"{location}/pipeline/report.html",
    }


def build_status(
    *,
    settings: JobSettings | None,
    observed: ObservedState,
    summary: JobSummary | None,
    outcome: Outcome | None,
    previous: OptimizationJobStatus | None,
    conditions: Sequence[ConditionUpdate],
    generation: int | None,
    accepted_spec: Mapping[str, Any] | None,
    artifacts_location: str | None,
    job_name: str,
    now: datetime,
) -> dict[str, Any]:
    """The whole status document (camelCase), written as one replace."""
    previous_conditions = [c.to_dict() for c in previous.conditions] if previous is not None else []
    resolution = summary.resolution if summary is not None else None
    if resolution is not None:
        verdict = "True" if resolution.distinguishable else "False"
        conditions = [*conditions, ConditionUpdate(CONDITION, verdict, resolution.reason, resolution.message)]
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "phase": phase_of(settings, observed, outcome),
        "conditions": merge_conditions(previous_conditions, conditions, generation, now),
        "startTime": _iso(observed.start_time),
        "acceptedSpec": dict(accepted_spec) if accepted_spec is not None else None,
    }
    if outcome is not None:
        status["completionTime"] = _iso(outcome.time)
        status["message"] = (outcome.message or outcome.reason)[:MAX_MESSAGE]
    preflight = preflight_status(observed.preflight)
    if preflight is not None:
        status["preflight"] = preflight.model_dump(mode="json", by_alias=True, exclude_none=True)
    pipeline = observed.pipeline
    if pipeline.state is not PipelineState.NOT_STARTED:
        status["stage"] = pipeline.stage or None
        status["pipeline"] = pipeline_status(pipeline).model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
    if summary is not None:
        status.update(_search_status(summary, settings, outcome, job_name))
    results = bounded_results(pipeline.results)
    if results is not None:
        status["results"] = results
    if artifacts_location is not None:
        status["artifacts"] = _artifacts(artifacts_location)
    # validate the shape (bounds) before it goes to the apiserver; drop what is unset
    parsed = OptimizationJobStatus.model_validate(
        {key: value for key, value in status.items() if value is not None}, by_alias=True, strict=False
    )
    return parsed.model_dump(mode="json", by_alias=True, exclude_none=True)


def outcome_of(previous: OptimizationJobStatus | None) -> Outcome | None:
    """A finished job's outcome, as its status recorded it (terminal phases never change)."""
    if previous is None or previous.phase not in ("Succeeded", "Failed"):
        return None
    condition = next(
        (c for c in previous.conditions if c.type == previous.phase and c.status == "True"), None
    )
    return Outcome(
        succeeded=previous.phase == "Succeeded",
        reason=condition.reason if condition is not None else previous.phase,
        message=previous.message or "",
        time=previous.completion_time or datetime.now().astimezone(),
    )
