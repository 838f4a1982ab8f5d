"""ONNX models: exporting a float PyTorch model with `torch.onnx`, and running an ONNX file in
ONNX Runtime behind the `nn.Module` call the rest of the trainer uses."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
MAX_BATCH = 65536


def _two_rows(inputs: Tensor) -> Tensor:
    # a batch of 1 would be specialized by the exporter; two rows keep the batch dimension symbolic
    return inputs[:2] if inputs.shape[0] >= 2 else torch.cat([inputs, inputs])


def export_onnx(model: nn.Module, example_inputs: Tensor, path: Path) -> str:
    """Write `model` (float) to `path` with a symbolic batch dimension; returns the exporter used.

    The TorchScript exporter comes first: its graphs (Gemm, Conv, MatMul with constant weights) are
    what onnxruntime.quantization's static and dynamic passes expect, and it takes seconds where the
    dynamo exporter takes tens of seconds. The dynamo exporter is the fallback for models the
    TorchScript tracer cannot handle.

    PyTorch's fused transformer fast path (`aten::_transformer_encoder_layer_fwd`, taken by
    `nn.TransformerEncoderLayer` in eval mode without gradients) is off while exporting: no exporter
    translates it, and the TorchScript exporter then fails on every nn.Transformer model, leaving
    the dynamo exporter's graph, which onnxruntime.quantization's shape inference rejects. Without
    it the layers export as the MatMul/Add/Softmax graph that the INT8 passes quantize."""
    model.eval()
    example = (_two_rows(example_inputs.cpu()),)
    path.parent.mkdir(parents=True, exist_ok=True)
    fast_path = torch.backends.mha.get_fastpath_enabled()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            return _export(model, example, path)
        finally:
            torch.backends.mha.set_fastpath_enabled(fast_path)


def _export(model: nn.Module, example: tuple[Tensor], path: Path) -> str:
    """Export with the TorchScript exporter, or with dynamo where it fails; returns which one.
    Either way the batch dimension stays free."""

    def export(**exporter: Any) -> None:
        torch.onnx.export(
            model, example, str(path), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], **exporter
        )

    try:
        export(dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}, dynamo=False)
        return "torchscript"
    except Exception:
        batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
        export(dynamic_shapes=({0: batch},), dynamo=True, external_data=False)  # one self-contained file
        return "dynamo"


def session_options(config: Mapping[str, str] | None = None, threads: int | None = None) -> object:
    """Session options with the same intra-op thread count as torch, so that runtimes are compared
    on the same cores (ONNX Runtime would otherwise take every core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    for key, value in (config or {}).items():
        options.add_session_config_entry(key, value)
    return options


class OnnxModule(nn.Module):
    """An ONNX Runtime session called like a PyTorch classifier: tensors in, logits tensor out."""

    def __init__(
        self, path: Path | str, *, config: Mapping[str, str] | None = None, threads: int | None = None
    ) -> None:
        super().__init__()
        import onnxruntime as ort

        self.path = Path(path)
        self.config = dict(config or {})
        self.session = ort.InferenceSession(
            str(self.path), session_options(self.config, threads), providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name
        self.input_dtype = np.int64 if "int64" in self.session.get_inputs()[0].type else np.float32
        self.output_names = [self.session.get_outputs()[0].name]

    def _feed(self, inputs: Tensor) -> dict[str, np.ndarray]:
        return {self.input_name: np.ascontiguousarray(inputs.detach().cpu().numpy(), dtype=self.input_dtype)}

    def forward(self, inputs: Tensor) -> Tensor:
        (logits,) = self.session.run(self.output_names, self._feed(inputs))
        return torch.from_numpy(logits)

    def served_call(self, inputs: Tensor) -> Callable[[], object]:
        """The session's own call on `inputs` as a server makes it (numpy in, numpy out), for
        `evaluation.latency` to time."""
        return partial(self.session.run, self.output_names, self._feed(inputs))

    def __deepcopy__(self, memo: dict[int, object]) -> OnnxModule:
        return OnnxModule(self.path, config=self.config)
