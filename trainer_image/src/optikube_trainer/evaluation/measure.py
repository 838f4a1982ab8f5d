"""One measurement of a model: task metrics, size, parameters, MACs and latency, in the shape of
results.json's `baseline` / `optimized` entries (Contract 4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from optikube_trainer.evaluation.counting import count_macs, stored_parameters
from optikube_trainer.evaluation.latency import measure_latency
from optikube_trainer.evaluation.size import weight_bytes


@dataclass
class Measurement:
    metrics: dict[str, float]
    parameters: int
    size_bytes: int
    macs: int | None
    latency_ms: dict[str, float] = field(default_factory=dict)
    weight_bytes: int | None = None  # the weights alone, without the artifact's graph/format overhead

    def to_contract(self) -> dict[str, Any]:
        return {
            "metrics": self.metrics,
            "parameters": self.parameters,
            "sizeBytes": self.size_bytes,
            "macs": self.macs,
            "latencyMs": self.latency_ms,
            "weightBytes": self.weight_bytes,
        }

    def objective_values(self) -> dict[str, float]:
        """Flat values that objectives resolve against (Contract 3)."""
        values = dict(self.metrics)
        values["latencyMs"] = self.latency_ms.get("batch1P50", 0.0)
        values["latencyMsBatch32"] = self.latency_ms.get("batch32P50", 0.0)
        values["sizeBytes"] = float(self.size_bytes)
        values["parameters"] = float(self.parameters)
        if self.macs is not None:
            values["macs"] = float(self.macs)
        return values


def measure_model(
    model: nn.Module,
    *,
    metrics: dict[str, float],
    size_bytes: int,
    sample_inputs: Tensor,
    macs: int | None = None,
    latency_runs: int = 50,
) -> Measurement:
    """Measure `model` on CPU-side inputs; `macs` overrides counting (for quantized graphs);
    `latency_runs=0` leaves the latency to the caller (the pipeline times runtimes together)."""
    counted = count_macs(model, sample_inputs[:1]) if macs is None else macs
    return Measurement(
        metrics={k: round(float(v), 6) for k, v in metrics.items()},
        parameters=stored_parameters(model),
        size_bytes=size_bytes,
        macs=counted,
        latency_ms=measure_latency(model, sample_inputs, runs=latency_runs) if latency_runs > 0 else {},
        weight_bytes=weight_bytes(model),
    )
