"""The `pipeline` stage: train with the best parameters, measure the baseline, compress and
quantize as the spec says, measure again on the test split, export, write results and report."""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
from torch import Tensor, fx, nn

from optikube_operator.api.runconfig import RunConfig
from optikube_trainer.data import DataBundle, load_job_data
from optikube_trainer.dist import RunContext, barrier, broadcast_object
from optikube_trainer.evaluation import Measurement, count_macs, measure_model
from optikube_trainer.evaluation.counting import ensure_cpu
from optikube_trainer.evaluation.metrics import classification_metrics
from optikube_trainer.events import Reporter
from optikube_trainer.export import artifact_size_bytes, export_model, load_exported
from optikube_trainer.models import build_model
from optikube_trainer.pipeline.checkpoint import PipelineCheckpoint, load_state, save_stage
from optikube_trainer.pipeline.html_report import write_report
from optikube_trainer.pipeline.stages import STAGES, sample_inputs
from optikube_trainer.recipe import Recipe, read_recipe
from optikube_trainer.training.loop import fit

log = logging.getLogger(__name__)

MODEL_DIR = "model"
REPORT_FILE = "report.html"


def _reporter(ctx: RunContext) -> Reporter:
    if ctx.reporter is None:
        ctx.reporter = Reporter(rank=ctx.rank, trial=ctx.trial, output_dir=ctx.output_dir)
    return ctx.reporter


def _eval_split(bundle: DataBundle, preferred: str) -> str:
    return preferred if len(bundle.split(preferred)) > 0 else "val"  # type: ignore[arg-type]


def measure(
    model: nn.Module,
    bundle: DataBundle,
    example: Tensor,
    *,
    split: str,
    macs: int | None,
    batch_size: int = 256,
    latency_runs: int = 50,
) -> Measurement:
    """Measure `model` on CPU in this process only (call on rank 0)."""
    ensure_cpu(model)
    loader = bundle.loader(_eval_split(bundle, split), batch_size, shuffle=False, distributed=False)
    metrics = classification_metrics(model, loader, bundle.num_classes)
    # graph-mode int8 models are not countable (0 or None): they keep their float model's MACs
    counted = None if isinstance(model, fx.GraphModule) else count_macs(model, example[:1])
    return measure_model(
        model,
        metrics=metrics,
        size_bytes=artifact_size_bytes(model, example),
        sample_inputs=example,
        macs=counted if counted is not None else macs,
        latency_runs=latency_runs,
    )


def _validation_accuracy(model: nn.Module, bundle: DataBundle) -> float:
    device = next(iter([*model.parameters(), *model.buffers()]), torch.empty(0)).device
    batches = (
        (inputs.to(device), targets.to(device))
        for inputs, targets in bundle.loader("val", 256, shuffle=False, distributed=False)
    )
    return classification_metrics(model, batches, bundle.num_classes)["accuracy"]


def _run_stage(
    name: str, state: PipelineCheckpoint, ctx: RunContext, bundle: DataBundle, example: Tensor, work: Any
) -> nn.Module:
    reporter = _reporter(ctx)
    reporter.stage(name, "started")
    started = time.monotonic()
    model, changes = work()
    duration = round(time.monotonic() - started, 3)
    if ctx.is_main:
        changes["validationAccuracyAfter"] = round(_validation_accuracy(model, bundle), 6)
    state.completed.append({"name": name, "durationSeconds": duration, "changes": changes})
    save_stage(ctx, state, model, example)
    reporter.stage(name, "completed", duration_s=duration, summary=changes)
    return model


def run_pipeline(config: RunConfig, ctx: RunContext) -> dict[str, Any] | None:
    """Run (or resume) the pipeline; rank 0 returns the results.json payload, other ranks None."""
    spec = config.spec
    recipe = read_recipe(spec, ctx.world_size, config.stage)
    bundle = load_job_data(spec, ctx)
    example = sample_inputs(bundle, 32)
    state, model = load_state(ctx)
    if state.completed:
        log.info("resuming the pipeline after stage %s", state.completed[-1]["name"])

    if not state.done("train"):

        def train() -> tuple[nn.Module, dict[str, Any]]:
            trained = build_model(spec.model, bundle, dropout=spec.training.regularization.dropout)
            result = fit(
                trained,
                bundle,
                spec.training,
                ctx,
                checkpoint_dir=ctx.output_dir / "pipeline" / "train-checkpoint",
            )
            ensure_cpu(trained)
            state.curves, state.diagnosis = result.curves, result.diagnosis
            if ctx.is_main:
                baseline = measure(trained, bundle, example, split="test", macs=None)
                state.baseline = baseline.to_contract()
                state.macs = baseline.macs
            return trained, {
                "epochsRun": result.epochs_run,
                "bestEpoch": result.best_epoch,
                "stoppedEarly": result.stopped_early,
            }

        model = _run_stage("train", state, ctx, bundle, example, train)
    assert model is not None

    for name in recipe.stages:
        if state.done(name):
            continue
        current = model

        def work(stage: str = name, before: nn.Module = current) -> tuple[nn.Module, dict[str, Any]]:
            outcome = STAGES[stage](before, recipe, bundle, ctx)
            if outcome.extra.get("macs") is not None:
                state.macs = outcome.extra["macs"]
            return outcome.model, outcome.changes

        model = _run_stage(name, state, ctx, bundle, example, work)

    results = _finish(config, state, model, bundle, example, ctx) if ctx.is_main else None
    barrier()
    return results


def _finish(
    config: RunConfig,
    state: PipelineCheckpoint,
    model: nn.Module,
    bundle: DataBundle,
    example: Tensor,
    ctx: RunContext,
) -> dict[str, Any]:
    reporter = _reporter(ctx)
    reporter.stage("evaluation", "started")
    started = time.monotonic()
    optimized = measure(model, bundle, example, split="test", macs=state.macs)
    artifact = export_model(
        model,
        ctx.output_dir / MODEL_DIR,
        example_inputs=example,
        description={
            "job": config.job.name,
            "stages": [s["name"] for s in state.completed],
            "numClasses": bundle.num_classes,
            "task": bundle.task,
        },
    )
    loaded = load_exported(artifact.directory)
    loaded(example[:1])  # the artifact must really load and run, or the pipeline fails here
    optimized.size_bytes = artifact.size_bytes
    results: dict[str, Any] = {
        "baseline": state.baseline,
        "optimized": optimized.to_contract(),
        "stages": state.completed,
        "curves": state.curves,
        "diagnosis": state.diagnosis,
        "artifacts": {
            "model": f"{MODEL_DIR}/",
            "modelFiles": [f"{MODEL_DIR}/{path.name}" for path in artifact.files],
            "modelFormat": artifact.format,
            "report": REPORT_FILE,
        },
    }
    write_report(results, ctx.output_dir / REPORT_FILE, title=f"optikube: {config.job.name}")
    duration = round(time.monotonic() - started, 3)
    reporter.stage("evaluation", "completed", duration_s=duration, summary={"sizeBytes": artifact.size_bytes})
    reporter.final(optimized.objective_values(), results)
    return results


def compress_and_quantize(
    model: nn.Module, recipe: Recipe, bundle: DataBundle, ctx: RunContext
) -> tuple[nn.Module, dict[str, float]]:
    """Apply the recipe's compression and quantization to a trained trial model and measure it on the
    validation split. Every rank calls this; the values are rank 0's measurement."""
    example = sample_inputs(bundle, 32)
    macs = count_macs(ensure_cpu(model), example[:1])
    for name in recipe.stages:
        outcome = STAGES[name](model, recipe, bundle, ctx)
        model = outcome.model
        macs = outcome.extra.get("macs", macs)
    values: dict[str, float] = {}
    if ctx.is_main:
        values = measure(model, bundle, example, split="val", macs=macs).objective_values()
    shared = broadcast_object(values)
    assert isinstance(shared, dict)
    return model, shared
