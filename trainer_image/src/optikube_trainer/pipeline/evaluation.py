"""The pipeline's evaluation stage: measure the optimized model and the baseline in every runtime
that can run them, choose the artifact (`spec.export.runtime`), export it, check that it loads,
and assemble results.json (Contract 4)."""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import Tensor, nn

from optikube_operator.reports.pipeline_html import write_report
from optikube_trainer.data import DataBundle
from optikube_trainer.dist import RunContext
from optikube_trainer.evaluation.paired import compare_paired, correct_predictions
from optikube_trainer.export import ExportedArtifact, export_model, export_onnx_model, load_exported
from optikube_trainer.pipeline.budget import resolution_notes
from optikube_trainer.pipeline.checkpoint import PipelineCheckpoint, load_checkpoint_model
from optikube_trainer.pipeline.measuring import eval_split, measure
from optikube_trainer.pipeline.run import PipelineRun
from optikube_trainer.pipeline.stages import calibration_batches
from optikube_trainer.progress import ProgressSender
from optikube_trainer.recipe import Recipe
from optikube_trainer.runtimes.candidates import (
    ONNX_QUANTIZATION,
    Candidate,
    compiled_candidate,
    eager_candidate,
    export_baseline,
    onnx_candidate,
)
from optikube_trainer.runtimes.onnx_quantize import gentler_forms
from optikube_trainer.runtimes.selection import (
    FixedBatches,
    RuntimeResult,
    batch_sizes,
    choose,
    score,
    slower_than_baseline,
    time_all,
    timed_sizes,
)

MODEL_DIR = "model"
REPORT_FILE = "report.html"
EXPORT_ONLY = "onnxRuntime"  # the baseline exported to ONNX Runtime as it is: the fair reference


class _Runtimes:
    """Builds and scores the candidates of one evaluation."""

    def __init__(self, run: PipelineRun, model: nn.Module) -> None:
        self.recipe, self.state, self.model = run.recipe, run.state, model
        self.bundle, self.example, self.ctx = run.bundle, run.example, run.ctx
        state, ctx = run.state, run.ctx
        assert state.baseline_model_file is not None and state.baseline_validation is not None
        self.baseline = load_checkpoint_model(ctx, state.baseline_model_file)
        # the float model the quantization stage started from; the model itself when none ran
        self.float_model = (
            load_checkpoint_model(ctx, state.float_model_file) if state.float_model_file else model
        )
        self.notes: list[str] = []
        self.export_only: dict[str, float] = {}  # the baseline's latency in ONNX Runtime fp32

    def loader(self, split: str) -> Any:
        return self.bundle.loader(split, 256, shuffle=False, distributed=False)

    def _score(self, result: RuntimeResult) -> RuntimeResult:
        assert self.state.baseline_validation is not None
        score(
            result,
            self.example,
            validation=self.loader("val"),
            test=self.loader(eval_split(self.bundle, "test")),
            num_classes=self.bundle.num_classes,
            metric=self.recipe.budget.metric,
            baseline_validation=self.state.baseline_validation,
            max_accuracy_drop=self.recipe.budget.max_accuracy_drop,
        )
        return result

    def _onnx(self, method: str | None) -> Candidate:
        quantization = self.recipe.quantization
        calibration = (
            calibration_batches(
                self.bundle, self.recipe.training.batch_size, quantization.calibration_batches
            )
            if quantization is not None
            else None
        )
        directory = self.ctx.output_dir / "pipeline" / "onnx"
        source = self.model if method is not None else self.float_model
        return onnx_candidate(
            self.float_model, self.baseline, method, self.example, directory, calibration, source=source
        )

    def _candidates(self) -> list[Candidate]:
        """Every runtime asked for, each with the quantized model and, where a quantization stage
        ran, the compressed float model too (ONNX Runtime's weight-only form already runs in float)."""
        requested = self.recipe.export.runtime
        method = self.state.quantization_method
        forms: list[tuple[str | None, nn.Module]] = [(method, self.model)]
        if method is not None:
            forms.append((None, self.float_model))
        candidates = [eager_candidate(model, self.baseline, form) for form, model in forms]
        if requested in ("auto", "compiled"):
            first = compiled_candidate(forms[0][1], self.baseline, forms[0][0])
            candidates.append(first)
            for form, model in forms[1:]:
                candidates.append(compiled_candidate(model, self.baseline, form, first.baseline))
        if requested in ("auto", "onnx"):
            onnx = [self._onnx(method)]
            if method not in (None, "weightOnly"):
                onnx.append(self._onnx(None))
            for candidate in onnx[1:]:  # one baseline session, timed once
                candidate.baseline = onnx[0].baseline or candidate.baseline
            candidates += onnx
        return candidates

    def measure(self) -> list[RuntimeResult]:
        candidates = self._candidates()
        results = [self._score(RuntimeResult(c, error=c.error)) for c in candidates]
        has_float = any(r.runtime == "onnx" and r.candidate.method is None for r in results)
        results = [
            self._within_budget(r, has_float) if r.runtime == "onnx" and r.candidate.method else r
            for r in results
        ]
        references: dict[str, nn.Module] = {}
        onnx = next((r for r in results if r.runtime == "onnx" and r.usable), None)
        if onnx is None:
            try:  # the fair reference is measured whatever runtime ships
                directory = self.ctx.output_dir / "pipeline" / "onnx"
                references[EXPORT_ONLY] = export_baseline(self.baseline, self.example, directory)
            except Exception as error:
                self.notes.append(f"the baseline could not be exported to ONNX Runtime ({error})"[:300])
        sizes = batch_sizes(self.recipe.export.batch_size)
        timed = time_all(results, self.example, sizes=sizes, references=references)
        self.export_only = onnx.baseline_latency if onnx is not None else timed.get(EXPORT_ONLY, {})
        return results

    def _within_budget(self, result: RuntimeResult, has_float: bool) -> RuntimeResult:
        """ONNX Runtime's INT8 is calibrated anew, so it can lose accuracy the PyTorch stage did
        not: then its gentler forms are tried, as a stage's would be, down to the float model (which
        is a candidate of its own, `has_float`, wherever the int8 form computes in int8).
        Without that, a strict budget shipped a runtime ten times slower (digits MLP, budget 0:
        one validation sample lost in ONNX Runtime's int8, torch.compile shipped)."""
        method = result.candidate.method
        for gentler in [m for m in gentler_forms(method) if m is not None or not has_float]:
            if not result.usable or result.within_budget:
                break
            self.notes.append(
                f"ONNX Runtime: {result.candidate.quantization} lost {result.drop_points} validation"
                f" points (budget {self.recipe.budget.max_accuracy_drop});"
                f" tried {ONNX_QUANTIZATION[gentler or '']} instead"
            )
            baseline = result.candidate.baseline
            result = RuntimeResult(self._onnx(gentler))
            result.candidate.baseline = baseline or result.candidate.baseline  # timed once
            result = self._score(result)
        return result


def _export(
    chosen: RuntimeResult, model: nn.Module, example: Tensor, description: dict[str, Any], ctx: RunContext
) -> ExportedArtifact:
    directory = ctx.output_dir / MODEL_DIR
    if chosen.runtime == "onnx":
        assert chosen.candidate.onnx_file is not None
        return export_onnx_model(
            chosen.candidate.onnx_file,
            directory,
            example_inputs=example,
            session_config=chosen.candidate.session_config,
            description={**description, "quantization": chosen.candidate.quantization},
        )
    return export_model(
        model, directory, example_inputs=example, description=description, runtime=chosen.runtime
    )


def _budget_record(
    recipe: Recipe, state: PipelineCheckpoint, chosen: RuntimeResult, bundle: DataBundle
) -> dict[str, Any]:
    """results.json's `budget`: what the shipped model lost on the validation split, against what."""
    assert state.baseline_validation is not None
    budget = recipe.budget.against(state.baseline_validation)
    validation_samples = bundle.samples("val")
    return {
        **budget.to_contract(),
        "validation": chosen.validation,
        "drop": chosen.drop_points,
        "withinBudget": chosen.within_budget,
        "stages": {s["name"]: s["budget"]["outcome"] for s in state.completed if "budget" in s},
        "validationSamples": validation_samples,
        "notes": resolution_notes(budget, validation_samples),
    }


def _runtime_record(
    recipe: Recipe, chosen: RuntimeResult, reason: str, runtimes: _Runtimes, measured: list[RuntimeResult]
) -> dict[str, Any]:
    """results.json's `runtime`: what was asked, what every runtime measured, what shipped and why."""
    return {
        "requested": recipe.export.runtime,
        "servingBatchSize": recipe.export.batch_size,
        "chosen": chosen.runtime,
        "reason": reason,
        "threads": torch.get_num_threads(),
        "notes": runtimes.notes,
        "candidates": [r.to_contract() for r in measured],
    }


def _ship(run: PipelineRun, chosen: RuntimeResult, model: nn.Module) -> ExportedArtifact:
    """Export the chosen artifact and check that it really loads and runs, or fail the pipeline."""
    stages = [s["name"] for s in run.state.completed if not s.get("skipped")]
    if chosen.candidate.method is None and "quantization" in stages:
        stages.remove("quantization")  # the compressed float model ships
    description = {
        "job": run.config.job.name,
        "stages": stages,
        "numClasses": run.bundle.num_classes,
        "task": run.bundle.task,
    }
    artifact = _export(chosen, model, run.example, description, run.ctx)
    loaded = load_exported(artifact.directory, compiled=False)
    loaded(run.example[:1])
    return artifact


def speedups(latency: dict[str, float], reference: dict[str, float]) -> dict[str, float]:
    """Reference over `latency` median, per batch size both were timed at."""
    return {
        f"batch{size}": round(reference[f"batch{size}P50"] / latency[f"batch{size}P50"], 3)
        for size in timed_sizes(latency)
        if latency.get(f"batch{size}P50") and reference.get(f"batch{size}P50")
    }


def _float_note(chosen: RuntimeResult, measured: list[RuntimeResult], serving: int | None) -> str | None:
    """Why the float model ships where a quantization stage ran: its int8 form was slower or lost
    more than the budget in the same runtime."""
    if chosen.candidate.method is not None:
        return None
    int8 = next((r for r in measured if r.runtime == chosen.runtime and r.candidate.method), None)
    if int8 is None or not int8.usable:
        return None
    form = int8.candidate.quantization
    where = f"the compressed float model ships in {chosen.runtime}: its int8 form ({form})"
    if not int8.within_budget:
        return f"{where} lost {int8.drop_points} validation points, over the budget"
    sizes = [serving] if serving else timed_sizes(int8.latency)
    times = ", ".join(
        f"{int8.latency[f'batch{size}P50']:.4g} vs {chosen.latency[f'batch{size}P50']:.4g} ms at batch {size}"
        for size in sizes
    )
    return f"{where} was slower ({times})"


def finish(run: PipelineRun, model: nn.Module, progress: ProgressSender) -> dict[str, Any]:
    """Rank 0: the evaluation stage and results.json."""
    recipe, state, bundle, example, ctx = run.recipe, run.state, run.bundle, run.example, run.ctx
    progress.stage("evaluation", "started")
    started = time.monotonic()
    runtimes = _Runtimes(run, model)
    measured = runtimes.measure()
    chosen, reason = choose(measured, recipe.export.runtime, recipe.export.batch_size)
    chosen.shipped = True
    shipped_model = chosen.candidate.source if chosen.candidate.source is not None else model
    for note in (_float_note(chosen, measured, recipe.export.batch_size), slower_than_baseline(chosen)):
        if note is not None:
            runtimes.notes.append(note)
    optimized = measure(shipped_model, bundle, example, split="test", macs=state.macs, latency_runs=1)
    artifact = _ship(run, chosen, shipped_model)
    optimized.size_bytes = artifact.size_bytes
    optimized.latency_ms = chosen.latency
    optimized.metrics = chosen.metrics
    test = runtimes.loader(eval_split(bundle, "test"))
    assert chosen.candidate.model is not None
    paired = compare_paired(
        correct_predictions(FixedBatches(chosen.candidate.model), test),
        correct_predictions(runtimes.baseline, test),
    )
    # the baseline's eager latency from the same interleaved timing, so that ratios are fair; and
    # the baseline exported to ONNX Runtime as it is, what a user gets without optikube's stages
    eager = next(r for r in measured if r.runtime == "eager")
    baseline = {**(state.baseline or {}), "latencyMs": eager.baseline_latency}
    if runtimes.export_only:
        baseline["onnxRuntimeLatencyMs"] = runtimes.export_only
    results: dict[str, Any] = {
        "baseline": baseline,
        "optimized": {
            **optimized.to_contract(),
            "runtime": chosen.runtime,
            "quantization": chosen.candidate.quantization,
            "speedup": {
                "vsPyTorch": speedups(chosen.latency, eager.baseline_latency),
                "vsOnnxRuntime": speedups(chosen.latency, runtimes.export_only),
            },
            # whether its test accuracy differs from the baseline's by more than chance
            "testComparison": paired.to_contract("optimized", "baseline"),
        },
        "stages": state.completed,
        "curves": state.curves,
        "diagnosis": state.diagnosis,
        # what the model saw: splits, classes, features, and a table's missing cells and encoding
        "data": bundle.summary,
        "runtime": _runtime_record(recipe, chosen, reason, runtimes, measured),
        "budget": _budget_record(recipe, state, chosen, bundle),
        "artifacts": {
            "model": f"{MODEL_DIR}/",
            "modelFiles": [f"{MODEL_DIR}/{path.name}" for path in artifact.files],
            "modelFormat": artifact.format,
            "runtime": chosen.runtime,
            "report": REPORT_FILE,
        },
    }
    write_report(results, ctx.output_dir / REPORT_FILE, title=f"optikube: {run.config.job.name}")
    duration = round(time.monotonic() - started, 3)
    summary = {"sizeBytes": artifact.size_bytes, "runtime": chosen.runtime}
    progress.stage("evaluation", "completed", duration_s=duration, summary=summary)
    progress.final(optimized.objective_values(), results)
    return results
