"""Training checkpoints: rank 0 writes atomically, every rank can read and resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from optikube_trainer.dist import RunContext, barrier

CHECKPOINT_NAME = "checkpoint.pt"


def checkpoint_path(directory: Path) -> Path:
    return directory / CHECKPOINT_NAME


def save_checkpoint(directory: Path, state: dict[str, Any], ctx: RunContext) -> None:
    """Write on rank 0 (temp file + rename, so a crash never leaves half a checkpoint); all ranks wait."""
    if ctx.is_main:
        directory.mkdir(parents=True, exist_ok=True)
        target = checkpoint_path(directory)
        temporary = target.with_suffix(".tmp")
        torch.save(state, temporary)
        temporary.replace(target)
    barrier()


def load_checkpoint(directory: Path | None, ctx: RunContext) -> dict[str, Any] | None:
    if directory is None:
        return None
    path = checkpoint_path(directory)
    if not path.exists():
        return None
    state: dict[str, Any] = torch.load(path, map_location=ctx.device, weights_only=False)
    return state
