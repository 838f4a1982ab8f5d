"""The ``trial`` stage: train and evaluate one set of sampled parameters, reporting every epoch."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from optikube_operator.api.objectives import EPOCH_METRICS, VALIDATION_SAMPLES
from optikube_operator.api.runconfig import RunConfig
from optikube_trainer.data import DataBundle, load_job_data, load_job_folds
from optikube_trainer.dist import RunContext
from optikube_trainer.models import build_model, count_parameters
from optikube_trainer.progress import ProgressSender
from optikube_trainer.recipe import Recipe, read_recipe
from optikube_trainer.training.loop import FitResult, evaluate, fit


def _epoch_sender(progress: ProgressSender, step_offset: int) -> Callable[[int, dict[str, float]], bool]:
    # only the validation metrics exist per epoch; a measured primary objective (latencyMs, ...)
    # is absent from intermediate events rather than null, and is known from the final event on

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        values = {k: metrics[k] for k in EPOCH_METRICS if k in metrics}
        return progress.intermediate(epoch, values, step=step_offset + epoch)

    return report


def _train_one(
    recipe: Recipe,
    bundle: DataBundle,
    ctx: RunContext,
    progress: ProgressSender,
    step_offset: int,
    checkpoint_name: str,
) -> tuple[Any, FitResult, dict[str, float]]:
    model = build_model(recipe.model, bundle, dropout=recipe.training.regularization.dropout)
    result = fit(
        model,
        bundle,
        recipe.training,
        ctx,
        on_epoch_end=_epoch_sender(progress, step_offset),
        checkpoint_dir=ctx.output_dir / checkpoint_name,
    )
    val = bundle.loader("val", recipe.training.per_process_batch)
    metrics = evaluate(model, val, ctx, num_classes=bundle.num_classes)
    return model, result, metrics


def run_trial(config: RunConfig, ctx: RunContext) -> dict[str, Any]:
    """Returns the final event's payload (values and results); a pruned trial returns type 'pruned'."""
    recipe = read_recipe(config.spec, ctx.world_size, config.stage)
    progress = ctx.progress_sender()
    started = time.monotonic()
    folds = recipe.data.folds
    bundles = load_job_folds(recipe, ctx) if folds >= 2 else [load_job_data(recipe, ctx)]
    fold_metrics: list[dict[str, float]] = []
    fold_results: list[FitResult] = []
    model: Any = None
    for index, bundle in enumerate(bundles):
        model, result, metrics = _train_one(
            recipe,
            bundle,
            ctx,
            progress,
            index * recipe.training.epochs,
            f"checkpoints/fold{index}" if folds >= 2 else "checkpoints",
        )
        fold_results.append(result)
        fold_metrics.append(metrics)
        if result.pruned:
            progress.pruned(result.epochs_run - 1, {k: metrics[k] for k in EPOCH_METRICS})
            return {"type": "pruned", "epoch": result.epochs_run - 1, "values": metrics}

    values = {k: sum(m[k] for m in fold_metrics) / len(fold_metrics) for k in EPOCH_METRICS}
    values["parameters"] = float(count_parameters(model))
    # how many samples the score stands on: one of them is worth 1/n of an accuracy, which tells
    # the core whether the split can rank trials at all (docs/tuning.md)
    values[VALIDATION_SAMPLES] = float(sum(bundle.samples("val") for bundle in bundles))
    if recipe.compresses_trials:
        from optikube_trainer.pipeline import compress_and_quantize  # part of the pipeline package

        model, measured = compress_and_quantize(model, recipe, bundles[-1], ctx)
        values.update(measured)
        values[VALIDATION_SAMPLES] = float(bundles[-1].samples("val"))
    last = fold_results[-1]
    results: dict[str, Any] = {
        "trial": ctx.trial,
        "values": values,
        "curves": last.curves,
        "diagnosis": last.diagnosis,
        "bestEpoch": last.best_epoch,
        "epochsRun": last.epochs_run,
        "stoppedEarly": last.stopped_early,
        "durationSeconds": time.monotonic() - started,
    }
    if folds >= 2:
        results["folds"] = [{"fold": i, **m} for i, m in enumerate(fold_metrics)]
    progress.final(values, results)
    return {"type": "final", "values": values, "results": results}
