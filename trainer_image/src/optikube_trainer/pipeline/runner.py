"""The `pipeline` stage: train with the best parameters, measure the baseline, compress and
quantize as the spec says (each stage held to the accuracy budget), then evaluate every runtime,
export the chosen artifact, write results and report."""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import replace
from typing import Any

from torch import nn

from optikube_operator.api.runconfig import RunConfig
from optikube_trainer.data import DataBundle, load_job_data
from optikube_trainer.dist import RunContext, barrier, broadcast_object, seed_everything
from optikube_trainer.evaluation import count_macs
from optikube_trainer.evaluation.counting import ensure_cpu
from optikube_trainer.models import build_model
from optikube_trainer.pipeline.budget import Guarded, run_within_budget, validation_value
from optikube_trainer.pipeline.checkpoint import load_state, save_stage
from optikube_trainer.pipeline.evaluation import finish
from optikube_trainer.pipeline.latency_check import (
    StageModels,
    check_runtimes,
    check_sizes,
    check_stage_latency,
)
from optikube_trainer.pipeline.measuring import measure
from optikube_trainer.pipeline.run import PipelineRun
from optikube_trainer.pipeline.stages import STAGES, StageOutcome, calibration_batches, sample_inputs
from optikube_trainer.recipe import Recipe, read_recipe
from optikube_trainer.training.loop import fit

log = logging.getLogger(__name__)


def _record(
    run: PipelineRun,
    name: str,
    model: nn.Module,
    changes: dict[str, Any],
    duration: float,
    status: str = "completed",
) -> None:
    state, ctx = run.state, run.ctx
    entry: dict[str, Any] = {"name": name, "durationSeconds": duration, "changes": changes}
    budget = changes.pop("budget", None)
    if budget is not None:
        entry["budget"] = budget
    if status == "skipped":
        entry["skipped"] = True
    state.completed.append(entry)
    save_stage(ctx, state, model, run.example)
    ctx.progress_sender().stage(
        name, status, duration_s=duration, summary={**changes, **({"budget": budget} if budget else {})}
    )


def _train(run: PipelineRun) -> nn.Module:
    recipe, state, bundle, example, ctx = run.recipe, run.state, run.bundle, run.example, run.ctx
    ctx.progress_sender().stage("train", "started")
    started = time.monotonic()
    seed_everything(ctx.seed)  # the same trained model however the process was started
    trained = build_model(recipe.model, bundle, dropout=recipe.training.regularization.dropout)
    checkpoints = ctx.output_dir / "pipeline" / "train-checkpoint"
    result = fit(trained, bundle, recipe.training, ctx, checkpoint_dir=checkpoints)
    ensure_cpu(trained)
    state.curves, state.diagnosis = result.curves, result.diagnosis
    changes: dict[str, Any] = {
        "epochsRun": result.epochs_run,
        "bestEpoch": result.best_epoch,
        "stoppedEarly": result.stopped_early,
    }
    if ctx.is_main:
        # the eager baseline's latency is timed again beside the optimized model at the end
        baseline = measure(trained, bundle, example, split="test", macs=None, latency_runs=0)
        state.baseline = baseline.to_contract()
        state.macs = baseline.macs
        state.baseline_validation = round(validation_value(trained, bundle, recipe.budget.metric), 6)
        changes["validationAccuracyAfter"] = round(validation_value(trained, bundle, "accuracy"), 6)
    # every rank judges the later stages against the same baseline (the budget checks run on all)
    state.baseline_validation = float(broadcast_object(state.baseline_validation or 0.0))  # type: ignore[arg-type]
    state.baseline_model_file = f"model-{len(state.completed) + 1}"  # the name save_stage gives it
    _record(run, "train", trained, changes, round(time.monotonic() - started, 3))
    return trained


def _compress(run: PipelineRun, name: str, model: nn.Module) -> nn.Module:
    recipe, state, bundle, ctx = run.recipe, run.state, run.bundle, run.ctx
    progress = ctx.progress_sender()
    progress.stage(name, "started")
    started = time.monotonic()
    if name == "quantization":
        state.float_model_file = state.model_file  # ONNX Runtime quantizes this float model itself
    assert state.baseline_validation is not None
    budget = recipe.budget.against(state.baseline_validation)

    def attempt_stage(before: nn.Module, attempt: Recipe) -> StageOutcome:
        return STAGES[name](before, attempt, bundle, ctx)

    def on_retry(summary: dict[str, Any]) -> None:
        progress.stage(name, "retried", summary=summary)

    guarded = run_within_budget(name, model, recipe, bundle, ctx, budget, attempt_stage, on_retry)
    if guarded.outcome is not None and recipe.skip_slower_stages:
        guarded = _check_latency(run, name, model, guarded)
    duration = round(time.monotonic() - started, 3)
    changes: dict[str, Any] = {"budget": guarded.record}
    if guarded.outcome is None:
        if name == "quantization":
            state.quantization_method = None
        changes["validationAccuracyAfter"] = None
        _record(run, name, guarded.model, changes, duration, status="skipped")
        return guarded.model
    outcome = guarded.outcome
    if outcome.extra.get("macs") is not None:
        state.macs = outcome.extra["macs"]
    if name == "quantization":
        assert guarded.recipe.quantization is not None
        state.quantization_method = guarded.recipe.quantization.method
    changes.update(outcome.changes)
    if ctx.is_main:
        changes["validationAccuracyAfter"] = round(validation_value(outcome.model, bundle, "accuracy"), 6)
    _record(run, name, outcome.model, changes, duration)
    return outcome.model


def _check_latency(run: PipelineRun, name: str, before: nn.Module, guarded: Guarded) -> Guarded:
    """The stage's latency check (rank 0 times, every rank gets the verdict): a stage that made the
    shipped runtime slower is skipped like one over the budget, its numbers in the budget record."""
    recipe, ctx = run.recipe, run.ctx
    check: dict[str, Any] = {}
    if ctx.is_main:
        quantization = guarded.recipe.quantization if name == "quantization" else None
        calibration = (
            calibration_batches(run.bundle, recipe.training.batch_size, quantization.calibration_batches)
            if quantization is not None
            else None
        )
        method = quantization.method if quantization is not None else None
        models = StageModels(before, guarded.model, method, calibration)
        directory = ctx.output_dir / "pipeline" / "latency-check" / name
        check = check_stage_latency(
            models,
            run.example,
            runtimes=check_runtimes(recipe.export.runtime),
            sizes=check_sizes(recipe.export.batch_size),
            directory=directory,
        ).to_contract()
        shutil.rmtree(directory, ignore_errors=True)  # the ONNX files timed (a ResNet-18 is 45 MB)
    check = broadcast_object(check)  # type: ignore[assignment]
    record = {**guarded.record, "latencyCheck": check}
    if not check.get("slower"):
        return replace(guarded, record=record)
    record.update(outcome="skipped", reason=check["reason"])
    return Guarded(before, None, recipe, record)


def run_pipeline(config: RunConfig, ctx: RunContext) -> dict[str, Any] | None:
    """Run (or resume) the pipeline; rank 0 returns the results.json payload, other ranks None."""
    recipe = read_recipe(config.spec, ctx.world_size, config.stage)
    bundle = load_job_data(recipe, ctx)
    example = sample_inputs(bundle, 32)
    state, model = load_state(ctx)
    if state.completed:
        log.info("resuming the pipeline after stage %s", state.completed[-1]["name"])
    run = PipelineRun(config, recipe, state, bundle, example, ctx)
    if not state.done("train"):
        model = _train(run)
    assert model is not None
    for name in recipe.stages:
        if not state.done(name):
            model = _compress(run, name, model)
    results = finish(run, model, ctx.progress_sender()) if ctx.is_main else None
    barrier()
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


__all__ = ["compress_and_quantize", "measure", "run_pipeline"]
