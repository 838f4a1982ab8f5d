"""Measuring the runtime candidates side by side and choosing the artifact to ship."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from optikube_trainer.evaluation.latency import compare_latency
from optikube_trainer.evaluation.metrics import classification_metrics
from optikube_trainer.runtimes.candidates import Candidate

# Every runtime sees batches of exactly these sizes: a compiled model (static shapes) compiles once
# per size, and accuracy is measured in the same graphs that are timed.
CALL_SIZE = 32


class FixedBatches(nn.Module):
    """Calls `model` on chunks of exactly CALL_SIZE rows (the last one padded by repetition)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: Tensor) -> Tensor:
        outputs = []
        for start in range(0, inputs.shape[0], CALL_SIZE):
            chunk = inputs[start : start + CALL_SIZE]
            rows = chunk.shape[0]
            if rows < CALL_SIZE:
                chunk = torch.cat([chunk, chunk[-1:].expand(CALL_SIZE - rows, *chunk.shape[1:])])
            outputs.append(self.model(chunk)[:rows])
        return torch.cat(outputs)


@dataclass
class RuntimeResult:
    candidate: Candidate
    latency: dict[str, float] = field(default_factory=dict)
    baseline_latency: dict[str, float] = field(default_factory=dict)
    validation: float | None = None  # the budget metric on the validation split
    metrics: dict[str, float] = field(default_factory=dict)  # test split
    drop_points: float | None = None
    within_budget: bool = False
    error: str | None = None
    shipped: bool = False  # the one `choose` picked

    @property
    def runtime(self) -> str:
        return self.candidate.runtime

    @property
    def usable(self) -> bool:
        return self.error is None and self.candidate.model is not None

    def speed(self, serving_batch: int | None = None) -> float:
        """What `auto` minimizes: the median at the serving batch size, or without one the
        geometric mean of the batch-1 and batch-32 medians."""
        if serving_batch is not None:
            return self.latency[f"batch{serving_batch}P50"]
        return math.sqrt(self.latency["batch1P50"] * self.latency["batch32P50"])

    def speedups(self) -> dict[int, float]:
        """Baseline over optimized median latency in this runtime, per batch size measured."""
        return {
            size: self.baseline_latency[f"batch{size}P50"] / self.latency[f"batch{size}P50"]
            for size in timed_sizes(self.latency)
            if self.latency.get(f"batch{size}P50") and self.baseline_latency.get(f"batch{size}P50")
        }

    def to_contract(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"runtime": self.runtime, "quantization": self.candidate.quantization}
        if not self.usable:
            entry["error"] = (self.error or self.candidate.error or "")[:500]
            return entry
        speedup = {f"batch{size}": round(ratio, 3) for size, ratio in self.speedups().items()}
        entry.update(
            {
                "latencyMs": self.latency,
                "baselineLatencyMs": self.baseline_latency,
                "speedupVsBaselineHere": speedup,
                "metrics": self.metrics,
                "validation": self.validation,
                "accuracyDrop": self.drop_points,
                "withinBudget": self.within_budget,
            }
        )
        if self.candidate.exporter:
            entry["exporter"] = self.candidate.exporter
        if self.shipped:
            entry["shipped"] = True
        return entry


def timed_sizes(latency: dict[str, float]) -> list[int]:
    """The batch sizes of a `compare_latency` result, in ascending order."""
    return sorted({int(key[len("batch") : -len("P50")]) for key in latency if key.endswith("P50")})


def batch_sizes(serving_batch: int | None) -> tuple[int, ...]:
    """The sizes every runtime is timed at: 1 and 32, and the serving batch size where one is set."""
    return tuple(sorted({1, CALL_SIZE, *([serving_batch] if serving_batch else [])}))


def _probe(candidate: Candidate, example: Tensor) -> str | None:
    """Run each model once at every call size (this compiles `compiled` models); the error if any."""
    try:
        with torch.inference_mode():
            for model in (candidate.model, candidate.baseline):
                assert model is not None
                for size in (1, CALL_SIZE):
                    model(example[:1].expand(size, *example.shape[1:]).contiguous())
    except Exception as error:
        return f"{type(error).__name__}: {str(error)[:400]}"
    return None


def score(
    result: RuntimeResult,
    example: Tensor,
    *,
    validation: Any,
    test: Any,
    num_classes: int,
    metric: str,
    baseline_validation: float,
    max_accuracy_drop: float,
) -> None:
    """Accuracy of one candidate: the budget metric on `validation`, every metric on `test`
    (re-iterable loaders); sets `error` when it does not run."""
    if result.error is not None or result.candidate.model is None:
        return
    result.error = _probe(result.candidate, example)
    if result.error is not None:
        return
    model = FixedBatches(result.candidate.model)
    result.validation = classification_metrics(model, _batches(validation), num_classes)[metric]
    tested = classification_metrics(model, _batches(test), num_classes)
    result.metrics = {k: round(v, 6) for k, v in tested.items()}
    result.drop_points = round(100.0 * (baseline_validation - result.validation), 4) + 0.0
    result.within_budget = result.drop_points <= max_accuracy_drop + 1e-9


def time_all(
    results: list[RuntimeResult],
    example: Tensor,
    *,
    runs: int = 50,
    sizes: tuple[int, ...] = (1, CALL_SIZE),
    references: Mapping[str, nn.Module] | None = None,
) -> dict[str, dict[str, float]]:
    """The latency of every usable optimized model and baseline, all timed together at `sizes`. A
    baseline that several candidates share (one runtime's int8 and float forms) is timed once;
    `references` are timed in the same rounds, and their latency returned by name."""
    timed: dict[str, nn.Module] = {}
    baseline_keys: dict[int, str] = {}
    for index, result in enumerate(results):
        if result.usable:
            assert result.candidate.model is not None and result.candidate.baseline is not None
            timed[f"{index}/optimized"] = result.candidate.model
            key = baseline_keys.setdefault(id(result.candidate.baseline), f"{index}/baseline")
            timed[key] = result.candidate.baseline
    for name, module in (references or {}).items():
        timed[f"reference/{name}"] = module
    latency = compare_latency(timed, example, runs=runs, batch_sizes=sizes) if timed else {}
    for index, result in enumerate(results):
        if result.usable:
            result.latency = latency[f"{index}/optimized"]
            result.baseline_latency = latency[baseline_keys[id(result.candidate.baseline)]]
    return {name: latency[f"reference/{name}"] for name in references or {}}


def _batches(source: Any) -> Iterator[tuple[Tensor, Tensor]]:
    # loaders are re-iterable: each candidate reads the whole split
    yield from source


def choose(
    results: list[RuntimeResult], requested: str, serving_batch: int | None = None
) -> tuple[RuntimeResult, str]:
    """The result to ship and why. An explicit runtime is honoured when it runs (its fastest form
    within the budget, where it has an int8 and a float one); `auto` takes the fastest result
    within the budget (at `serving_batch` where one is set); eager (which passed the stage checks)
    is the fallback."""
    usable = [r for r in results if r.usable]
    eager = next(r for r in usable if r.runtime == "eager")
    at = f" at batch {serving_batch}" if serving_batch is not None else ""
    if requested != "auto":
        same = [r for r in usable if r.runtime == requested]
        if not same:
            failed = next((r for r in results if r.runtime == requested), None)
            why = failed.error if failed is not None and failed.error else "not available"
            return eager, f"{requested} was requested but cannot run this model ({why}); shipped eager"
        within = [r for r in same if r.within_budget]
        if not within:
            return same[0], f"{requested} as requested, although it exceeds the accuracy budget here"
        if len(same) == 1:
            return within[0], f"{requested} as requested"
        fastest = min(within, key=lambda result: result.speed(serving_batch))
        return fastest, f"{requested} as requested, its fastest form within the accuracy budget{at}"
    within = [r for r in usable if r.within_budget]
    if not within:
        return eager, "no runtime stayed within the accuracy budget; shipped eager"
    fastest = min(within, key=lambda result: result.speed(serving_batch))
    if serving_batch is not None:
        return fastest, f"the fastest runtime within the accuracy budget{at}"
    return fastest, "the fastest runtime within the accuracy budget (geometric mean of batch 1 and 32)"


def slower_than_baseline(result: RuntimeResult) -> str | None:
    """A note when the shipped model is slower than the baseline in its own runtime: the
    compression stages did not pay off there, which the user should read, not find out later."""
    if not result.usable or not result.latency or not result.baseline_latency:
        return None
    # below 1 at two decimals: a ratio that prints as 1.00x is no slowdown worth a sentence
    slower = [
        f"batch {size} ({ratio:.2f}x)" for size, ratio in result.speedups().items() if round(ratio, 2) < 1.0
    ]
    if not slower:
        return None
    return (
        f"the optimized model is slower in {result.runtime} than the baseline run the same way, at"
        f" {' and '.join(slower)}: the compression stages did not pay off in this runtime"
    )
