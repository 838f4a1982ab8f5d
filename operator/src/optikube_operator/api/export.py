"""`spec.export`: the runtime the optimized model is shipped for."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from optikube_operator.api.base import ApiModel

Runtime = Literal["eager", "compiled", "onnx"]
RUNTIMES: tuple[str, ...] = ("eager", "compiled", "onnx")


class ExportSpec(ApiModel):
    """How the optimized model is exported. The evaluation measures it (and the baseline, the same
    way) in every runtime that can run it; results.json lists them all."""

    runtime: Literal["auto", "eager", "compiled", "onnx"] = Field(
        "auto",
        description="auto: ship the fastest artifact that stays within compression.maxAccuracyDrop;"
        " eager: PyTorch as is; compiled: torch.compile (inductor, int8 kernels lowered); onnx: an ONNX"
        " model for ONNX Runtime (int8 by onnxruntime.quantization where quantization is set).",
    )
