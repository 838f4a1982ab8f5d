"""Inference latency: median and 90th percentile of many timed runs after warm-up."""

from __future__ import annotations

import statistics
import time

import torch
from torch import Tensor, nn


def time_forward(model: nn.Module, inputs: Tensor, *, runs: int = 50, warmup: int = 10) -> list[float]:
    """Milliseconds of each of `runs` forward passes (after `warmup` untimed ones)."""
    if runs < 1:
        raise ValueError(f"latency runs: expected >= 1, got {runs}")
    model.eval()
    samples: list[float] = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(inputs)
        for _ in range(runs):
            start = time.perf_counter()
            model(inputs)
            samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[round(q * 100) - 1]


def measure_latency(
    model: nn.Module,
    sample_inputs: Tensor,
    *,
    batch_sizes: tuple[int, ...] = (1, 32),
    runs: int = 50,
    warmup: int = 10,
    compile_model: bool = False,
) -> dict[str, float]:
    """`{batch1P50, batch1P90, batch32P50, batch32P90}` in milliseconds.

    Inputs are rows of `sample_inputs`, repeated when a batch needs more rows than it has.
    `compile_model` times `torch.compile(model)` instead (int8 kernels are lowered by inductor;
    compiling takes tens of seconds on a small CPU, so it is opt-in; warm-up absorbs it)."""
    if compile_model:
        model = torch.compile(model)  # type: ignore[assignment]
    result: dict[str, float] = {}
    for size in batch_sizes:
        repeats = -(-size // sample_inputs.shape[0])
        batch = sample_inputs.repeat(repeats, *([1] * (sample_inputs.dim() - 1)))[:size]
        samples = time_forward(model, batch, runs=runs, warmup=warmup)
        result[f"batch{size}P50"] = round(statistics.median(samples), 4)
        result[f"batch{size}P90"] = round(percentile(samples, 0.9), 4)
    return result
