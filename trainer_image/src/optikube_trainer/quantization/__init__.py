"""INT8 quantization that really stores int8 weights and runs on CPU: dynamic, static
(calibrated), weight-only, and quantization-aware training."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from torch import Tensor, nn

from optikube_trainer.quantization._summary import QuantizationSummary
from optikube_trainer.quantization.config import QuantizationConfig
from optikube_trainer.quantization.qat import choose_backend, quantization_aware_train
from optikube_trainer.quantization.static import quantize_static_int8
from optikube_trainer.quantization.torchao_int8 import quantize_dynamic_int8_, quantize_weight_only_int8_


def quantize(
    model: nn.Module,
    config: QuantizationConfig,
    *,
    example_inputs: Tensor,
    calibration: Callable[[], Iterable[Tensor]] | None = None,
    train: Callable[[nn.Module], object] | None = None,
) -> tuple[nn.Module, QuantizationSummary]:
    """Quantize `model` by `config.method`; returns the quantized model (possibly a new object).

    `calibration` yields input batches (static); `train` fine-tunes a model in place (qat)."""
    if config.method == "dynamic":
        return model, quantize_dynamic_int8_(model)
    if config.method == "weightOnly":
        return model, quantize_weight_only_int8_(model)
    if config.method == "static":
        if calibration is None:
            raise ValueError("quantization.method=static needs calibration batches")
        return quantize_static_int8(model, example_inputs, calibration())
    if train is None:
        raise ValueError("quantization.method=qat needs a training function")
    return quantization_aware_train(
        model, example_inputs, train, backend=choose_backend(model, config.qat_backend)
    )


__all__ = [
    "QuantizationConfig",
    "QuantizationSummary",
    "choose_backend",
    "quantization_aware_train",
    "quantize",
    "quantize_dynamic_int8_",
    "quantize_static_int8",
    "quantize_weight_only_int8_",
]
