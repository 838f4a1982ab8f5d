"""Optimizers, schedules and the L1/L2 penalties, built from the training recipe."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.optim import SGD, AdamW, Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, StepLR

from optikube_trainer.recipe import TrainingRecipe


def penalized_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Weights of matrices and kernels; biases and normalization scales are not penalized."""
    return [p for p in model.parameters() if p.requires_grad and p.dim() > 1]


def build_optimizer(model: nn.Module, training: TrainingRecipe) -> Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters (is the whole model frozen?)")
    if training.optimizer.type == "sgd":
        return SGD(params, lr=training.learning_rate, momentum=training.optimizer.momentum)
    # weight decay is 0: L2 is the explicit penalty below, so both optimizers regularize the same way
    return AdamW(params, lr=training.learning_rate, weight_decay=0.0)


def build_scheduler(optimizer: Optimizer, training: TrainingRecipe, epochs: int) -> LRScheduler | None:
    kind = training.scheduler.type
    if kind == "cosine":
        return CosineAnnealingLR(optimizer, T_max=max(1, epochs))
    if kind == "step":
        return StepLR(optimizer, step_size=training.scheduler.step_size, gamma=training.scheduler.gamma)
    return None


class Penalty:
    """l1 * sum|w| + l2/2 * sum w^2 over the penalized weights (a no-op when both are 0)."""

    def __init__(self, model: nn.Module, l1: float, l2: float) -> None:
        self.l1, self.l2 = l1, l2
        self.params = penalized_parameters(model) if (l1 > 0 or l2 > 0) else []

    @property
    def active(self) -> bool:
        return bool(self.params)

    def __call__(self) -> torch.Tensor:
        total = torch.zeros((), device=self.params[0].device)
        for weight in self.params:
            if self.l1 > 0:
                total = total + self.l1 * weight.abs().sum()
            if self.l2 > 0:
                total = total + 0.5 * self.l2 * weight.pow(2).sum()
        return total


def near_zero_share(model: nn.Module, threshold: float = 1e-3) -> float:
    """Share of penalized weights with |w| < threshold: how sparse L1 made the model."""
    weights = [p.detach().abs().flatten() for p in model.parameters() if p.dim() > 1]
    if not weights:
        return math.nan
    flat = torch.cat(weights)
    return float((flat < threshold).float().mean())
