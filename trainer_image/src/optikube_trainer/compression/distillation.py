"""Knowledge distillation: a smaller student learns from a trained teacher's softened outputs.

loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student, y)
(the T^2 factor keeps the soft-target gradients on the same scale as the hard-label ones).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from optikube_operator.api.compression import Distillation
from optikube_trainer.spec_fields import SpecConfig, spec_default

LossFn = Callable[[nn.Module, Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class DistillationConfig(SpecConfig, block=Distillation, path="compression.distillation"):
    """`compression.distillation`; `student` is written like spec.model (a camelCase dict)."""

    student: dict[str, Any]
    temperature: float = spec_default(Distillation, "temperature")
    alpha: float = spec_default(Distillation, "alpha")
    epochs: int = spec_default(Distillation, "epochs")


def distillation_loss(
    student_logits: Tensor, teacher_logits: Tensor, targets: Tensor, *, temperature: float, alpha: float
) -> Tensor:
    soft = F.kl_div(
        F.log_softmax(student_logits / temperature, dim=-1),
        F.log_softmax(teacher_logits / temperature, dim=-1),
        reduction="batchmean",
        log_target=True,
    )
    hard = F.cross_entropy(student_logits, targets)
    return alpha * temperature**2 * soft + (1.0 - alpha) * hard


def distillation_loss_fn(teacher: nn.Module, config: DistillationConfig) -> LossFn:
    """A `fit` loss function that queries the frozen teacher on each batch."""
    return teacher_loss_fn(teacher, temperature=config.temperature, alpha=config.alpha)


def teacher_loss_fn(teacher: nn.Module, *, temperature: float = 4.0, alpha: float = 0.7) -> LossFn:
    """`distillation_loss` against a frozen `teacher` (the defaults are those of the spec's
    distillation block); also the recovery loss of a stage that fine-tunes after changing the
    model, with the model as it was before the change as the teacher."""
    teacher.eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)

    def loss_fn(student: nn.Module, inputs: Tensor, targets: Tensor) -> Tensor:
        with torch.no_grad():
            teacher_logits = teacher(inputs)
        return distillation_loss(
            student(inputs), teacher_logits, targets, temperature=temperature, alpha=alpha
        )

    return loss_fn


def student_model_spec(config: DistillationConfig) -> dict[str, Any]:
    """The student's model spec: the spec's `student` block (which names its own model source, as
    the API requires), with a builtin's own `params` merged into the block's."""
    student = dict(config.student)
    params = dict(student.pop("params", {}) or {})
    if isinstance(student.get("builtin"), dict) and "params" in student["builtin"]:
        builtin = dict(student["builtin"])  # never mutate the config's own dict
        params = {**builtin.pop("params"), **params}
        student["builtin"] = builtin
    student["params"] = params
    return student
