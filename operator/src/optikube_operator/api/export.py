"""`spec.export`: the runtime the optimized model is shipped for."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from optikube_operator.api.base import ApiModel

Runtime = Literal["eager", "compiled", "onnx"]
RUNTIMES: tuple[str, ...] = ("eager", "compiled", "onnx")
# every runtime is timed at batch 1 and 32 besides the serving size; a larger one costs minutes
MAX_SERVING_BATCH = 1024


class ExportSpec(ApiModel):
    """How the optimized model is exported. The evaluation measures it (and the baseline, the same
    way) in every runtime that can run it; results.json lists them all."""

    runtime: Literal["auto", "eager", "compiled", "onnx"] = Field(
        "auto",
        description="auto: ship the fastest artifact that stays within compression.maxAccuracyDrop;"
        " eager: PyTorch as is; compiled: torch.compile (inductor, int8 kernels lowered); onnx: an ONNX"
        " model for ONNX Runtime (int8 by onnxruntime.quantization where quantization is set).",
    )
    batch_size: int | None = Field(
        None,
        ge=1,
        le=MAX_SERVING_BATCH,
        description="The batch size the model will be served at: the evaluation times every runtime at"
        " it too (besides 1 and 32), and auto ships the fastest at it. Unset: auto weighs batch 1 and"
        " 32 alike (the geometric mean of their medians).",
    )
