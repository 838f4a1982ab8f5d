"""INT8 of an ONNX model with onnxruntime.quantization, by the spec's quantization method:

- `static` (and `qat`'s runtime form): QDQ with activation ranges calibrated on the same training
  batches the PyTorch stage used, int8 per-channel weights and uint8 activations (the U8S8 path
  that VNNI/AMX kernels run);
- `dynamic`: int8 weights of MatMul/Gemm, activations quantized at run time; like torchao's dynamic
  INT8, convolutions stay float;
- `weightOnly`: int8 per-channel weights behind DequantizeLinear nodes, which the session folds
  into float weights when it loads (`session.disable_quant_qdq`): 4x smaller file, float compute.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper
from torch import Tensor

# session settings an artifact needs to run as measured (kept in its manifest)
WEIGHT_ONLY_SESSION = {"session.disable_quant_qdq": "1"}
# layers whose second input is the weight, and the axis of its output channels
WEIGHT_AXIS = {"Conv": 0, "Gemm": 0, "MatMul": 1}


def gentler_forms(method: str | None) -> list[str | None]:
    """What the ONNX Runtime candidate falls back to, in order, when its INT8 costs more accuracy
    than the budget allows: int8 weights with float compute, then the float model itself (the one
    that passed the pipeline's stage checks before quantization). None means float."""
    if method is None:
        return []
    return [None] if method == "weightOnly" else ["weightOnly", None]


def session_config(method: str | None) -> dict[str, str]:
    return dict(WEIGHT_ONLY_SESSION) if method == "weightOnly" else {}


class _Batches:
    """onnxruntime's CalibrationDataReader protocol over input tensors."""

    def __init__(self, input_name: str, batches: Iterable[Tensor]) -> None:
        self.input_name = input_name
        self._batches: Iterator[Tensor] = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {self.input_name: batch.detach().cpu().numpy()}

    def rewind(self) -> None:  # calibration reads once
        return None


def _preprocessed(source: Path, directory: Path) -> Path:
    """Shape inference and graph clean-up that the quantizer recommends; skipped where it fails."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    target = directory / "pre.onnx"
    for symbolic in (True, False):
        try:
            quant_pre_process(str(source), str(target), skip_symbolic_shape=not symbolic)
            return target
        except Exception:
            continue
    return source


def quantize_onnx(
    source: Path, target: Path, method: str, calibration: Iterable[Tensor] | None = None
) -> int:
    """Write the INT8 form of `source` to `target`; returns the number of quantized weights."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    logging.getLogger("onnxruntime.quantization").setLevel(logging.WARNING)
    if method == "weightOnly":
        return quantize_weights_only(source, target)
    with tempfile.TemporaryDirectory() as temporary:
        prepared = _preprocessed(source, Path(temporary))
        if method == "dynamic":
            quantize_dynamic(
                str(prepared),
                str(target),
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul", "Gemm"],
            )
        elif method in ("static", "qat"):
            if calibration is None:
                raise ValueError("static ONNX quantization needs calibration batches")
            input_name = onnx.load(str(prepared), load_external_data=False).graph.input[0].name
            quantize_static(
                str(prepared),
                str(target),
                _Batches(input_name, calibration),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                weight_type=QuantType.QInt8,
                activation_type=QuantType.QUInt8,
            )
        else:
            raise ValueError(f"no ONNX Runtime form of quantization method {method!r}")
    return quantized_weight_count(target)


def quantize_weights_only(source: Path, target: Path) -> int:
    """Int8 per-output-channel weights for Conv, Gemm and MatMul (symmetric, scale = max|w| / 127)."""
    model = onnx.load(str(source))
    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    nodes = []
    done: set[str] = set()
    for node in graph.node:
        axis = WEIGHT_AXIS.get(node.op_type)
        name = node.input[1] if axis is not None and len(node.input) > 1 else ""
        if node.op_type == "Gemm" and any(a.name == "transB" and a.i == 0 for a in node.attribute):
            axis = 1  # Gemm without transB stores the weight as (in, out)
        if name in initializers and name not in done:
            weight = numpy_helper.to_array(initializers[name])
            if weight.dtype == np.float32 and weight.ndim >= 2 and weight.size >= 64:
                assert axis is not None
                nodes.append(_dequantize(graph, initializers[name], weight, axis))
                done.add(name)
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    if model.opset_import[0].version < 13:  # per-axis DequantizeLinear
        model.opset_import[0].version = 13
    onnx.save(model, str(target))
    return len(done)


def _dequantize(
    graph: onnx.GraphProto, tensor: onnx.TensorProto, weight: np.ndarray, axis: int
) -> onnx.NodeProto:
    """Replace the float initializer by int8 + scales and return the node that restores it."""
    name = tensor.name
    reduce = tuple(i for i in range(weight.ndim) if i != axis)
    scale = (np.abs(weight).max(axis=reduce) / 127.0).astype(np.float32)
    scale[scale == 0] = 1.0
    shape = [1] * weight.ndim
    shape[axis] = -1
    quantized = np.clip(np.round(weight / scale.reshape(shape)), -127, 127).astype(np.int8)
    graph.initializer.remove(tensor)
    graph.initializer.extend(
        [
            numpy_helper.from_array(quantized, f"{name}_int8"),
            numpy_helper.from_array(scale, f"{name}_scale"),
            numpy_helper.from_array(np.zeros_like(scale, dtype=np.int8), f"{name}_zero"),
        ]
    )
    return helper.make_node(
        "DequantizeLinear", [f"{name}_int8", f"{name}_scale", f"{name}_zero"], [name], axis=axis
    )


def quantized_weight_count(path: Path) -> int:
    """Int8 weight initializers in an ONNX file (what makes it smaller); zero points are 1-D."""
    model = onnx.load(str(path))
    return sum(
        1
        for tensor in model.graph.initializer
        if tensor.data_type == onnx.TensorProto.INT8 and len(tensor.dims) >= 2
    )
