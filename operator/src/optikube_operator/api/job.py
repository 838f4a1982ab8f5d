"""OptimizationJob: the resource users write. `spec` ties the concept modules together."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Literal

from pydantic import Field

from optikube_operator.api.base import ApiModel, Rule
from optikube_operator.api.compression import CompressionSpec, QuantizationSpec
from optikube_operator.api.data import DataSpec
from optikube_operator.api.export import ExportSpec
from optikube_operator.api.formats import DNS1035_LABEL_PATTERN, dns1035_label_problem
from optikube_operator.api.metadata import ObjectMeta, name_errors
from optikube_operator.api.model import ModelSpec
from optikube_operator.api.model_params import BUILTIN_MODEL_PARAMS, param_names
from optikube_operator.api.objectives import Objective
from optikube_operator.api.params import MODEL_PARAMS_PREFIX, STUDENT_PARAMS_PREFIX, tunable_fields
from optikube_operator.api.resources import ArtifactsSpec, CleanupSpec, ResourcesSpec
from optikube_operator.api.status import OptimizationJobStatus
from optikube_operator.api.training import TrainingSpec
from optikube_operator.api.tuning import MAX_TRIAL_STEPS, TuningSpec

GROUP = "optikube.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
# A run is named <job>-t<number> or <job>-pipeline: its Job, its headless Service (a DNS-1035
# label: starts with a letter) and its pods' hostnames (<run>-<index>, a DNS label of at most 63)
# derive from that. The longest, <job>-pipeline-1023, leaves 49 characters; 40 keeps a margin.
MAX_JOB_NAME = 40


class OptimizationJobSpec(ApiModel):
    """What to optimize and how: data, model, objectives, tuning, training, compression, quantization,
    resources, artifacts and cleanup."""

    suspend: bool = Field(
        False, description="Pause: running trials are stopped and no new ones start until it is set to false."
    )
    seed: int = Field(
        42, ge=0, le=2**31 - 1, description="Seed of data splits, initialization and the sampler."
    )
    data: DataSpec = Field(description="The data set, its preprocessing and splits.")
    model: ModelSpec = Field(description="The network to optimize.")
    objectives: list[Objective] = Field(
        min_length=1,
        max_length=4,
        description="What to optimize, one entry per metric; the first is the primary objective. Several"
        " objectives make a multi-objective search with a Pareto front.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["metric"]},
    )
    tuning: TuningSpec | None = Field(
        None,
        description="Hyperparameter search; omit it to run the pipeline once with the values as written.",
    )
    training: TrainingSpec = Field(default_factory=TrainingSpec, description="How models are trained.")
    compression: CompressionSpec | None = Field(
        None, description="Compression after training; omit for none."
    )
    quantization: QuantizationSpec | None = Field(
        None, description="Quantization after compression; omit for none."
    )
    export: ExportSpec = Field(
        default_factory=ExportSpec, description="The runtime the optimized model is exported for."
    )
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec, description="Pods, GPUs and scheduling.")
    artifacts: ArtifactsSpec | None = Field(
        None, description="Durable storage for models and reports; without it outputs live in the pods only."
    )
    cleanup: CleanupSpec = Field(default_factory=CleanupSpec, description="What to delete when finished.")

    def primary_objective(self) -> Objective:
        return self.objectives[0]

    def search_keys(self) -> list[str]:
        return list(self.tuning.search_space) if self.tuning is not None else []

    def steps_per_trial(self) -> int:
        """Intermediate reports of a full trial: epochs, times the folds with cross-validation."""
        folds = self.data.cross_validation.folds if self.data.cross_validation is not None else 1
        return self.training.epochs * folds

    def is_multi_objective(self) -> bool:
        return len(self.objectives) > 1


def _free_param_key(prefix: str, model: str) -> str:
    """CEL: key `k` lies under `prefix` and, where the model there is a built-in one, names one of
    its params (`model` is the CEL path of that ModelSpec, `guard` proves it is set)."""
    names = {name: [prefix + param for param in param_names(name)] for name in BUILTIN_MODEL_PARAMS}
    *others, last = names
    allowed = json.dumps(names[last])
    for name in reversed(others):
        allowed = f"{model}.builtin.name == '{name}' ? {json.dumps(names[name])} : {allowed}"
    return f"(k.startsWith('{prefix}') && (!has({model}.builtin) || k in ({allowed})))"


def _search_key_rule() -> Rule:
    paths = sorted(tunable_fields(OptimizationJobSpec))
    model_key = _free_param_key(MODEL_PARAMS_PREFIX, "self.model")
    student = "self.compression.distillation.student"
    student_key = _free_param_key(STUDENT_PARAMS_PREFIX, student)
    # a student key without a distillation block is refused by Python (the block is missing)
    student_key = (
        f"(has(self.compression) && has(self.compression.distillation) ? {student_key}"
        f" : k.startsWith('{STUDENT_PARAMS_PREFIX}'))"
    )
    return Rule(
        cel=f"!has(self.tuning) || self.tuning.searchSpace.all(k, {model_key} || {student_key}"
        f" || k in {json.dumps(paths)})",
        message="every searchSpace key must name a tunable spec field, e.g. training.learningRate or"
        " model.params.width (a built-in model's param: see spec.model.builtin.name)",
        field="tuning.searchSpace",
    )


OptimizationJobSpec.RULES = (
    _search_key_rule(),
    Rule(
        cel="size(self.objectives) == 1 || !has(self.tuning) || self.tuning.pruner.type == 'none'",
        message="trial pruning needs a single objective; use pruner type none with several objectives",
        check=lambda s: len(s.objectives) == 1 or s.tuning is None or s.tuning.pruner.type == "none",
        field="tuning.pruner.type",
    ),
    Rule(
        cel="size(self.objectives) == 1 || !has(self.tuning) || self.tuning.sampler.type != 'cmaes'",
        message="the cmaes sampler supports a single objective only; use nsga2, tpe or random",
        check=lambda s: len(s.objectives) == 1 or s.tuning is None or s.tuning.sampler.type != "cmaes",
        field="tuning.sampler.type",
    ),
    Rule(
        cel="!has(self.tuning) || !has(self.tuning.goal) || size(self.objectives) == 1",
        message="goal applies to a single objective; with several use selection.constraints",
        check=lambda s: s.tuning is None or s.tuning.goal is None or len(s.objectives) == 1,
        field="tuning.goal",
    ),
    Rule(
        cel="!has(self.data.preprocessing.text) || self.data.preprocessing.text.tokenizer != 'pretrained'"
        " || has(self.model.huggingface)",
        message="the pretrained tokenizer needs a Hugging Face model (spec.model.huggingface)",
        check=lambda s: (
            s.data.preprocessing.text is None
            or s.data.preprocessing.text.tokenizer != "pretrained"
            or s.model.huggingface is not None
        ),
        field="data.preprocessing.text.tokenizer",
    ),
    Rule(
        cel="!has(self.tuning) || self.tuning.pruner.type == 'none' || self.training.epochs *"
        " (has(self.data.crossValidation) ? self.data.crossValidation.folds : 1) <= "
        f"{MAX_TRIAL_STEPS}",
        message="with a pruner, training.epochs x data.crossValidation.folds must be at most"
        f" {MAX_TRIAL_STEPS} (every step's value is kept on the trial)",
        check=lambda s: (
            s.tuning is None or s.tuning.pruner.type == "none" or s.steps_per_trial() <= MAX_TRIAL_STEPS
        ),
        field="training.epochs",
    ),
)


class OptimizationJob(ApiModel):
    """A model optimization: tuning, training, compression and quantization of one model."""

    api_version: Literal["optikube.io/v1alpha1"] = Field(
        "optikube.io/v1alpha1", description="optikube.io/v1alpha1."
    )
    kind: Literal["OptimizationJob"] = Field("OptimizationJob", description="OptimizationJob.")
    metadata: ObjectMeta = Field(
        default_factory=lambda: ObjectMeta(), description="Standard object metadata."
    )
    spec: OptimizationJobSpec = Field(description="What to optimize and how.")
    status: OptimizationJobStatus | None = Field(None, description="Observed state, written by the operator.")

    RULES = (
        Rule(
            cel=f"self.metadata.name.size() <= {MAX_JOB_NAME}"
            f" && self.metadata.name.matches('{DNS1035_LABEL_PATTERN}')",
            message=f"metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', starting"
            f" with a letter) of at most {MAX_JOB_NAME} characters: trial Jobs and Services are named"
            " after it",
            check=lambda s: (
                s.metadata.name is None or dns1035_label_problem(s.metadata.name, MAX_JOB_NAME) is None
            ),
            field="metadata.name",
            crd_field_path=False,
        ),
    )

    def field_errors(self) -> Iterator[tuple[str, str]]:
        yield from name_errors(self.metadata, MAX_JOB_NAME, name=False)
