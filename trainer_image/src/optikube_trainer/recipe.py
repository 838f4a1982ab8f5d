"""The trainer's reading of a run config: every setting a stage uses, resolved once.

The spec is `optikube_operator.api`'s own model (there is no second schema here); this module is the
one place where the trainer interprets it: absent optional blocks, the global batch split over the
processes, the technique configs built from their spec blocks. Stages take a `Recipe`, and the
contract test (tests/contract/test_spec_contract.py) checks that every value in it is what the user
wrote or the documented default, for hundreds of generated specs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from optikube_operator.api import OptimizationJobSpec
from optikube_operator.api.compression import CompressionSpec
from optikube_operator.api.data import DataSpec, TextPreprocessing
from optikube_operator.api.model import ModelSpec
from optikube_operator.api.objectives import MODEL_METRICS, Objective
from optikube_operator.api.runconfig import Stage
from optikube_operator.api.training import Optimizer, Regularization, Scheduler, TrainingSpec
from optikube_trainer.compression import DistillationConfig, LowRankConfig, PruningConfig, WeightSharingConfig

if TYPE_CHECKING:  # the quantization package imports torchao and dynamo: seconds a preflight saves
    from optikube_trainer.quantization import QuantizationConfig

STAGE_ORDER = ("distillation", "pruning", "lowRank", "weightSharing", "quantization")
COMPRESSION_KEYS = ("compression.", "quantization.")
# Metrics the accuracy budget can be counted in (fractions, so 100 x is points); others use accuracy.
BUDGET_METRICS = ("accuracy", "f1")


def text_preprocessing(data: DataSpec) -> TextPreprocessing:
    """The text settings; the documented defaults when the block is absent."""
    return data.preprocessing.text or TextPreprocessing()


def folds(data: DataSpec) -> int:
    """Cross-validation folds of a trial; 0 when cross-validation is off."""
    return data.cross_validation.folds if data.cross_validation is not None else 0


def pretrained_tokenizer(model: ModelSpec) -> str | None:
    """Where the `pretrained` tokenizer comes from: the job's Hugging Face model."""
    hub = model.huggingface
    return None if hub is None else (hub.local_path or hub.name)


def compresses_trials(spec: OptimizationJobSpec) -> bool:
    """Run compression/quantization in a trial only when the search or the objectives depend on it."""
    has_blocks = spec.compression is not None or spec.quantization is not None
    touched = any(key.startswith(COMPRESSION_KEYS) for key in spec.search_keys())
    measured = any(o.metric in MODEL_METRICS and o.metric != "parameters" for o in spec.objectives)
    return (has_blocks and touched) or measured


def max_accuracy_drop(compression: CompressionSpec | None) -> float:
    """The budget in points; the field's default when the spec has no compression block (a
    quantization-only spec is held to the same budget)."""
    if compression is None:
        return float(CompressionSpec.model_fields["max_accuracy_drop"].default)
    return float(compression.max_accuracy_drop)


def skip_slower_stages(compression: CompressionSpec | None) -> bool:
    """Whether a stage that makes the shipped runtime slower is skipped; the field's default when the
    spec has no compression block (a quantization-only spec is checked the same way)."""
    if compression is None:
        return bool(CompressionSpec.model_fields["skip_slower_stages"].default)
    return compression.skip_slower_stages


def budget_metric(objectives: tuple[Objective, ...]) -> str:
    """The primary objective's metric when it is a task score, else accuracy."""
    primary = objectives[0].metric if objectives else "accuracy"
    return primary if primary in BUDGET_METRICS else "accuracy"


@dataclass(frozen=True)
class AccuracyBudget:
    """`compression.maxAccuracyDrop`: the most points of `metric` the validation split may lose
    against the trained model, whose value there (`baseline`) the pipeline learns after training."""

    metric: str
    max_accuracy_drop: float
    baseline: float | None = None

    def against(self, baseline: float) -> AccuracyBudget:
        return replace(self, baseline=baseline)

    def drop(self, value: float) -> float:
        """Points lost against the baseline (negative when the stage gained)."""
        assert self.baseline is not None, "the budget is judged against the trained model's value"
        return round(100.0 * (self.baseline - value), 4) + 0.0  # no "-0.0" in results.json

    def allows(self, value: float) -> bool:
        return self.drop(value) <= self.max_accuracy_drop + 1e-9

    def to_contract(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "maxAccuracyDrop": self.max_accuracy_drop,
            "baselineValidation": self.baseline,
        }


@dataclass(frozen=True)
class ExportRecipe:
    runtime: str  # auto | eager | compiled | onnx
    batch_size: int | None = None  # the serving batch size auto chooses by (None: batch 1 and 32)


@dataclass(frozen=True)
class DataRecipe:
    spec: DataSpec
    text: TextPreprocessing
    folds: int
    pretrained_tokenizer: str | None

    @classmethod
    def from_spec(cls, spec: OptimizationJobSpec) -> DataRecipe:
        return cls(
            spec=spec.data,
            text=text_preprocessing(spec.data),
            folds=folds(spec.data),
            pretrained_tokenizer=pretrained_tokenizer(spec.model),
        )


@dataclass(frozen=True)
class TrainingRecipe:
    """`spec.training` as the training loop uses it. `batch_size` is the global batch; each of the
    `world_size` processes loads `per_process_batch` of it. `patience` 0: no early stopping."""

    epochs: int
    batch_size: int
    world_size: int
    per_process_batch: int
    optimizer: Optimizer
    learning_rate: float
    scheduler: Scheduler
    regularization: Regularization
    mixed_precision: str
    gradient_clip_norm: float
    patience: int
    min_delta: float

    @classmethod
    def from_spec(cls, training: TrainingSpec, world_size: int = 1) -> TrainingRecipe:
        stopping = training.early_stopping
        return cls(
            epochs=training.epochs,
            batch_size=training.batch_size,
            world_size=world_size,
            per_process_batch=max(1, math.ceil(training.batch_size / max(world_size, 1))),
            optimizer=training.optimizer,
            learning_rate=training.learning_rate,
            scheduler=training.scheduler,
            regularization=training.regularization,
            mixed_precision=training.mixed_precision,
            gradient_clip_norm=training.gradient_clip_norm,
            patience=stopping.patience if stopping is not None else 0,
            min_delta=stopping.min_delta if stopping is not None else 0.0,
        )

    def for_fine_tuning(self) -> TrainingRecipe:
        """A stage's fine-tuning: the spec's settings, with a constant learning rate replaced by a
        cosine decay over the fine-tuning epochs. A stage's model is judged against the accuracy
        budget right after its fine-tuning; at a constant rate that is whatever the last noisy steps
        left (a gentler setting could measure worse than a harsher one), while a decay to zero ends
        at a settled point. A schedule the spec sets is kept."""
        if self.scheduler.type != "none":
            return self
        return replace(self, scheduler=self.scheduler.model_copy(update={"type": "cosine"}))

    def with_learning_rate(self, factor: float) -> TrainingRecipe:
        return replace(self, learning_rate=self.learning_rate * factor)


@dataclass(frozen=True)
class Recipe:
    stage: str
    seed: int
    objectives: tuple[Objective, ...]
    data: DataRecipe
    model: ModelSpec
    training: TrainingRecipe
    distillation: DistillationConfig | None
    pruning: PruningConfig | None
    low_rank: LowRankConfig | None
    weight_sharing: WeightSharingConfig | None
    quantization: QuantizationConfig | None
    compresses_trials: bool
    budget: AccuracyBudget
    export: ExportRecipe
    skip_slower_stages: bool  # the per-stage latency check (pipeline/latency_check.py)

    @property
    def stages(self) -> tuple[str, ...]:
        """The compression and quantization stages that run, in pipeline order."""
        present = {
            "distillation": self.distillation,
            "pruning": self.pruning,
            "lowRank": self.low_rank,
            "weightSharing": self.weight_sharing,
            "quantization": self.quantization,
        }
        return tuple(name for name in STAGE_ORDER if present[name] is not None)


def read_recipe(spec: OptimizationJobSpec, world_size: int, stage: Stage = "pipeline") -> Recipe:
    """What a ``stage`` run of ``spec`` (a run config's spec) does on ``world_size`` processes."""
    from optikube_trainer.quantization import QuantizationConfig

    compression = spec.compression
    blocks = (
        (compression.distillation, compression.pruning, compression.low_rank, compression.weight_sharing)
        if compression is not None
        else (None, None, None, None)
    )
    distillation, pruning, low_rank, weight_sharing = blocks
    return Recipe(
        stage=stage,
        seed=spec.seed,
        objectives=tuple(spec.objectives),
        data=DataRecipe.from_spec(spec),
        model=spec.model,
        training=TrainingRecipe.from_spec(spec.training, world_size),
        distillation=DistillationConfig.from_spec(distillation) if distillation else None,
        pruning=PruningConfig.from_spec(pruning) if pruning else None,
        low_rank=LowRankConfig.from_spec(low_rank) if low_rank else None,
        weight_sharing=WeightSharingConfig.from_spec(weight_sharing) if weight_sharing else None,
        quantization=QuantizationConfig.from_spec(spec.quantization) if spec.quantization else None,
        compresses_trials=compresses_trials(spec),
        budget=AccuracyBudget(
            metric=budget_metric(tuple(spec.objectives)), max_accuracy_drop=max_accuracy_drop(compression)
        ),
        export=ExportRecipe(runtime=spec.export.runtime, batch_size=spec.export.batch_size),
        skip_slower_stages=skip_slower_stages(compression),
    )
