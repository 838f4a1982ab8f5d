"""Typed run config (architecture "Contract 2") as the trainer reads it.

The trainer's blocks (data, model, training, compression, quantization, objectives) are parsed
strictly: an unknown or mistyped field is an error naming the field. The blocks only the operator
acts on (tuning, resources, artifacts, cleanup, suspend) are kept as plain values, since the trainer
never reads them and should not break when the operator's API grows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel


class ConfigError(ValueError):
    """A run config that cannot be used; the message names the offending field."""


class _Strict(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=False)


def _exactly_one(model: BaseModel, fields: tuple[str, ...], where: str) -> None:
    present = [name for name in fields if getattr(model, name) is not None]
    if len(present) != 1:
        camel = [to_camel(name) for name in fields]
        raise ValueError(f"{where} needs exactly one of {camel}, got {[to_camel(p) for p in present]}")


# --- data -------------------------------------------------------------------------------------


class SyntheticSource(_Strict):
    kind: Literal["images", "text", "tabular"]
    samples: int = Field(2000, ge=8)
    classes: int = Field(4, ge=2)
    features: int = Field(20, ge=1)  # tabular only
    informative: int | None = Field(None, ge=1)  # tabular only; default: half of features
    image_size: int = Field(16, ge=4)  # images only
    channels: int = Field(1, ge=1)  # images only
    words_per_sample: int = Field(24, ge=4)  # text only
    noise: float = Field(0.1, ge=0.0, le=1.0)


class FileSource(_Strict):
    path: str
    format: Literal["csv", "npz", "imagefolder"]
    target_column: str = "label"  # csv: the label column; npz: the label array's key
    features_key: str = "x"  # npz: the features array's key
    text_column: str | None = None  # csv: a text column turns the set into a text task
    image_size: int = Field(32, ge=4)  # imagefolder: images are resized to this square size
    channels: Literal[1, 3] = 3  # imagefolder: grayscale or RGB


class TorchvisionSource(_Strict):
    name: str
    root: str = "/data"
    download: bool = False
    max_samples: int | None = Field(None, ge=1)


class HuggingFaceSource(_Strict):
    name: str
    split: str = "train"
    text_column: str = "text"
    label_column: str = "label"
    max_samples: int | None = Field(None, ge=1)


class DataSource(_Strict):
    builtin: Literal["digits", "iris", "wine", "breast_cancer"] | None = None
    synthetic: SyntheticSource | None = None
    file: FileSource | None = None
    torchvision: TorchvisionSource | None = None
    huggingface: HuggingFaceSource | None = None

    @model_validator(mode="after")
    def _one_source(self) -> DataSource:
        _exactly_one(self, ("builtin", "synthetic", "file", "torchvision", "huggingface"), "data.source")
        return self


class FeatureSelection(_Strict):
    method: Literal["varianceThreshold", "kBest"]
    threshold: float = Field(0.0, ge=0.0)
    k: int = Field(32, ge=1)


class RandomCrop(_Strict):
    padding: int = Field(1, ge=0)


class Augmentation(_Strict):
    horizontal_flip: bool = False
    vertical_flip: bool = False
    rotation_degrees: float = Field(0.0, ge=0.0, le=180.0)
    random_crop: RandomCrop | None = None

    @property
    def enabled(self) -> bool:
        return (
            self.horizontal_flip or self.vertical_flip or self.rotation_degrees > 0 or bool(self.random_crop)
        )


class TextPreprocessing(_Strict):
    # "word" is optikube's own tokenizer; any other value names a Hugging Face tokenizer (hub id or path)
    tokenizer: str = "word"
    vocab_size: int = Field(5000, ge=8)
    max_length: int = Field(64, ge=2)
    lowercase: bool = True
    remove_stop_words: bool = True
    extra_stop_words: list[str] = Field(default_factory=list)


class Preprocessing(_Strict):
    normalization: Literal["none", "standard", "minmax"] = "standard"
    feature_selection: FeatureSelection | None = None
    augmentation: Augmentation | None = None
    text: TextPreprocessing = Field(default_factory=TextPreprocessing)


class CrossValidation(_Strict):
    folds: int = Field(0, ge=0)


class DataSpec(_Strict):
    source: DataSource
    preprocessing: Preprocessing = Field(default_factory=Preprocessing)
    validation_split: float = Field(0.2, gt=0.0, lt=1.0)
    test_split: float = Field(0.2, ge=0.0, lt=1.0)
    cross_validation: CrossValidation = Field(default_factory=CrossValidation)

    @model_validator(mode="after")
    def _splits_leave_training_data(self) -> DataSpec:
        if self.validation_split + self.test_split >= 0.9:
            raise ValueError("data.validationSplit + data.testSplit must leave at least 10% for training")
        return self


# --- model ------------------------------------------------------------------------------------


class BuiltinModel(_Strict):
    name: Literal["mlp", "cnn", "textTransformer"]


class TorchvisionModel(_Strict):
    name: str = "resnet18"
    pretrained: bool = False
    weights_path: str | None = None
    freeze_backbone: bool = False


class HuggingFaceModel(_Strict):
    name: str = "distilbert-base-uncased"
    pretrained: bool = True
    local_path: str | None = None
    freeze_backbone: bool = False


class ModelSpec(_Strict):
    builtin: BuiltinModel | None = None
    torchvision: TorchvisionModel | None = None
    huggingface: HuggingFaceModel | None = None
    import_path: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_kind(self) -> ModelSpec:
        _exactly_one(self, ("builtin", "torchvision", "huggingface", "import_path"), "model")
        if self.import_path is not None and ":" not in self.import_path:
            raise ValueError("model.importPath must look like 'package.module:function'")
        return self


# --- training ---------------------------------------------------------------------------------


class OptimizerSpec(_Strict):
    type: Literal["adamw", "sgd"] = "adamw"
    momentum: float = Field(0.9, ge=0.0, lt=1.0)


class SchedulerSpec(_Strict):
    type: Literal["none", "cosine", "step"] = "none"
    step_size: int = Field(1, ge=1)  # step: epochs between decays
    gamma: float = Field(0.5, gt=0.0, le=1.0)  # step: decay factor


class Regularization(_Strict):
    l1: float = Field(0.0, ge=0.0)
    l2: float = Field(0.0, ge=0.0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)


class EarlyStopping(_Strict):
    patience: int = Field(0, ge=0)  # 0 turns early stopping off
    min_delta: float = Field(0.0, ge=0.0)


class TrainingSpec(_Strict):
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)  # the global batch, split evenly over the processes
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    learning_rate: float = Field(1e-3, gt=0.0)
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec)
    regularization: Regularization = Field(default_factory=Regularization)
    early_stopping: EarlyStopping = Field(default_factory=EarlyStopping)
    mixed_precision: Literal["none", "bf16", "fp16"] = "none"
    gradient_clip_norm: float = Field(0.0, ge=0.0)


# --- compression and quantization -------------------------------------------------------------


class DistillationSpec(_Strict):
    student: ModelSpec
    temperature: float = Field(4.0, gt=0.0)
    alpha: float = Field(0.7, ge=0.0, le=1.0)
    epochs: int = Field(5, ge=1)


class PruningSpec(_Strict):
    method: Literal["structured", "unstructured"] = "structured"
    sparsity: float = Field(0.5, gt=0.0, lt=1.0)
    fine_tune_epochs: int = Field(2, ge=0)


class LowRankSpec(_Strict):
    rank_ratio: float | None = Field(None, gt=0.0, le=1.0)
    energy: float | None = Field(None, gt=0.0, le=1.0)
    fine_tune_epochs: int = Field(1, ge=0)

    @model_validator(mode="after")
    def _ratio_or_energy(self) -> LowRankSpec:
        if self.rank_ratio is not None and self.energy is not None:
            raise ValueError("compression.lowRank takes rankRatio or energy, not both")
        if self.rank_ratio is None and self.energy is None:
            self.rank_ratio = 0.5
        return self


class WeightSharingSpec(_Strict):
    clusters: int = Field(16, ge=2, le=256)
    fine_tune_epochs: int = Field(0, ge=0)


class CompressionSpec(_Strict):
    distillation: DistillationSpec | None = None
    pruning: PruningSpec | None = None
    low_rank: LowRankSpec | None = None
    weight_sharing: WeightSharingSpec | None = None

    @property
    def any(self) -> bool:
        return any(
            block is not None
            for block in (self.distillation, self.pruning, self.low_rank, self.weight_sharing)
        )


class QuantizationSpec(_Strict):
    method: Literal["dynamic", "static", "weightOnly", "qat"] = "dynamic"
    calibration_batches: int = Field(8, ge=1)
    qat_epochs: int = Field(2, ge=1)


# --- spec and run config ----------------------------------------------------------------------

MEASURED_METRICS = ("latencyMs", "latencyMsBatch32", "sizeBytes", "parameters", "macs")
TRAINING_METRICS = ("accuracy", "f1", "valLoss")


class Objective(_Strict):
    metric: Literal[
        "accuracy", "f1", "valLoss", "latencyMs", "latencyMsBatch32", "sizeBytes", "parameters", "macs"
    ]
    direction: Literal["maximize", "minimize"]


def _default_objectives() -> list[Objective]:
    return [Objective(metric="accuracy", direction="maximize")]


class Spec(BaseModel):
    """The job's spec. Operator-only blocks are accepted as plain values and not interpreted."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    seed: int = 42
    data: DataSpec
    model: ModelSpec
    objectives: list[Objective] = Field(default_factory=_default_objectives, min_length=1)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    compression: CompressionSpec | None = None
    quantization: QuantizationSpec | None = None
    # read by the operator only
    suspend: bool = False
    tuning: dict[str, Any] | None = None
    resources: dict[str, Any] | None = None
    artifacts: dict[str, Any] | None = None
    cleanup: dict[str, Any] | None = None

    @property
    def search_space_keys(self) -> list[str]:
        space = (self.tuning or {}).get("searchSpace") or {}
        return list(space) if isinstance(space, dict) else []

    @property
    def primary_objective(self) -> Objective:
        return self.objectives[0]


class JobRef(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    namespace: str = "default"
    uid: str | None = None


class TrialRef(_Strict):
    number: int = Field(ge=0)
    params: dict[str, Any] = Field(default_factory=dict)


class RunConfig(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    api_version: Literal["optikube.io/v1alpha1"] = "optikube.io/v1alpha1"
    kind: Literal["RunConfig"] = "RunConfig"
    stage: Literal["trial", "pipeline"]
    job: JobRef
    trial: TrialRef | None = None
    spec: Spec
    output_dir: str
    resume_from: str | None = None

    @model_validator(mode="after")
    def _trial_matches_stage(self) -> RunConfig:
        if self.stage == "trial" and self.trial is None:
            raise ValueError("trial must be set when stage is 'trial'")
        if self.stage == "pipeline" and self.trial is not None:
            raise ValueError("trial must be null when stage is 'pipeline'")
        return self

    @property
    def trial_number(self) -> int | None:
        return self.trial.number if self.trial is not None else None


def _field_path(loc: tuple[int | str, ...]) -> str:
    # pydantic reports locations by alias, so these are the camelCase names users write
    path = ""
    for item in loc:
        path += f"[{item}]" if isinstance(item, int) else (f".{item}" if path else str(item))
    return path or "<root>"


def format_validation_error(error: ValidationError) -> str:
    lines = [f"{_field_path(tuple(e['loc']))}: {e['msg']}" for e in error.errors()]
    return "invalid run config:\n  " + "\n  ".join(lines)


def parse_run_config(raw: dict[str, Any]) -> RunConfig:
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error)) from None


def load_run_config(path: str | Path) -> RunConfig:
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"cannot read run config {path}: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"run config {path} must hold a JSON object")
    return parse_run_config(raw)


def parse_spec(raw: dict[str, Any]) -> Spec:
    try:
        return Spec.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error)) from None
