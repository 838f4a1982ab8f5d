"""Measuring a model of the pipeline in this process: task metrics on a split, parameters, MACs,
artifact size and (eager) latency."""

from __future__ import annotations

from torch import Tensor, fx, nn

from optikube_trainer.data import DataBundle
from optikube_trainer.evaluation import Measurement, count_macs, measure_model
from optikube_trainer.evaluation.counting import ensure_cpu
from optikube_trainer.evaluation.metrics import classification_metrics
from optikube_trainer.export import artifact_size_bytes


def eval_split(bundle: DataBundle, preferred: str) -> str:
    return preferred if bundle.samples(preferred) > 0 else "val"


def measure(
    model: nn.Module,
    bundle: DataBundle,
    example: Tensor,
    *,
    split: str,
    macs: int | None,
    batch_size: int = 256,
    latency_runs: int = 50,
) -> Measurement:
    """Measure `model` on CPU in this process only (call on rank 0)."""
    ensure_cpu(model)
    loader = bundle.loader(eval_split(bundle, split), batch_size, shuffle=False, distributed=False)
    metrics = classification_metrics(model, loader, bundle.num_classes)
    # graph-mode int8 models are not countable (0 or None): they keep their float model's MACs
    counted = None if isinstance(model, fx.GraphModule) else count_macs(model, example[:1])
    return measure_model(
        model,
        metrics=metrics,
        size_bytes=artifact_size_bytes(model, example),
        sample_inputs=example,
        macs=counted if counted is not None else macs,
        latency_runs=latency_runs,
    )
