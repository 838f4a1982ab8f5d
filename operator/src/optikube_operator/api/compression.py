"""`spec.compression` and `spec.quantization`: what makes the trained model smaller and faster."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from optikube_operator.api.base import ApiModel, Rule, epoch_count
from optikube_operator.api.model import ModelSpec

FineTuneLoss = Literal["distillation", "labels"]
PruningAllocation = Literal["sensitivity", "uniform"]


def _fine_tune_epochs(default: int, after: str) -> Any:
    return epoch_count(default, f"Epochs of fine-tuning after {after}.", minimum=0)


def _fine_tune_loss(after: str) -> Any:
    return Field(
        "distillation",
        description=f"What the fine-tuning after {after} learns from. distillation: the model as it was"
        f" before {after} (its softened outputs, temperature 4, weight 0.7) and the labels, which keeps"
        " a small dataset from being overfitted while the model recovers; labels: the labels only.",
    )


class Distillation(ApiModel):
    """Train a smaller student to imitate the trained model (the teacher)."""

    student: ModelSpec = Field(description="The student network, written like spec.model.")
    temperature: float = Field(4.0, gt=0, le=100, description="Softmax temperature of the soft targets.")
    alpha: float = Field(
        0.7, ge=0, le=1, description="Weight of the teacher's soft targets; 1 - alpha weighs the true labels."
    )
    epochs: int = epoch_count(5, "Epochs of student training.")


class Pruning(ApiModel):
    """Remove weights (unstructured) or whole channels and neurons (structured), then fine-tune."""

    method: Literal["structured", "unstructured"] = Field(
        "structured",
        description="structured removes channels/neurons so the model really shrinks and speeds up;"
        " unstructured zeroes individual weights (smaller when compressed, same dense speed).",
    )
    sparsity: float = Field(0.5, gt=0, lt=1, description="Fraction of weights (or channels) to remove.")
    fine_tune_epochs: int = _fine_tune_epochs(2, "pruning")
    fine_tune_loss: FineTuneLoss = _fine_tune_loss("pruning")
    channel_multiple: int = Field(
        16,
        ge=1,
        le=1024,
        description="structured: round each layer's kept channels/neurons up to a multiple of this,"
        " so the sparsity is at most the asked one. Kernels block channels by 8 or 16 (AVX-512,"
        " tensor cores), and other counts can run slower than the unpruned layer. 1 keeps the"
        " sparsity exactly; a layer no wider than the multiple is not pruned.",
    )
    allocation: PruningAllocation = Field(
        "sensitivity",
        description="structured: how the sparsity is spread over the layers. sensitivity: each layer"
        " is pruned alone at several sparsities, its output measured against the unpruned model's"
        " on training batches, and the layers that change the output least per MAC saved are pruned"
        " most, for the MACs that uniform pruning at this sparsity saves; uniform: every layer loses"
        " the same share.",
    )


class LowRank(ApiModel):
    """Factorize linear and conv layers with a truncated SVD. Set at most one of rankRatio and energy."""

    rank_ratio: float | None = Field(
        None, gt=0, le=1, description="Kept rank as a fraction of the full rank; 0.5 when neither is set."
    )
    energy: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Keep the smallest rank whose singular values hold this share of the energy.",
    )
    fine_tune_epochs: int = _fine_tune_epochs(1, "factorizing")
    fine_tune_loss: FineTuneLoss = _fine_tune_loss("factorizing")

    RULES = (
        Rule(
            cel="!(has(self.rankRatio) && has(self.energy))",
            message="set rankRatio or energy, not both",
            check=lambda s: s.rank_ratio is None or s.energy is None,
            field="energy",
        ),
    )

    @model_validator(mode="after")
    def _default_rank_ratio(self) -> LowRank:
        if self.rank_ratio is None and self.energy is None:
            self.rank_ratio = 0.5
        return self


class WeightSharing(ApiModel):
    """Cluster each layer's weights with k-means so that they share a few values."""

    clusters: int = Field(16, ge=2, le=256, description="Distinct values per layer (k of k-means).")
    fine_tune_epochs: int = _fine_tune_epochs(0, "sharing")
    fine_tune_loss: FineTuneLoss = _fine_tune_loss("sharing")


class CompressionSpec(ApiModel):
    """Steps run in the order distillation, pruning, lowRank, weightSharing. Set at least one."""

    distillation: Distillation | None = Field(
        None, description="Knowledge distillation to a smaller student."
    )
    pruning: Pruning | None = Field(None, description="Structured or unstructured pruning.")
    low_rank: LowRank | None = Field(None, description="Low-rank (SVD) factorization.")
    weight_sharing: WeightSharing | None = Field(None, description="Weight sharing by k-means clustering.")
    max_accuracy_drop: float = Field(
        1.0,
        ge=0,
        le=100,
        description="Accuracy budget: the most points (of 100) of the primary metric (accuracy or f1;"
        " accuracy for other objectives) on the validation split that the compressed and quantized"
        " model may lose against the trained baseline. A stage that exceeds it is retried with a"
        " gentler setting (pruning that fine-tunes: twice the fine-tuning, then a bisection of the"
        " sparsity for the largest one within the budget), then skipped.",
    )
    skip_slower_stages: bool = Field(
        True,
        description="Time the exported model before and after each stage, in the runtime"
        " spec.export.runtime ships (auto: the faster of eager PyTorch and ONNX Runtime), at batch 1"
        " and 32 (spec.export.batchSize where set), and skip a stage that makes it slower beyond"
        " chance, like one over the accuracy budget. false keeps such stages (smaller, but slower).",
    )

    RULES = (
        Rule(
            cel="has(self.distillation) || has(self.pruning) || has(self.lowRank) || has(self.weightSharing)",
            message="set at least one of distillation, pruning, lowRank or weightSharing",
            check=lambda s: any(
                block is not None for block in (s.distillation, s.pruning, s.low_rank, s.weight_sharing)
            ),
        ),
    )


class QuantizationSpec(ApiModel):
    """Lower-precision weights and activations, after compression."""

    method: Literal["dynamic", "static", "weightOnly", "qat"] = Field(
        description="dynamic: int8 weights, activations quantized on the fly; static: int8 with activation"
        " ranges calibrated on training batches; weightOnly: int8 weights only; qat: quantization-aware"
        " training (fake quantization while fine-tuning), then int8."
    )
    calibration_batches: int = Field(
        8, ge=1, le=10000, description="Training batches used to calibrate (static)."
    )
    qat_epochs: int | None = epoch_count(
        None, "Epochs of quantization-aware training (qat only; required there)."
    )

    RULES = (
        Rule(
            cel="self.method == 'qat' ? has(self.qatEpochs) : !has(self.qatEpochs)",
            message="qatEpochs is required with method qat and allowed only there",
            check=lambda s: (s.method == "qat") == (s.qat_epochs is not None),
            field="qatEpochs",
        ),
    )
