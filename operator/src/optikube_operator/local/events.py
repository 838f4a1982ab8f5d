"""Recording Contract 3 events and process exits into the run state (pure state changes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optikube_operator.core import PipelineState, TrialState
from optikube_operator.local.state import PipelineRecord, TrialRecord

ACTIVE = (TrialState.PENDING.value, TrialState.RUNNING.value)


def values_from_results(results: Mapping[str, Any]) -> dict[str, float]:
    """Objective values (Contract 3 names) from a Contract 4 results document.

    Used when a run exited cleanly but its final push was lost: the trainer also writes its
    results to <outputDir>/results.json.
    """
    if isinstance(results.get("values"), Mapping):
        return {k: float(v) for k, v in results["values"].items() if isinstance(v, int | float)}
    block = results.get("optimized") or results.get("baseline") or results
    if not isinstance(block, Mapping):
        return {}
    values: dict[str, float] = {}
    metrics = block.get("metrics")
    if isinstance(metrics, Mapping):
        values.update({k: float(v) for k, v in metrics.items() if isinstance(v, int | float)})
    for name in ("sizeBytes", "parameters", "macs"):
        if isinstance(block.get(name), int | float):
            values[name] = float(block[name])
    latency = block.get("latencyMs")
    if isinstance(latency, Mapping):
        if isinstance(latency.get("batch1P50"), int | float):
            values["latencyMs"] = float(latency["batch1P50"])
        if isinstance(latency.get("batch32P50"), int | float):
            values["latencyMsBatch32"] = float(latency["batch32P50"])
    return values


def _numbers(values: Any) -> dict[str, float]:
    if not isinstance(values, Mapping):
        return {}
    return {
        str(k): float(v) for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }


def record_trial_event(record: TrialRecord, event: Mapping[str, Any], now: str) -> None:
    kind = event.get("type")
    if record.state not in ACTIVE:
        return  # late events of a stopped trial change nothing
    if kind == "intermediate":
        step = event.get("step", event.get("epoch"))
        if isinstance(step, int):
            record.intermediate[str(step)] = _numbers(event.get("values"))
        record.state = TrialState.RUNNING.value
    elif kind == "final":
        record.values = _numbers(event.get("values"))
        results = event.get("results")
        record.results = dict(results) if isinstance(results, Mapping) else {}
        record.state = TrialState.SUCCEEDED.value
        record.end_time = now
    elif kind == "pruned":
        record.state = TrialState.PRUNED.value
        record.end_time = now
    elif kind == "failed":
        record.state = TrialState.FAILED.value
        record.message = str(event.get("message", ""))[-2000:]
        record.end_time = now


def record_trial_exit(
    record: TrialRecord, code: int, results: Mapping[str, Any] | None, tail: str, now: str
) -> None:
    if record.state in ACTIVE:
        values = values_from_results(results) if results else {}
        if code == 0 and values:
            record.values, record.state = values, TrialState.SUCCEEDED.value
        elif code == 0:
            record.state = TrialState.FAILED.value
            record.message = "the trainer exited without reporting results"
        else:
            record.state = TrialState.FAILED.value
            record.message = record.message or f"the trainer exited with code {code}"
        record.end_time = now
    if record.state == TrialState.FAILED.value:
        record.log_tail = tail
    record.pid = None


def record_pipeline_event(record: PipelineRecord, event: Mapping[str, Any]) -> None:
    kind = event.get("type")
    if kind == "stage":
        record.stage = f"{event.get('stage')} {event.get('status')}".strip()
        record.stages.append({k: event.get(k) for k in ("stage", "status", "durationSeconds")})
    elif kind == "failed":
        record.message = str(event.get("message", ""))[-2000:]
    if record.state == PipelineState.PENDING.value:
        record.state = PipelineState.RUNNING.value


def record_pipeline_exit(record: PipelineRecord, code: int, tail: str, now: str) -> None:
    if record.state in (PipelineState.PENDING.value, PipelineState.RUNNING.value):
        if code == 0:
            record.state = PipelineState.SUCCEEDED.value
        else:
            record.state = PipelineState.FAILED.value
            record.message = record.message or f"the pipeline exited with code {code}"
            record.log_tail = tail
        record.end_time = now
    record.pid = None
