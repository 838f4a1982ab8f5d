"""The per-stage latency check (compression.skipSlowerStages): a stage that makes the shipped
runtime slower is skipped and recorded like an over-budget one, with the timings behind it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from _tiny import mlp
from torch import nn
from trainer_specs import iris_mlp_spec, run_in_process

from optikube_operator.api.status import OptimizationJobStatus
from optikube_operator.kube.status import bounded_results
from optikube_operator.reports.pipeline_sentences import summary_sentences
from optikube_operator.reports.pipeline_text import stage_budget
from optikube_trainer.pipeline.latency_check import StageModels, check_stage_latency


def _deeper(model: nn.Sequential, extra: int) -> nn.Sequential:
    """`model` with `extra` more width-preserving layers in front of its output layer: the same
    answer shape, several times the calls."""
    width = model[-1].in_features
    layers = [nn.Linear(width, width) for _ in range(extra)]
    return nn.Sequential(*model[:-1], *layers, model[-1]).eval()


def test_a_slower_model_is_slower_beyond_chance_and_a_faster_one_is_not(tmp_path: Path) -> None:
    before = mlp(width=64).eval()
    example = torch.randn(32, 16)
    slower = check_stage_latency(
        StageModels(before, _deeper(before, 12)),
        example,
        runtimes=("eager", "onnx"),
        sizes=(1, 32),
        directory=tmp_path / "slower",
    )
    assert slower.slower and [b.size for b in slower.batches] == [1, 32]
    for batch in slower.batches:
        assert batch.slower and batch.after_ms > batch.before_ms and batch.p_value < 0.01
        assert batch.slower_rounds > batch.rounds * 0.7
    recorded = slower.to_contract()
    assert recorded["slower"] and recorded["reason"].startswith(
        "the stage made the model slower at batch 1 in"
    )
    assert recorded["batch32"]["rounds"] == 50 and recorded["batch32"]["speedup"] < 1.0
    faster = check_stage_latency(
        StageModels(_deeper(before, 12), before),
        example,
        runtimes=("eager",),
        sizes=(32,),
        directory=tmp_path,
    )
    assert not faster.slower and faster.batches[0].speedup > 1.0 and "reason" not in faster.to_contract()


def test_a_runtime_that_cannot_run_the_models_is_left_out_and_named(tmp_path: Path) -> None:
    class Untraceable(nn.Module):
        def forward(self, inputs: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(inputs.numpy() * 2.0)  # no exporter follows numpy

    check = check_stage_latency(
        StageModels(Untraceable(), Untraceable()),
        torch.randn(4, 3),
        runtimes=("eager", "onnx"),
        sizes=(1,),
        directory=tmp_path,
    )
    assert "onnx" in check.to_contract()["notMeasured"]
    assert [(b.runtime_before, b.runtime_after) for b in check.batches] == [("eager", "eager")]


def _iris(out: Path, skip_slower_stages: bool) -> dict[str, Any]:
    """Iris with dynamic INT8, shipped in eager PyTorch: torchao's int8 tensors run slower there than
    float on a model this small (no int8 kernels in eager mode)."""
    spec = iris_mlp_spec(
        compression={
            "pruning": {"method": "structured", "sparsity": 0.5, "fineTuneEpochs": 1},
            "maxAccuracyDrop": 100.0,  # this test is about speed
            "skipSlowerStages": skip_slower_stages,
        },
        quantization={"method": "dynamic"},
        export={"runtime": "eager"},
    )
    events: list[dict[str, Any]] = []
    results = run_in_process(out, spec, job="iris", events=events)
    assert results is not None
    return {**results, "events": events}


def test_int8_that_slows_eager_pytorch_is_skipped_and_recorded(tmp_path: Path) -> None:
    results = _iris(tmp_path / "checked", skip_slower_stages=True)
    quantization = next(s for s in results["stages"] if s["name"] == "quantization")
    check = quantization["budget"]["latencyCheck"]
    assert quantization["skipped"] and quantization["budget"]["outcome"] == "skipped"
    assert check["slower"] and quantization["budget"]["reason"] == check["reason"]
    assert (
        check["batch1"]["runtimeAfter"] == "eager"
        and check["batch1"]["afterMs"] > check["batch1"]["beforeMs"]
    )
    statuses = [e["status"] for e in results["events"] if e.get("stage") == "quantization"]
    assert statuses == ["started", "skipped"]
    # the float model ships; pruning, which made it no slower, stays
    assert results["optimized"]["quantization"] == "none (float)"
    pruning = next(s for s in results["stages"] if s["name"] == "pruning")
    assert not pruning.get("skipped") and pruning["budget"]["latencyCheck"]["slower"] is False
    assert results["budget"]["stages"]["quantization"] == "skipped"
    # the report and the job's status say it
    assert "Skipped because they made the shipped runtime slower: quantization." in " ".join(
        summary_sentences(results)
    )
    assert stage_budget(quantization).startswith("skipped; ") and "slower " in stage_budget(quantization)
    status = OptimizationJobStatus.model_validate({"results": bounded_results(results)})
    assert status.results is not None
    assert [(s.name, s.check) for s in status.results.skipped_stages] == [("quantization", "latency")]
    # the baseline was also timed exported to ONNX Runtime, though eager ships
    assert results["baseline"]["onnxRuntimeLatencyMs"]["batch1P50"] > 0
    assert set(results["optimized"]["speedup"]) == {"vsPyTorch", "vsOnnxRuntime"}
    assert status.results.speedup_vs_onnx_runtime is not None


def test_without_the_check_the_slower_int8_model_is_kept(tmp_path: Path) -> None:
    results = _iris(tmp_path / "unchecked", skip_slower_stages=False)
    quantization = next(s for s in results["stages"] if s["name"] == "quantization")
    assert not quantization.get("skipped") and "latencyCheck" not in quantization["budget"]
    shipped = next(c for c in results["runtime"]["candidates"] if c.get("shipped"))
    assert shipped["runtime"] == "eager"
