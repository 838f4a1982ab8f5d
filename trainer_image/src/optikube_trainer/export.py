"""Saving an optimized model in a loadable form, and loading it back.

The preferred form is a `torch.export` ExportedProgram (`model.pt2`) with a symbolic batch
dimension: it holds the graph and the real stored tensors (int8 weights, codebooks + packed
indices), loads without optikube's classes, and runs. Models that cannot be exported are saved as
a pickled module (`model.pt`, needs optikube_trainer importable). `manifest.json` describes the
input, the architecture and the stages that produced the model.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
PROGRAM_FILE = "model.pt2"
PICKLE_FILE = "model.pt"
MAX_BATCH = 65536


@dataclass
class ExportedArtifact:
    directory: Path
    file: Path
    format: str  # "exportedProgram" | "pickledModule"
    size_bytes: int


def _example(inputs: Tensor) -> Tensor:
    # a batch of 1 would be specialized by export; two rows keep the batch dimension symbolic
    return inputs[:2] if inputs.shape[0] >= 2 else torch.cat([inputs, inputs])


def export_program(model: nn.Module, example_inputs: Tensor) -> torch.export.ExportedProgram:
    model.eval()
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    return torch.export.export(model, (_example(example_inputs),), dynamic_shapes=({0: batch},))


def serialize(model: nn.Module, example_inputs: Tensor) -> tuple[bytes, str]:
    """The bytes the artifact file holds, and its format."""
    buffer = io.BytesIO()
    try:
        torch.export.save(export_program(model, example_inputs), buffer)
        return buffer.getvalue(), "exportedProgram"
    except Exception as error:
        log.info("torch.export failed (%s); saving the pickled module instead", error)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    return buffer.getvalue(), "pickledModule"


def artifact_size_bytes(model: nn.Module, example_inputs: Tensor) -> int:
    """Size on disk the exported artifact of `model` would have."""
    return len(serialize(model, example_inputs)[0])


def export_model(
    model: nn.Module, directory: Path, *, example_inputs: Tensor, description: dict[str, Any]
) -> ExportedArtifact:
    """Write the artifact and its manifest into `directory` (created)."""
    directory.mkdir(parents=True, exist_ok=True)
    data, form = serialize(model, example_inputs.cpu())
    file = directory / (PROGRAM_FILE if form == "exportedProgram" else PICKLE_FILE)
    file.write_bytes(data)
    manifest = {
        "format": form,
        "file": file.name,
        "inputShape": list(example_inputs.shape[1:]),
        "inputDtype": str(example_inputs.dtype).removeprefix("torch."),
        "architecture": str(model),
        **description,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return ExportedArtifact(directory, file, form, len(data))


def load_exported(path: Path | str) -> nn.Module:
    """Load a model written by `export_model` (a directory or its manifest) for inference on CPU."""
    directory = Path(path)
    if directory.is_file():
        directory = directory.parent
    manifest_path = directory / MANIFEST
    if not manifest_path.exists():
        raise FileNotFoundError(f"{directory} holds no {MANIFEST}: not an exported optikube model")
    manifest = json.loads(manifest_path.read_text())
    file = directory / manifest["file"]
    if manifest["format"] == "exportedProgram":
        return program_module(torch.export.load(str(file)))
    if manifest["format"] == "pickledModule":
        loaded = torch.load(file, map_location="cpu", weights_only=False)
        assert isinstance(loaded, nn.Module)
        return loaded.eval()
    raise ValueError(f"{manifest_path}: unknown format {manifest['format']!r}")


def example_input(directory: Path | str, batch: int = 1) -> Tensor:
    """A zero input of the shape and dtype the exported model expects."""
    manifest = json.loads((Path(directory) / MANIFEST).read_text())
    dtype = getattr(torch, manifest["inputDtype"])
    return torch.zeros((batch, *manifest["inputShape"]), dtype=dtype)


def program_module(program: torch.export.ExportedProgram) -> nn.Module:
    """The runnable module of a loaded program, with .eval()/.train() allowed (exported graphs
    refuse them by default, and evaluation code calls them on any model). Importing torchao also
    registers the quantized ops that int8 graphs call."""
    module = program.module()
    assert isinstance(module, nn.Module)
    try:
        from torchao.quantization.pt2e import allow_exported_model_train_eval
    except ImportError:  # float models load without torchao; they keep export's default
        return module
    allow_exported_model_train_eval(module)
    return module
