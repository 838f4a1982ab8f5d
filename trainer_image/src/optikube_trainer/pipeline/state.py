"""Resumable pipeline state: after each finished stage rank 0 records it in
`<outputDir>/pipeline/state.json` and saves the model it produced; a re-run skips those stages."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from optikube_trainer.dist import RunContext, barrier, broadcast_object
from optikube_trainer.export import program_module, serialize

STATE_FILE = "state.json"


@dataclass
class PipelineState:
    completed: list[dict[str, Any]] = field(default_factory=list)  # results.json `stages` entries
    baseline: dict[str, Any] | None = None
    curves: dict[str, dict[str, list[float]]] | None = None
    diagnosis: dict[str, Any] | None = None
    macs: int | None = None  # the last countable MACs (quantized graphs keep their float model's)
    model_file: str | None = None

    def done(self, name: str) -> bool:
        return any(stage["name"] == name for stage in self.completed)


def _directory(ctx: RunContext) -> Path:
    return ctx.output_dir / "pipeline"


def _model_bytes(model: nn.Module, example: torch.Tensor) -> tuple[bytes, str]:
    try:
        buffer = io.BytesIO()
        torch.save(model, buffer)  # keeps modules trainable (pruned, factorized, codebook layers)
        return buffer.getvalue(), "pickle"
    except Exception:
        data, _ = serialize(model, example)
        return data, "program"


def _load_model(data: bytes, kind: str) -> nn.Module:
    buffer = io.BytesIO(data)
    if kind == "program":
        module = program_module(torch.export.load(buffer))
    else:
        module = torch.load(buffer, map_location="cpu", weights_only=False)
    assert isinstance(module, nn.Module)
    return module


def save_stage(ctx: RunContext, state: PipelineState, model: nn.Module, example: torch.Tensor) -> None:
    """Record `state` and its model (rank 0 writes, atomically); all ranks wait for it."""
    if ctx.is_main:
        directory = _directory(ctx)
        directory.mkdir(parents=True, exist_ok=True)
        data, kind = _model_bytes(model, example)
        name = f"model-{len(state.completed)}.{kind}"
        (directory / name).write_bytes(data)
        state.model_file = name
        temporary = directory / (STATE_FILE + ".tmp")
        temporary.write_text(json.dumps(state.__dict__, indent=2))
        temporary.replace(directory / STATE_FILE)
    barrier()


def load_state(ctx: RunContext) -> tuple[PipelineState, nn.Module | None]:
    """Rank 0 reads the saved state and model; every rank gets rank 0's copies."""
    payload: tuple[dict[str, Any], bytes | None, str] | None = None
    if ctx.is_main:
        path = _directory(ctx) / STATE_FILE
        if path.exists():
            raw = json.loads(path.read_text())
            model_file = raw.get("model_file")
            data = (_directory(ctx) / model_file).read_bytes() if model_file else None
            payload = (raw, data, model_file.rsplit(".", 1)[-1] if model_file else "")
    payload = broadcast_object(payload)  # type: ignore[assignment]
    if payload is None:
        return PipelineState(), None
    raw, data, kind = payload
    state = PipelineState(**raw)
    return state, (_load_model(data, kind) if data is not None else None)
