"""Specs of the in-process pipeline checks (a small MLP on digits or iris, trained in seconds) and
the pipeline run in this process with its progress events kept."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from optikube_operator.api.runconfig import parse_run_config
from optikube_trainer.dist import local_context
from optikube_trainer.pipeline import run_pipeline
from optikube_trainer.progress import ProgressSender


def digits_mlp_spec(*, seed: int, epochs: int, **blocks: Any) -> dict[str, Any]:
    """A spec that trains a two-layer MLP of width 64 on digits (a fifth of it validates, a fifth
    tests) for accuracy, with ``blocks`` (compression, quantization, export, ...) added."""
    return {
        "seed": seed,
        "data": {"source": {"builtin": "digits"}, "validationSplit": 0.2, "testSplit": 0.2},
        "model": {"builtin": {"name": "mlp"}, "params": {"width": 64, "depth": 2}},
        "objectives": [{"metric": "accuracy", "direction": "maximize"}],
        "training": {"epochs": epochs, "batchSize": 64, "learningRate": 0.01},
        **blocks,
    }


def iris_mlp_spec(**blocks: Any) -> dict[str, Any]:
    """A spec that trains a two-layer MLP of width 32 on iris for three epochs, with ``blocks``
    added; iris validates on 30 samples (3.3 points each)."""
    return {
        "seed": 1,
        "data": {"source": {"builtin": "iris"}},
        "model": {"builtin": {"name": "mlp"}, "params": {"width": 32, "depth": 2}},
        "objectives": [{"metric": "accuracy", "direction": "maximize"}],
        "training": {"epochs": 3, "batchSize": 16, "learningRate": 0.01},
        **blocks,
    }


def pipeline_config(out: Path, spec: dict[str, Any], *, job: str) -> Any:
    """The pipeline stage's run configuration of ``spec``, writing to ``out``."""
    return parse_run_config({"stage": "pipeline", "job": {"name": job}, "outputDir": str(out), "spec": spec})


def run_in_process(
    out: Path, spec: dict[str, Any], *, job: str, events: list[dict[str, Any]] | None = None
) -> dict[str, Any] | None:
    """The pipeline stage of ``spec`` in this process, writing to ``out``; its progress events are
    appended to ``events`` also when a stage raises."""
    config = pipeline_config(out, spec, job=job)
    ctx = local_context(seed=spec["seed"], output_dir=out)
    stream = io.StringIO()
    ctx.progress = ProgressSender(rank=0, trial=None, stream=stream, output_dir=out)
    try:
        return run_pipeline(config, ctx)
    finally:
        if events is not None:
            events.extend(json.loads(line) for line in stream.getvalue().splitlines())
