"""Inference latency: median and 90th percentile of many timed runs after warm-up."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import TypedDict, Unpack

import torch
from torch import Tensor, nn


def served_call(model: Callable[[Tensor], object], batch: Tensor) -> Callable[[], object]:
    """The call a server makes per request of `batch`, to be timed: `model(batch)`, or for a model
    served through another interface than a torch tensor (an ONNX Runtime session takes numpy
    arrays) the call its `served_call(batch)` gives, the batch converted once beforehand. Timing an
    ONNX Runtime session through its nn.Module wrapper measured the tensor conversions too: 30 us
    against the session's 13 us for the quickstart's model, more than the model itself."""
    native = getattr(model, "served_call", None)
    return native(batch) if callable(native) else partial(model, batch)


def time_forward(model: nn.Module, inputs: Tensor, *, runs: int = 50, warmup: int = 10) -> list[float]:
    """Milliseconds of each of `runs` forward passes (after `warmup` untimed ones)."""
    if runs < 1:
        raise ValueError(f"latency runs: expected >= 1, got {runs}")
    model.eval()
    samples: list[float] = []
    with torch.inference_mode():
        call = served_call(model, inputs)
        for _ in range(warmup):
            call()
        for _ in range(runs):
            start = time.perf_counter()
            call()
            samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def batch_of(sample_inputs: Tensor, size: int) -> Tensor:
    """`size` rows of `sample_inputs`, repeated when it has fewer."""
    repeats = -(-size // sample_inputs.shape[0])
    return sample_inputs.repeat(repeats, *([1] * (sample_inputs.dim() - 1)))[:size]


def latency_samples(
    models: Mapping[str, Callable[[Tensor], object]],
    sample_inputs: Tensor,
    *,
    batch_sizes: tuple[int, ...] = (1, 32),
    runs: int = 50,
    warmup: int = 10,
) -> dict[str, dict[int, list[float]]]:
    """Milliseconds of every timed call of several models measured together, per batch size: the
    i-th sample of every model comes from the same round, so two models can be compared round by
    round (`compare_latency` gives their medians).

    Each round times one call of every model, so that a busy neighbour slows all of them alike and
    their ratios hold on a noisy machine. The order is shuffled every round (seeded) and each timed
    call follows an untimed call of the same model: in a fixed or rotating order a model always
    runs right after the same neighbour and pays for what that one leaves behind (OpenMP or ONNX
    Runtime threads still spinning, cold caches), which measured two identical ONNX Runtime
    sessions 2-3x apart. A deployment calls one model over and over; this is what each timed call
    sees."""
    if runs < 1:
        raise ValueError(f"latency runs: expected >= 1, got {runs}")
    names = list(models)
    result: dict[str, dict[int, list[float]]] = {name: {} for name in names}
    for module in models.values():
        if isinstance(module, nn.Module):
            module.eval()
    with torch.inference_mode():
        for size in batch_sizes:
            batch = batch_of(sample_inputs, size)
            calls = {name: served_call(models[name], batch) for name in names}
            for name in names:
                for _ in range(warmup):
                    calls[name]()
            samples: dict[str, list[float]] = {name: [] for name in names}
            order = random.Random(size)
            for _ in range(runs):
                for name in order.sample(names, len(names)):
                    call = calls[name]
                    call()  # untimed: the timed call follows the same model
                    start = time.perf_counter()
                    call()
                    samples[name].append((time.perf_counter() - start) * 1000.0)
            for name in names:
                result[name][size] = samples[name]
    return result


def summarize_samples(samples: Mapping[int, list[float]]) -> dict[str, float]:
    """`{batch1P50, batch1P90, ...}` in milliseconds of one model's `latency_samples`."""
    result: dict[str, float] = {}
    for size, timed in samples.items():
        result[f"batch{size}P50"] = round(statistics.median(timed), 4)
        result[f"batch{size}P90"] = round(percentile(timed, 0.9), 4)
    return result


class Rounds(TypedDict, total=False):
    """`latency_samples`'s options, for the functions that pass them on."""

    batch_sizes: tuple[int, ...]
    runs: int
    warmup: int


def compare_latency(
    models: Mapping[str, Callable[[Tensor], object]], sample_inputs: Tensor, **rounds: Unpack[Rounds]
) -> dict[str, dict[str, float]]:
    """Latency of several models measured together in interleaved rounds (`latency_samples`, with
    its options). Returns `{name: {batch1P50, batch1P90, ...}}` in milliseconds."""
    samples = latency_samples(models, sample_inputs, **rounds)
    return {name: summarize_samples(timed) for name, timed in samples.items()}


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
        batch = batch_of(sample_inputs, size)
        samples = time_forward(model, batch, runs=runs, warmup=warmup)
        result[f"batch{size}P50"] = round(statistics.median(samples), 4)
        result[f"batch{size}P90"] = round(percentile(samples, 0.9), 4)
    return result
