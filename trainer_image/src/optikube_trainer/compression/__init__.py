"""Compression techniques, each `technique_(model, config, ...)` changing the model in place and
returning a summary whose `changes()` goes into results.json's `stages`."""

from optikube_trainer.compression.distillation import (
    DistillationConfig,
    distillation_loss,
    distillation_loss_fn,
    student_model_spec,
    teacher_loss_fn,
)
from optikube_trainer.compression.low_rank import LowRankConfig, LowRankSummary, factorize_low_rank_
from optikube_trainer.compression.pruning import (
    PruningConfig,
    PruningSummary,
    make_pruning_permanent_,
    prune_,
    weight_sparsity,
)
from optikube_trainer.compression.weight_sharing import (
    WeightSharingConfig,
    WeightSharingSummary,
    share_weights_,
)

__all__ = [
    "DistillationConfig",
    "LowRankConfig",
    "LowRankSummary",
    "PruningConfig",
    "PruningSummary",
    "WeightSharingConfig",
    "WeightSharingSummary",
    "distillation_loss",
    "distillation_loss_fn",
    "factorize_low_rank_",
    "make_pruning_permanent_",
    "prune_",
    "share_weights_",
    "student_model_spec",
    "teacher_loss_fn",
    "weight_sparsity",
]
