"""`spec.training`: how each trial and the final model are trained."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from optikube_operator.api.base import ApiModel, epoch_count


class Optimizer(ApiModel):
    """The gradient-descent optimizer."""

    type: Literal["adamw", "sgd"] = Field("adamw", description="adamw or sgd.")
    momentum: float = Field(0.9, ge=0, lt=1, description="Momentum (sgd only).")


class Scheduler(ApiModel):
    """Learning-rate schedule over the epochs."""

    type: Literal["none", "cosine", "step"] = Field(
        "none",
        description="none: constant; cosine: cosine decay to 0; step: times gamma every stepSize epochs.",
    )
    step_size: int = epoch_count(1, "Epochs between decays (step only).")
    gamma: float = Field(0.5, gt=0, le=1, description="Decay factor (step only).")


class Regularization(ApiModel):
    """Penalties and noise that fight overfitting."""

    l1: float = Field(0.0, ge=0, le=1, description="L1 penalty on the weights (sum of absolute values).")
    l2: float = Field(
        0.0, ge=0, le=1, description="L2 penalty on the weights (decoupled weight decay with adamw)."
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout probability in the model's dropout layers.")


class EarlyStopping(ApiModel):
    """Stop training when the validation loss stops improving (needs data.validationSplit > 0)."""

    patience: int = Field(3, ge=1, le=1000, description="Epochs without improvement before stopping.")
    min_delta: float = Field(0.0, ge=0, description="Smallest decrease of the validation loss that counts.")


class TrainingSpec(ApiModel):
    """Training of every trial and of the final model."""

    epochs: int = epoch_count(10, "Passes over the training data.")
    batch_size: int = Field(
        64,
        ge=1,
        le=65536,
        description="Examples per optimizer step across all trainer processes (the global batch); each of the"
        " workers x processesPerWorker processes takes an equal share, rounded up.",
    )
    optimizer: Optimizer = Field(default_factory=Optimizer, description="The optimizer.")
    learning_rate: float = Field(1e-3, gt=0, le=10, description="Initial learning rate.")
    scheduler: Scheduler = Field(default_factory=Scheduler, description="Learning-rate schedule.")
    regularization: Regularization = Field(default_factory=Regularization, description="L1, L2 and dropout.")
    early_stopping: EarlyStopping | None = Field(
        None, description="Early stopping; omit to train all epochs."
    )
    mixed_precision: Literal["none", "bf16", "fp16"] = Field(
        "none",
        description="Autocast precision on GPU: none, bf16 or fp16 (with loss scaling). Ignored on CPU.",
    )
    gradient_clip_norm: float = Field(0.0, ge=0, description="Clip the gradient norm to this value; 0 = off.")
