"""Saving an optimized model in a loadable form, and loading it back.

Four forms: the ONNX model of the `onnx` runtime, or, for PyTorch (`eager` and `compiled`), the
most compact one that the model allows:
- `onnx`: `model.onnx` for ONNX Runtime (int8 QDQ or dynamic-int8 operators where the spec
  quantizes); the manifest's `sessionConfig` holds the session settings it was measured with.
- `stateDict`: torchao-quantized models: `architecture.pt` (the float module structure with no
  weights, on the meta device) + `weights.pt` (the int8 state dict) + the quantization method in
  the manifest; loading rebuilds the structure, re-applies the method and assigns the weights.
- `exportedProgram`: graph-mode (PT2E) int8 models: a `torch.export` program (`model.pt2`) whose
  graph is the architecture; it also loads without optikube's classes.
- `pickledModule`: everything else (float, pruned, factorized, codebook models): `model.pt`, the
  module with its weights (needs optikube_trainer importable for codebook layers).
`manifest.json` names the form and files, the runtime it is meant for, the input shape and dtype,
and the stages applied. `load_exported` returns a module that runs in that runtime.
"""

from __future__ import annotations

import io
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, fx, nn

from optikube_trainer.quantization.torchao_int8 import REBUILD_ATTRIBUTE, TORCHAO_METHODS, quantize_linears_

MANIFEST = "manifest.json"
MAX_BATCH = 65536


@dataclass
class ExportedArtifact:
    directory: Path
    files: list[Path]
    format: str  # "stateDict" | "exportedProgram" | "pickledModule" | "onnx"
    size_bytes: int

    @property
    def file(self) -> Path:
        return self.files[0]


def _example(inputs: Tensor) -> Tensor:
    # a batch of 1 would be specialized by export; two rows keep the batch dimension symbolic
    return inputs[:2] if inputs.shape[0] >= 2 else torch.cat([inputs, inputs])


def export_program(model: nn.Module, example_inputs: Tensor) -> torch.export.ExportedProgram:
    model.eval()
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    return torch.export.export(model, (_example(example_inputs),), dynamic_shapes=({0: batch},))


def _saved(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def serialize(model: nn.Module, example_inputs: Tensor) -> tuple[dict[str, bytes], str, dict[str, Any]]:
    """The artifact's files (name -> bytes), its form, and manifest entries the form needs."""
    rebuild = model.__dict__.get(REBUILD_ATTRIBUTE)
    if rebuild is not None:
        skeleton, method = rebuild
        files = {"architecture.pt": _saved(skeleton), "weights.pt": _saved(model.state_dict())}
        return files, "stateDict", {"quantization": method}
    if not isinstance(model, fx.GraphModule):
        try:
            return {"model.pt": _saved(model)}, "pickledModule", {}
        except Exception:
            pass
    buffer = io.BytesIO()
    torch.export.save(export_program(model, example_inputs), buffer)
    return {"model.pt2": buffer.getvalue()}, "exportedProgram", {}


def artifact_size_bytes(model: nn.Module, example_inputs: Tensor) -> int:
    """Size on disk the exported artifact of `model` would have (all its files)."""
    files, _, _ = serialize(model, example_inputs)
    return sum(len(data) for data in files.values())


def _input_entries(example_inputs: Tensor) -> dict[str, Any]:
    return {
        "inputShape": list(example_inputs.shape[1:]),
        "inputDtype": str(example_inputs.dtype).removeprefix("torch."),
    }


def export_onnx_model(
    onnx_file: Path,
    directory: Path,
    *,
    example_inputs: Tensor,
    session_config: dict[str, str],
    description: dict[str, Any],
) -> ExportedArtifact:
    """Write an ONNX file (made by `optikube_trainer.runtimes`) as the artifact of the onnx runtime."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "model.onnx"
    data = onnx_file.read_bytes()
    target.write_bytes(data)
    manifest = {
        "format": "onnx",
        "runtime": "onnx",
        "files": [target.name],
        **_input_entries(example_inputs),
        "sessionConfig": session_config,
        **description,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return ExportedArtifact(directory, [target], "onnx", len(data))


def export_model(
    model: nn.Module,
    directory: Path,
    *,
    example_inputs: Tensor,
    description: dict[str, Any],
    runtime: str = "eager",
) -> ExportedArtifact:
    """Write the artifact and its manifest into `directory` (created). `runtime` (eager or
    compiled) is what `load_exported` prepares the loaded model for."""
    directory.mkdir(parents=True, exist_ok=True)
    files, form, extra = serialize(model, example_inputs.cpu())
    paths = []
    for name, data in files.items():
        (directory / name).write_bytes(data)
        paths.append(directory / name)
    manifest = {
        "format": form,
        "runtime": runtime,
        "files": list(files),
        **_input_entries(example_inputs),
        "architecture": str(model),
        **extra,
        **description,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return ExportedArtifact(directory, paths, form, sum(len(d) for d in files.values()))


def load_files(files: dict[str, bytes], manifest: dict[str, Any]) -> nn.Module:
    """Load an artifact held in memory (as broadcast between ranks)."""
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        for name, data in files.items():
            (directory / name).write_bytes(data)
        (directory / MANIFEST).write_text(json.dumps(manifest))
        return load_exported(directory, compiled=False)


def load_exported(path: Path | str, *, compiled: bool | None = None) -> nn.Module:
    """Load a model written by `export_model` or `export_onnx_model` (a directory or its manifest)
    for inference on CPU, in the runtime its manifest names: an ONNX Runtime session behind an
    `nn.Module` call for `onnx`, the PyTorch module under `torch.compile` for `compiled` (it
    compiles at its first call of each batch size; `compiled=False` returns it uncompiled)."""
    directory = Path(path)
    if directory.is_file():
        directory = directory.parent
    manifest_path = directory / MANIFEST
    if not manifest_path.exists():
        raise FileNotFoundError(f"{directory} holds no {MANIFEST}: not an exported optikube model")
    manifest = json.loads(manifest_path.read_text())
    form = manifest["format"]
    if form == "onnx":
        from optikube_trainer.runtimes.onnx_model import OnnxModule

        return OnnxModule(directory / "model.onnx", config=manifest.get("sessionConfig") or {})
    module = _load_torch(directory, manifest)
    if compiled or (compiled is None and manifest.get("runtime") == "compiled"):
        from optikube_trainer.runtimes.compiled import compile_for_cpu

        return compile_for_cpu(module)
    return module


def _load_torch(directory: Path, manifest: dict[str, Any]) -> nn.Module:
    form = manifest["format"]
    manifest_path = directory / MANIFEST
    if form == "exportedProgram":
        return program_module(torch.export.load(str(directory / "model.pt2")))
    if form == "pickledModule":
        loaded = torch.load(directory / "model.pt", map_location="cpu", weights_only=False)
        assert isinstance(loaded, nn.Module)
        return loaded.eval()
    if form == "stateDict":
        return _rebuild(directory, manifest["quantization"])
    raise ValueError(f"{manifest_path}: unknown format {manifest['format']!r}")


def _rebuild(directory: Path, method: str) -> nn.Module:
    if method not in TORCHAO_METHODS:
        raise ValueError(f"{directory / MANIFEST}: cannot rebuild quantization method {method!r}")
    model = torch.load(directory / "architecture.pt", map_location="cpu", weights_only=False)
    assert isinstance(model, nn.Module)
    model.to_empty(device="cpu")
    quantize_linears_(model, method)
    weights = torch.load(directory / "weights.pt", map_location="cpu", weights_only=False)
    model.load_state_dict(weights, assign=True)
    return model.eval()


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
