"""The ``trial`` stage: train and evaluate one set of sampled parameters, reporting every epoch."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from optikube_trainer.config import MEASURED_METRICS, TRAINING_METRICS, RunConfig, Spec
from optikube_trainer.data import DataBundle, load_data, load_folds
from optikube_trainer.dist import RunContext
from optikube_trainer.models import build_model, count_parameters
from optikube_trainer.reporting import Reporter
from optikube_trainer.training.loop import FitResult, evaluate, fit

COMPRESSION_KEYS = ("compression.", "quantization.")


def needs_compression(spec: Spec) -> bool:
    """Run compression/quantization in a trial only when the search or the objectives depend on it."""
    has_blocks = (spec.compression is not None and spec.compression.any) or spec.quantization is not None
    touched = any(key.startswith(COMPRESSION_KEYS) for key in spec.search_space_keys)
    measured = any(o.metric in MEASURED_METRICS and o.metric != "parameters" for o in spec.objectives)
    return (has_blocks and touched) or measured


def _reporter(ctx: RunContext) -> Reporter:
    if ctx.reporter is None:
        ctx.reporter = Reporter(rank=ctx.rank, trial=ctx.trial, output_dir=ctx.output_dir)
    return ctx.reporter


def _epoch_reporter(reporter: Reporter, step_offset: int) -> Callable[[int, dict[str, float]], bool]:
    # only the validation metrics exist per epoch; a measured primary objective (latencyMs, ...)
    # is absent from intermediate events rather than null, and is known from the final event on

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        values = {k: metrics[k] for k in TRAINING_METRICS if k in metrics}
        return reporter.intermediate(epoch, values, step=step_offset + epoch)

    return report


def _train_one(
    spec: Spec,
    bundle: DataBundle,
    ctx: RunContext,
    reporter: Reporter,
    step_offset: int,
    checkpoint_name: str,
) -> tuple[Any, FitResult, dict[str, float]]:
    model = build_model(spec.model, bundle, dropout=spec.training.regularization.dropout)
    result = fit(
        model,
        bundle,
        spec.training,
        ctx,
        on_epoch_end=_epoch_reporter(reporter, step_offset),
        checkpoint_dir=ctx.output_dir / checkpoint_name,
    )
    metrics = evaluate(
        model, bundle.loader("val", spec.training.batch_size), ctx, num_classes=bundle.num_classes
    )
    return model, result, metrics


def run_trial(config: RunConfig, ctx: RunContext) -> dict[str, Any]:
    """Returns the final event's payload (values and results); a pruned trial returns type 'pruned'."""
    spec = config.spec
    reporter = _reporter(ctx)
    started = time.monotonic()
    folds = spec.data.cross_validation.folds
    bundles = load_folds(spec.data, spec.seed, ctx) if folds >= 2 else [load_data(spec.data, spec.seed, ctx)]
    fold_metrics: list[dict[str, float]] = []
    fold_results: list[FitResult] = []
    model: Any = None
    for index, bundle in enumerate(bundles):
        model, result, metrics = _train_one(
            spec,
            bundle,
            ctx,
            reporter,
            index * spec.training.epochs,
            f"checkpoints/fold{index}" if folds >= 2 else "checkpoints",
        )
        fold_results.append(result)
        fold_metrics.append(metrics)
        if result.pruned:
            reporter.pruned(result.epochs_run - 1, {k: metrics[k] for k in TRAINING_METRICS})
            return {"type": "pruned", "epoch": result.epochs_run - 1, "values": metrics}

    values = {k: sum(m[k] for m in fold_metrics) / len(fold_metrics) for k in TRAINING_METRICS}
    values["parameters"] = float(count_parameters(model))
    if needs_compression(spec):
        from optikube_trainer.pipeline import compress_and_quantize  # part of the pipeline package

        model, measured = compress_and_quantize(model, spec, bundles[-1], ctx)
        values.update(measured)
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
    reporter.final(values, results)
    return {"type": "final", "values": values, "results": results}
