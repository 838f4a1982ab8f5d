from __future__ import annotations

import pytest
import torch
from _tiny import accuracy, make_blobs, mlp, train

from optikube_operator.api.compression import Distillation
from optikube_trainer.compression import (
    DistillationConfig,
    distillation_loss,
    distillation_loss_fn,
    student_model_spec,
)


def test_loss_is_cross_entropy_at_alpha_zero_and_zero_kl_for_equal_logits() -> None:
    logits = torch.randn(8, 4)
    targets = torch.randint(0, 4, (8,))
    ce = torch.nn.functional.cross_entropy(logits, targets)
    assert distillation_loss(logits, logits, targets, temperature=4.0, alpha=0.0) == pytest.approx(float(ce))
    kl_only = distillation_loss(logits, logits, targets, temperature=4.0, alpha=1.0)
    assert kl_only == pytest.approx(0.0, abs=1e-6)
    other = torch.randn(8, 4)
    assert distillation_loss(other, logits, targets, temperature=2.0, alpha=1.0) > 0


def test_student_learns_from_the_teacher() -> None:
    inputs, labels = make_blobs(samples=512)
    teacher = train(mlp(width=64), inputs, labels, epochs=10)
    config = DistillationConfig(student={"builtin": {"name": "mlp"}, "params": {"width": 8}}, alpha=0.9)
    student = train(mlp(width=8), inputs, labels, epochs=10, loss_fn=distillation_loss_fn(teacher, config))
    assert accuracy(student, inputs, labels) >= accuracy(teacher, inputs, labels) - 0.05
    assert not any(p.requires_grad for p in teacher.parameters())


def test_student_spec_merges_params() -> None:
    block = Distillation.model_validate({"student": {"builtin": {"name": "mlp"}, "params": {"width": 16}}})
    config = DistillationConfig.from_spec(block)
    assert student_model_spec(config) == {
        "builtin": {"name": "mlp"},
        "params": {"width": 16},
    }
    # the API's rules hold for a config built by hand: a student names its model source
    with pytest.raises(ValueError, match=r"compression\.distillation\.student: set exactly one model source"):
        DistillationConfig(student={"params": {"width": 8}})
    with pytest.raises(ValueError, match=r"compression\.distillation\.alpha"):
        DistillationConfig(student={"builtin": {"name": "mlp"}}, alpha=2)
