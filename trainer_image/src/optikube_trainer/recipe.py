"""The trainer's reading of a run config: every setting a stage uses, resolved once.

The spec is `optikube_operator.api`'s own model (there is no second schema here); this module is the
one place where the trainer interprets it: absent optional blocks, the global batch split over the
processes, the technique configs built from their spec blocks. Stages take a `Recipe`, and the
contract test (tests/contract/test_spec_contract.py) checks that every value in it is what the user
wrote or the documented default, for hundreds of generated specs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from optikube_operator.api import OptimizationJobSpec
from optikube_operator.api.compression import CompressionSpec
from optikube_operator.api.data import DataSpec, TextPreprocessing
from optikube_operator.api.model import ModelSpec
from optikube_operator.api.objectives import MODEL_METRICS, Objective
from optikube_operator.api.runconfig import Stage
from optikube_operator.api.training import TrainingSpec
from optikube_trainer.compression import DistillationConfig, LowRankConfig, PruningConfig, WeightSharingConfig

if TYPE_CHECKING:  # the quantization package imports torchao and dynamo: seconds a preflight saves
    from optikube_trainer.quantization import QuantizationConfig

STAGE_ORDER = ("distillation", "pruning", "lowRank", "weightSharing", "quantization")
COMPRESSION_KEYS = ("compression.", "quantization.")
# Metrics the accuracy budget can be counted in (fractions, so 100 x is points); others use accuracy.
BUDGET_METRICS = ("accuracy", "f1")


def per_process_batch(global_batch: int, world_size: int) -> int:
    """``training.batchSize`` is the global batch: each of the W processes takes an equal share."""
    return max(1, math.ceil(global_batch / max(world_size, 1)))


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


def early_stopping(training: TrainingSpec) -> tuple[int, float]:
    """(patience, minDelta); patience 0 means train every epoch (the block is absent)."""
    block = training.early_stopping
    return (block.patience, block.min_delta) if block is not None else (0, 0.0)


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


def budget_metric(objectives: tuple[Objective, ...]) -> str:
    """The primary objective's metric when it is a task score, else accuracy."""
    primary = objectives[0].metric if objectives else "accuracy"
    return primary if primary in BUDGET_METRICS else "accuracy"


@dataclass(frozen=True)
class BudgetRecipe:
    max_drop_points: float
    metric: str


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


@dataclass(frozen=True)
class TrainingRecipe:
    spec: TrainingSpec
    world_size: int
    per_process_batch: int
    patience: int
    min_delta: float


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
    budget: BudgetRecipe
    export: ExportRecipe

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
    patience, min_delta = early_stopping(spec.training)
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
        data=DataRecipe(
            spec=spec.data,
            text=text_preprocessing(spec.data),
            folds=folds(spec.data),
            pretrained_tokenizer=pretrained_tokenizer(spec.model),
        ),
        model=spec.model,
        training=TrainingRecipe(
            spec=spec.training,
            world_size=world_size,
            per_process_batch=per_process_batch(spec.training.batch_size, world_size),
            patience=patience,
            min_delta=min_delta,
        ),
        distillation=DistillationConfig.from_spec(distillation) if distillation else None,
        pruning=PruningConfig.from_spec(pruning) if pruning else None,
        low_rank=LowRankConfig.from_spec(low_rank) if low_rank else None,
        weight_sharing=WeightSharingConfig.from_spec(weight_sharing) if weight_sharing else None,
        quantization=QuantizationConfig.from_spec(spec.quantization) if spec.quantization else None,
        compresses_trials=compresses_trials(spec),
        budget=BudgetRecipe(
            max_drop_points=max_accuracy_drop(compression), metric=budget_metric(tuple(spec.objectives))
        ),
        export=ExportRecipe(runtime=spec.export.runtime, batch_size=spec.export.batch_size),
    )
