"""Quantization-aware training: fake-quantize during fine-tuning so the weights adapt to INT8,
then convert to a real int8 model.

Two back ends: PT2E (X86InductorQuantizer in QAT mode; covers Conv and Linear, int8 static
activations, the same numerics as `static`) and torchao's `QATConfig` (Linear layers, dynamic
per-token activations, converted to `Int8DynamicActivationInt8WeightConfig`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor, fx, nn
from torchao.quantization import quantize_
from torchao.quantization.qat import IntxFakeQuantizeConfig, QATConfig

from optikube_trainer.evaluation.size import weight_bytes
from optikube_trainer.quantization import _pt2e
from optikube_trainer.quantization._summary import QuantizationSummary
from optikube_trainer.quantization.static import quantized_op_count
from optikube_trainer.quantization.torchao_int8 import plain_linear, quantize_dynamic_int8_

Backend = Literal["pt2e", "torchao"]
Trainer = Callable[[nn.Module], object]


def choose_backend(model: nn.Module, requested: str = "auto") -> Backend:
    if requested in ("pt2e", "torchao"):
        return requested  # type: ignore[return-value]
    has_conv = any(isinstance(m, nn.Conv1d | nn.Conv2d) for m in model.modules())
    has_embedding = any(isinstance(m, nn.Embedding) for m in model.modules())
    return "pt2e" if has_conv and not has_embedding else "torchao"


def _torchao_qat_config() -> QATConfig:
    return QATConfig(
        activation_config=IntxFakeQuantizeConfig(torch.int8, "per_token", is_symmetric=False),
        weight_config=IntxFakeQuantizeConfig(torch.int8, "per_channel"),
        step="prepare",
    )


def prepare_qat(model: nn.Module, example_inputs: Tensor, backend: Backend) -> nn.Module:
    """Return a trainable model with fake quantization inserted."""
    if backend == "pt2e":
        return _pt2e.prepare_qat(model, example_inputs)
    quantize_(model, _torchao_qat_config(), filter_fn=plain_linear)
    model.train()
    return model


def convert_qat(prepared: nn.Module, backend: Backend) -> nn.Module:
    """Turn a fake-quantized model into a real int8 one."""
    if backend == "pt2e":
        assert isinstance(prepared, fx.GraphModule)
        return _pt2e.convert(prepared)
    quantize_(prepared, QATConfig(step="convert"))
    quantize_dynamic_int8_(prepared)
    return prepared


def quantization_aware_train(
    model: nn.Module, example_inputs: Tensor, train: Trainer, *, backend: Backend
) -> tuple[nn.Module, QuantizationSummary]:
    """Prepare, fine-tune with `train(prepared)`, convert. `model` may be modified."""
    before = weight_bytes(model)
    prepared = prepare_qat(model, example_inputs, backend)
    train(prepared)
    quantized = convert_qat(prepared, backend)
    layers = (
        quantized_op_count(quantized)
        if isinstance(quantized, fx.GraphModule)
        else sum(
            1
            for m in quantized.modules()
            if isinstance(m, nn.Linear) and type(m.weight).__name__ not in ("Parameter", "Tensor")
        )
    )
    return quantized, QuantizationSummary("qat", backend, layers, before, weight_bytes(quantized))
