"""The optimized model (and the baseline) made runnable in each deployment runtime.

- `eager`: the PyTorch model the pipeline produced (torchao int8 tensors, a PT2E int8 graph, or a
  float/pruned/codebook model).
- `compiled`: the same model under `torch.compile` (`runtimes.compiled`).
- `onnx`: the float model from before the quantization stage, exported with `torch.onnx` and,
  where the spec quantizes, made INT8 by onnxruntime.quantization with the stage's method
  (`runtimes.onnx_quantize`); the baseline is the trained float model exported the same way.

Where a quantization stage ran, each runtime is also offered the compressed float model (no Q/DQ):
on a small model the int8 form can be the slower one (ONNX Runtime's quantize and dequantize
nodes, eager PyTorch's missing int8 kernels), and `auto` ships whichever is faster.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from optikube_trainer.compression._codebook import SharedWeightConv2d, codebook_layers
from optikube_trainer.runtimes.compiled import compile_for_cpu
from optikube_trainer.runtimes.onnx_model import OnnxModule, export_onnx
from optikube_trainer.runtimes.onnx_quantize import quantize_onnx, session_config

log = logging.getLogger(__name__)

RUNTIMES = ("eager", "compiled", "onnx")
# how the PyTorch side ran each quantization method (results.json says what each runtime ran)
TORCH_QUANTIZATION = {
    "dynamic": "torchao int8 dynamic (Linear)",
    "weightOnly": "torchao int8 weight-only (Linear)",
    "static": "PT2E int8 static (X86InductorQuantizer)",
    "qat": "int8 QAT",
}
ONNX_QUANTIZATION = {
    "dynamic": "onnxruntime int8 dynamic (MatMul/Gemm)",
    "weightOnly": "int8 weights, folded to float at load",
    "static": "onnxruntime int8 static QDQ",
    "qat": "onnxruntime int8 static QDQ",
    "": "none (float)",
}


@dataclass
class Candidate:
    runtime: str
    model: nn.Module | None
    baseline: nn.Module | None
    quantization: str
    method: str | None = None  # the quantization method this runtime's model uses
    onnx_file: Path | None = None
    session_config: dict[str, str] = field(default_factory=dict)
    exporter: str | None = None
    error: str | None = None
    source: nn.Module | None = None  # the PyTorch model this candidate runs or was exported from


def eager_candidate(model: nn.Module, baseline: nn.Module, method: str | None) -> Candidate:
    quantization = TORCH_QUANTIZATION.get(method or "", "none (float)")
    return Candidate("eager", model, baseline, quantization, method, source=model)


def compiled_candidate(
    model: nn.Module, baseline: nn.Module, method: str | None, compiled_baseline: nn.Module | None = None
) -> Candidate:
    """`compiled_baseline`: the baseline already compiled for another candidate (compiling it again
    would cost as much as the first time)."""
    try:
        return Candidate(
            "compiled",
            compile_for_cpu(model),
            compiled_baseline if compiled_baseline is not None else compile_for_cpu(baseline),
            TORCH_QUANTIZATION.get(method or "", "none (float)"),
            method,
            source=model,
        )
    except Exception as error:
        return Candidate("compiled", None, None, "", method, error=f"{type(error).__name__}: {error}")


def decoded(model: nn.Module) -> nn.Module:
    """A copy of `model` whose weight-shared layers are plain layers with the decoded weights.

    The codebook is a storage format: exported as is, ONNX Runtime would unpack the indices at
    every call. The decoded copy exports as ordinary Gemm/Conv weights, which the ONNX INT8 forms
    then store as int8."""
    layers = codebook_layers(model)
    if not layers:
        return model
    copied = copy.deepcopy(model)
    for name, layer in codebook_layers(copied).items():
        plain: nn.Module
        if isinstance(layer, SharedWeightConv2d):
            plain = nn.Conv2d(
                layer.in_channels,
                layer.out_channels,
                layer.kernel_size,  # type: ignore[arg-type]
                stride=layer.stride,  # type: ignore[arg-type]
                padding=layer.padding,  # type: ignore[arg-type]
                dilation=layer.dilation,  # type: ignore[arg-type]
                groups=layer.groups,
                bias=layer.bias is not None,
            )
        else:
            out_features, in_features = layer.weight_shape
            plain = nn.Linear(in_features, out_features, bias=getattr(layer, "bias", None) is not None)
        with torch.no_grad():
            plain.weight.copy_(layer.weight)
            bias = getattr(layer, "bias", None)
            if bias is not None:
                plain.bias.copy_(bias)  # type: ignore[union-attr]
        parent_name, _, leaf = name.rpartition(".")
        parent = copied.get_submodule(parent_name) if parent_name else copied
        setattr(parent, leaf, plain)
    return copied


def export_baseline(baseline: nn.Module, example: Tensor, directory: Path) -> OnnxModule:
    """The trained baseline exported to ONNX Runtime as it is: what a user who only exports gets."""
    directory.mkdir(parents=True, exist_ok=True)
    export_onnx(baseline, example, directory / "baseline.onnx")
    return OnnxModule(directory / "baseline.onnx")


def onnx_candidate(
    float_model: nn.Module,
    baseline: nn.Module,
    method: str | None,
    example: Tensor,
    directory: Path,
    calibration: Callable[[], Iterable[Tensor]] | None,
    *,
    source: nn.Module | None = None,
) -> Candidate:
    """`float_model` is the compressed model before quantization (the pipeline's model when the spec
    does not quantize); `method` the quantization method to apply, or None; `source` the PyTorch
    model the candidate stands for in results.json (its parameters), `float_model` by default."""
    directory.mkdir(parents=True, exist_ok=True)
    try:
        baseline_session = export_baseline(baseline, example, directory)
        exporter = export_onnx(decoded(float_model), example, directory / "float.onnx")
        target = directory / "float.onnx"
        if method is not None:
            target = directory / f"int8-{method}.onnx"
            quantize_onnx(
                directory / "float.onnx", target, method, calibration() if calibration is not None else None
            )
        config = session_config(method)
        return Candidate(
            "onnx",
            OnnxModule(target, config=config),
            baseline_session,
            ONNX_QUANTIZATION[method or ""],
            method,
            onnx_file=target,
            session_config=config,
            exporter=exporter,
            source=source if source is not None else float_model,
        )
    except Exception as error:
        log.warning("no ONNX Runtime candidate: %s", error)
        return Candidate("onnx", None, None, "", method, error=f"{type(error).__name__}: {error}")
