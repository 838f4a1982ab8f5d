"""The compression and quantization stages of the pipeline, each applying one technique of the
recipe to a trained model (fine-tuning with `fit` where the spec asks for it)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn

from optikube_operator.api.model import ModelSpec
from optikube_trainer.compression import (
    LowRankConfig,
    PruningConfig,
    WeightSharingConfig,
    distillation_loss_fn,
    factorize_low_rank_,
    make_pruning_permanent_,
    prune_,
    share_weights_,
    student_model_spec,
    teacher_loss_fn,
)
from optikube_trainer.compression.pruning import output_layers
from optikube_trainer.compression.pruning_allocation import SENSITIVITY_SAMPLES
from optikube_trainer.data import DataBundle
from optikube_trainer.dist import RunContext
from optikube_trainer.evaluation import count_macs, stored_parameters
from optikube_trainer.evaluation.counting import ensure_cpu
from optikube_trainer.models import build_model
from optikube_trainer.quantization import quantize
from optikube_trainer.recipe import Recipe
from optikube_trainer.training.loop import fit

QAT_LEARNING_RATE_FACTOR = 0.1


@dataclass
class StageOutcome:
    model: nn.Module
    changes: dict[str, Any]
    curves: dict[str, dict[str, list[float]]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


Stage = Callable[[nn.Module, Recipe, DataBundle, RunContext], StageOutcome]


def sample_inputs(bundle: DataBundle, count: int = 32, split: str = "val") -> Tensor:
    """The first `count` inputs of a split, identical on every rank."""
    inputs, _ = next(iter(bundle.loader(split, count, shuffle=False, distributed=False)))
    return inputs


def _fine_tune(
    model: nn.Module,
    recipe: Recipe,
    bundle: DataBundle,
    ctx: RunContext,
    epochs: int,
    *,
    teacher: nn.Module | None = None,
    **kwargs: Any,
) -> dict[str, dict[str, list[float]]] | None:
    if epochs <= 0:
        return None
    if teacher is not None:
        kwargs["loss_fn"] = teacher_loss_fn(teacher)
    return fit(model, bundle, recipe.training.for_fine_tuning(), ctx, epochs=epochs, **kwargs).curves


def _teacher(model: nn.Module, loss: str, epochs: int) -> nn.Module | None:
    """The model as it is before a stage changes it, kept as the teacher of the stage's fine-tuning
    (`fineTuneLoss: distillation`). Measured on the wide tabular MLP of bench/trainer.py, 50 %
    structured pruning then 3 epochs: fine-tuning on labels alone fell below the just-pruned model
    (overfitting 3,600 samples) and lost 2.6 points, with the unpruned model as teacher 0.75."""
    return copy.deepcopy(model).eval() if loss == "distillation" and epochs > 0 else None


def _fine_tuning(config: PruningConfig | LowRankConfig | WeightSharingConfig) -> dict[str, Any]:
    """How a stage fine-tuned, as results.json records it."""
    if config.fine_tune_epochs <= 0:
        return {}
    return {"fineTuneEpochs": config.fine_tune_epochs, "fineTuneLoss": config.fine_tune_loss}


def _counts(model: nn.Module, example: Tensor) -> tuple[int, int | None]:
    return stored_parameters(model), count_macs(model, example)


def distill(model: nn.Module, recipe: Recipe, bundle: DataBundle, ctx: RunContext) -> StageOutcome:
    config = recipe.distillation
    assert config is not None
    student_spec = ModelSpec.model_validate(student_model_spec(config))
    torch.manual_seed(ctx.seed)  # every rank builds the same initial student
    student = build_model(student_spec, bundle, dropout=recipe.training.regularization.dropout)
    example = sample_inputs(bundle, 2).to(ctx.device)
    teacher_params, teacher_macs = _counts(model.to(ctx.device), example)
    loss_fn = distillation_loss_fn(model, config)
    curves = _fine_tune(student, recipe, bundle, ctx, config.epochs, loss_fn=loss_fn)
    student_params, student_macs = _counts(student, example)
    changes = {
        "student": student_spec.model_dump(by_alias=True, exclude_none=True),
        "temperature": config.temperature,
        "alpha": config.alpha,
        "epochs": config.epochs,
        "parametersBefore": teacher_params,
        "parametersAfter": student_params,
        "macsBefore": teacher_macs,
        "macsAfter": student_macs,
    }
    return StageOutcome(student, changes, curves)


def prune(model: nn.Module, recipe: Recipe, bundle: DataBundle, ctx: RunContext) -> StageOutcome:
    config = recipe.pruning
    assert config is not None
    model.to(ctx.device)
    teacher = _teacher(model, config.fine_tune_loss, config.fine_tune_epochs)
    # the sensitivity allocation measures each layer on training inputs, which must be the same on
    # every rank (augmentation draws from torch's generator: seeded here, the run's own untouched)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(ctx.seed)
        calibration = sample_inputs(bundle, SENSITIVITY_SAMPLES, split="train").to(ctx.device)
    summary = prune_(model, config, sample_inputs(bundle, 2).to(ctx.device), calibration=calibration)
    curves = _fine_tune(model, recipe, bundle, ctx, config.fine_tune_epochs, teacher=teacher)
    make_pruning_permanent_(model)
    return StageOutcome(model, {**summary.changes(), **_fine_tuning(config)}, curves)


def low_rank(model: nn.Module, recipe: Recipe, bundle: DataBundle, ctx: RunContext) -> StageOutcome:
    config = recipe.low_rank
    assert config is not None
    example = sample_inputs(bundle, 2).to(ctx.device)
    model.to(ctx.device)
    before = _counts(model, example)
    teacher = _teacher(model, config.fine_tune_loss, config.fine_tune_epochs)
    summary = factorize_low_rank_(model, config, ignored_layers=output_layers(model, example))
    if not summary.layers:  # nothing was factorized: fine-tuning would only move the model
        config = replace(config, fine_tune_epochs=0)
    curves = _fine_tune(model, recipe, bundle, ctx, config.fine_tune_epochs, teacher=teacher)
    after = _counts(model, example)
    changes = {
        **summary.changes(),
        **_fine_tuning(config),
        "parametersBefore": before[0],
        "parametersAfter": after[0],
        "macsBefore": before[1],
        "macsAfter": after[1],
    }
    return StageOutcome(model, changes, curves)


def share_weights(model: nn.Module, recipe: Recipe, bundle: DataBundle, ctx: RunContext) -> StageOutcome:
    config = recipe.weight_sharing
    assert config is not None
    model.to(ctx.device)
    macs = count_macs(model, sample_inputs(bundle, 1).to(ctx.device))  # sharing keeps the MACs
    teacher = _teacher(model, config.fine_tune_loss, config.fine_tune_epochs)
    summary = share_weights_(model, config)
    curves = _fine_tune(model, recipe, bundle, ctx, config.fine_tune_epochs, teacher=teacher)
    changes = {**summary.changes(), **_fine_tuning(config)}
    return StageOutcome(model, changes, curves, {"macs": macs} if macs is not None else {})


def calibration_batches(bundle: DataBundle, batch_size: int, batches: int) -> Callable[[], Iterator[Tensor]]:
    def batches_of_train() -> Iterator[Tensor]:
        # not distributed and not shuffled: every rank calibrates on the same data, same result
        loader = bundle.loader("train", batch_size, shuffle=False, distributed=False)
        for index, (inputs, _) in enumerate(loader):
            if index >= batches:
                return
            yield inputs

    return batches_of_train


def quantize_stage(model: nn.Module, recipe: Recipe, bundle: DataBundle, ctx: RunContext) -> StageOutcome:
    config = recipe.quantization
    assert config is not None
    example = sample_inputs(bundle, 4)
    macs = count_macs(ensure_cpu(model), example[:1])  # quantizing keeps the MAC count
    curves: list[dict[str, dict[str, list[float]]] | None] = []
    # QAT starts from a converged model: it fine-tunes at a tenth of the training learning rate
    qat_recipe = replace(recipe, training=recipe.training.with_learning_rate(QAT_LEARNING_RATE_FACTOR))
    qat_epochs = config.qat_epochs or 0  # set exactly when the method is qat (the API's rule)

    def train(prepared: nn.Module) -> None:
        curves.append(_fine_tune(prepared, qat_recipe, bundle, ctx, qat_epochs))
        ensure_cpu(prepared)

    model.eval()
    quantized, summary = quantize(
        model,
        config,
        example_inputs=example,
        calibration=calibration_batches(bundle, recipe.training.batch_size, config.calibration_batches),
        train=train,
    )
    ensure_cpu(quantized)
    extra = {"macs": macs} if macs is not None else {}
    return StageOutcome(quantized, summary.changes(), curves[0] if curves else None, extra)


STAGES: dict[str, Stage] = {
    "distillation": distill,
    "pruning": prune,
    "lowRank": low_rank,
    "weightSharing": share_weights,
    "quantization": quantize_stage,
}
