"""Resumable pipeline state: after each finished stage rank 0 records it in
`<outputDir>/pipeline/state.json` and saves the model it produced; a re-run skips those stages."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from optikube_trainer.dist import RunContext, barrier, broadcast_object
from optikube_trainer.export import MANIFEST, export_model, load_exported, load_files

STATE_FILE = "state.json"


@dataclass
class PipelineCheckpoint:
    completed: list[dict[str, Any]] = field(default_factory=list)  # results.json `stages` entries
    baseline: dict[str, Any] | None = None
    curves: dict[str, dict[str, list[float]]] | None = None
    diagnosis: dict[str, Any] | None = None
    macs: int | None = None  # the last countable MACs (quantized graphs keep their float model's)
    model_file: str | None = None
    # what the evaluation needs to measure every runtime: the trained model, the float model the
    # quantization stage started from, the method that stage kept, the baseline's budget metric
    baseline_model_file: str | None = None
    float_model_file: str | None = None
    quantization_method: str | None = None
    baseline_validation: float | None = None

    def done(self, name: str) -> bool:
        return any(stage["name"] == name for stage in self.completed)


def _directory(ctx: RunContext) -> Path:
    return ctx.output_dir / "pipeline"


def save_stage(ctx: RunContext, state: PipelineCheckpoint, model: nn.Module, example: torch.Tensor) -> None:
    """Record `state` and its model (rank 0 writes, atomically); all ranks wait for it."""
    if ctx.is_main:
        directory = _directory(ctx)
        directory.mkdir(parents=True, exist_ok=True)
        name = f"model-{len(state.completed)}"
        export_model(model, directory / name, example_inputs=example, description={})
        state.model_file = name
        temporary = directory / (STATE_FILE + ".tmp")
        temporary.write_text(json.dumps(state.__dict__, indent=2))
        temporary.replace(directory / STATE_FILE)
    barrier()


def load_checkpoint_model(ctx: RunContext, name: str) -> nn.Module:
    """A model saved after an earlier stage (rank 0, which wrote it)."""
    return load_exported(_directory(ctx) / name, compiled=False)


def load_state(ctx: RunContext) -> tuple[PipelineCheckpoint, nn.Module | None]:
    """Rank 0 reads the saved state and model; every rank gets rank 0's copies."""
    payload: tuple[dict[str, Any], dict[str, bytes], dict[str, Any]] | None = None
    if ctx.is_main:
        path = _directory(ctx) / STATE_FILE
        if path.exists():
            raw = json.loads(path.read_text())
            model_dir = _directory(ctx) / raw["model_file"]
            manifest = json.loads((model_dir / MANIFEST).read_text())
            files = {name: (model_dir / name).read_bytes() for name in manifest["files"]}
            payload = (raw, files, manifest)
    # ranks may not share a volume: everyone takes rank 0's copy
    payload = broadcast_object(payload)  # type: ignore[assignment]
    if payload is None:
        return PipelineCheckpoint(), None
    raw, files, manifest = payload
    return PipelineCheckpoint(**raw), load_files(files, manifest)
