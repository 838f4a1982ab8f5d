"""Static post-training INT8: activation ranges calibrated on real batches, int8 weights and
activations (PT2E + X86InductorQuantizer). Works for convolutional and Linear models."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, fx, nn

from optikube_trainer.evaluation.size import weight_bytes
from optikube_trainer.quantization import _pt2e
from optikube_trainer.quantization._summary import QuantizationSummary


def quantized_op_count(module: fx.GraphModule) -> int:
    return sum(
        1
        for node in module.graph.nodes
        if node.op == "call_function" and "dequantize_per_channel" in str(node.target)
    )


def quantize_static_int8(
    model: nn.Module, example_inputs: Tensor, calibration_batches: Iterable[Tensor]
) -> tuple[fx.GraphModule, QuantizationSummary]:
    """Return an int8 graph module for `model` (which is left unchanged)."""
    before = weight_bytes(model)
    prepared = _pt2e.prepare_static(model, example_inputs)
    seen = 0
    with torch.no_grad():
        for batch in calibration_batches:
            prepared(batch)
            seen += 1
    if seen == 0:
        raise ValueError("quantization.calibrationBatches: static quantization needs at least one batch")
    quantized = _pt2e.convert(prepared)
    return quantized, QuantizationSummary(
        "static", "pt2e-x86", quantized_op_count(quantized), before, weight_bytes(quantized)
    )
