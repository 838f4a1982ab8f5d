"""Tiny models, a separable data set and a minimal training loop for in-process technique checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor, nn


def make_blobs(
    samples: int = 512, features: int = 16, classes: int = 4, seed: int = 0
) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, features, generator=generator) * 3
    labels = torch.randint(0, classes, (samples,), generator=generator)
    inputs = centers[labels] + torch.randn(samples, features, generator=generator)
    return inputs, labels


ModelT = TypeVar("ModelT", bound=nn.Module)


def train(
    model: ModelT,
    inputs: Tensor,
    labels: Tensor,
    *,
    epochs: int = 30,
    loss_fn: Callable[[nn.Module, Tensor, Tensor], Tensor] | None = None,
) -> ModelT:
    torch.manual_seed(0)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(epochs):
        for start in range(0, inputs.shape[0], 64):
            x, y = inputs[start : start + 64], labels[start : start + 64]
            loss = loss_fn(model, x, y) if loss_fn else nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    return model


def accuracy(model: nn.Module, inputs: Tensor, labels: Tensor) -> float:
    with torch.no_grad():
        return float((model(inputs).argmax(-1) == labels).float().mean())


def mlp(width: int = 64, features: int = 16, classes: int = 4) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(features, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, classes)
    )


def cnn(channels: int = 16, classes: int = 4) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1),
        nn.BatchNorm2d(channels),
        nn.ReLU(),
        nn.Conv2d(channels, channels * 2, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(channels * 2 * 16, classes),
    )
