"""The pipeline's results document as the job's status shows it: bounded for etcd, valid against
the CRD's status schema, and saying which runtime shipped and what every runtime measured."""

from __future__ import annotations

from typing import Any

from optikube_operator.api.status import (
    MAX_RUNTIME_ERROR,
    MAX_RUNTIMES,
    MAX_SKIP_REASON,
    OptimizationJobStatus,
)
from optikube_operator.kube.status import bounded_results

LATENCY = {"batch1P50": 0.2, "batch1P90": 0.3, "batch32P50": 1.0, "batch32P90": 1.2}


def _document(candidates: list[dict[str, Any]], chosen: str = "onnx") -> dict[str, Any]:
    return {
        "baseline": {"metrics": {"accuracy": 0.98}, "sizeBytes": 4000, "latencyMs": LATENCY},
        "optimized": {
            "metrics": {"accuracy": 0.97},
            "sizeBytes": 1000,
            "latencyMs": {"batch1P50": 0.05, "batch32P50": 0.25},
        },
        "runtime": {"requested": "auto", "chosen": chosen, "reason": "fastest", "candidates": candidates},
        "budget": {"metric": "accuracy", "maxAccuracyDrop": 1.0, "drop": -0.37, "withinBudget": True},
    }


def _measured(runtime: str, quantization: str, batch1: float) -> dict[str, Any]:
    return {
        "runtime": runtime,
        "quantization": quantization,
        "latencyMs": {**LATENCY, "batch1P50": batch1},
        "baselineLatencyMs": LATENCY,
        "speedupVsBaselineHere": {"batch1": round(0.2 / batch1, 3)},
        "metrics": {"accuracy": 0.97, "f1": 0.96},
        "validation": 0.99,
        "accuracyDrop": -0.37,
        "withinBudget": True,
    }


def test_the_status_names_the_shipped_runtime_and_what_each_runtime_measured() -> None:
    failed = {"runtime": "compiled", "quantization": "", "error": "BackendCompilerFailed: " + "x" * 1000}
    document = _document(
        [
            _measured("eager", "torchao int8 dynamic (Linear)", 0.4),
            failed,
            _measured("onnx", "onnxruntime int8", 0.05),
        ]
    )
    results = bounded_results(document)
    assert results is not None
    status = OptimizationJobStatus.model_validate({"results": results})  # the CRD's status schema
    assert status.results is not None
    assert status.results.runtime == "onnx" and status.results.accuracy_drop == -0.37
    assert status.results.size_ratio == 0.25 and status.results.speedup == 4.0
    eager, compiled, onnx = status.results.runtimes
    assert eager.quantization == "torchao int8 dynamic (Linear)" and eager.accuracy == 0.97
    assert eager.optimized is not None and eager.optimized.batch1_p50 == 0.4
    assert eager.baseline is not None and eager.baseline.batch32_p50 == 1.0 and eager.within_budget
    assert compiled.optimized is None and compiled.error is not None
    assert compiled.error.startswith("BackendCompilerFailed") and len(compiled.error) == MAX_RUNTIME_ERROR
    assert onnx.optimized is not None and onnx.optimized.batch1_p50 == 0.05


def test_runtimes_the_status_cannot_hold_are_left_out_and_the_list_is_bounded() -> None:
    candidates = [_measured("tensorrt", "fp16", 0.01), "not a candidate"] + [
        _measured("eager", "none (float)", 0.2 + i) for i in range(MAX_RUNTIMES + 3)
    ]
    results = bounded_results(_document(candidates, chosen="tensorrt"))  # type: ignore[arg-type]
    assert results is not None
    status = OptimizationJobStatus.model_validate({"results": results})
    assert status.results is not None and status.results.runtime is None  # not a runtime the CRD knows
    assert [r.runtime for r in status.results.runtimes] == ["eager"] * MAX_RUNTIMES


def test_a_results_document_of_an_older_trainer_gives_the_results_it_has() -> None:
    document = _document([])
    del document["runtime"], document["budget"]
    results = bounded_results(document)
    assert results == {
        "baseline": document["baseline"],
        "optimized": document["optimized"],
        "sizeRatio": 0.25,
        "speedup": 4.0,
    }


def test_numbers_the_status_schema_would_refuse_are_left_out() -> None:
    broken = {
        "runtime": "eager",
        "latencyMs": {"batch1P50": -1.0, "batch32P50": float("nan"), "batch1P90": True, "batch32P90": 2.0},
        "metrics": ["accuracy", 0.9],
        "withinBudget": "yes",
    }
    document = _document([broken], chosen="eager")
    document["budget"]["drop"] = float("inf")
    metrics = {"accuracy": 0.98, "valLoss": float("nan")}
    document["baseline"] = {"metrics": metrics, "sizeBytes": -5, "macs": 10}
    results = bounded_results(document)
    assert results is not None
    status = OptimizationJobStatus.model_validate({"results": results})
    assert status.results is not None and status.results.accuracy_drop is None
    (eager,) = status.results.runtimes
    assert eager.optimized is not None
    assert eager.optimized.model_dump(exclude_none=True) == {"batch32_p90": 2.0}
    assert eager.accuracy is None and eager.within_budget is None
    assert status.results.baseline is not None
    kept = status.results.baseline.model_dump(exclude_none=True)
    assert kept == {"metrics": {"accuracy": 0.98}, "macs": 10}
    assert status.results.size_ratio is None  # no baseline size to divide by


def test_the_status_gives_both_speed_ups_the_shipped_form_and_the_skipped_stages() -> None:
    document = _document(
        [
            _measured("onnx", "onnxruntime int8 dynamic (MatMul/Gemm)", 0.07),
            {**_measured("onnx", "none (float)", 0.05), "shipped": True},
        ]
    )
    document["baseline"]["onnxRuntimeLatencyMs"] = {"batch1P50": 0.1, "batch32P50": 0.5}
    slower = "the stage made the model slower at batch 1 in ONNX Runtime, 0.031 to 0.036 ms " + "x" * 600
    document["stages"] = [
        {"name": "train"},
        {
            "name": "pruning",
            "skipped": True,
            "budget": {"outcome": "skipped", "reason": "accuracy dropped 3 points"},
        },
        {
            "name": "lowRank",
            "skipped": True,
            "budget": {"outcome": "skipped", "reason": slower, "latencyCheck": {"slower": True}},
        },
        {"name": "quantization", "budget": {"outcome": "accepted", "latencyCheck": {"slower": False}}},
    ]
    results = bounded_results(document)
    status = OptimizationJobStatus.model_validate({"results": results})
    assert status.results is not None
    # 0.2 ms in eager PyTorch, 0.1 ms exported to ONNX Runtime as it is, 0.05 ms optimized
    assert status.results.speedup == 4.0 and status.results.speedup_vs_onnx_runtime == 2.0
    assert [r.shipped for r in status.results.runtimes] == [None, True]
    pruning, low_rank = status.results.skipped_stages
    assert (pruning.name, pruning.check, pruning.reason) == (
        "pruning",
        "accuracyBudget",
        "accuracy dropped 3 points",
    )
    assert (low_rank.name, low_rank.check) == ("lowRank", "latency")
    assert low_rank.reason is not None and low_rank.reason.startswith(
        "the stage made the model slower at batch 1"
    )
    assert len(low_rank.reason) == MAX_SKIP_REASON
