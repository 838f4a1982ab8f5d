"""Post-training INT8 of Linear layers with torchao's `quantize_`: dynamic activations + int8
weights, or int8 weights only. Weights become torchao Int8Tensor (int8 data + per-row scales)."""

from __future__ import annotations

import copy

from torch import nn
from torchao.core.config import AOBaseConfig
from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig, quantize_

from optikube_trainer.evaluation.size import weight_bytes
from optikube_trainer.quantization._summary import QuantizationSummary

# set on a quantized model: (its weightless float structure, the quantization method), so that
# optikube_trainer.export can save it as structure + int8 state dict
REBUILD_ATTRIBUTE = "_optikube_rebuild"


def remember_structure(model: nn.Module, method: str) -> None:
    """Keep a weightless copy of `model`'s float structure so its quantized form can be saved as
    structure + int8 state dict (quantized tensor subclasses cannot be pickled as a module)."""
    skeleton = copy.deepcopy(model).to("meta")
    model.__dict__[REBUILD_ATTRIBUTE] = (skeleton, method)


def plain_linear(module: nn.Module, _fqn: str = "") -> bool:
    """torchao's filter: exactly nn.Linear. Not codebook-coded layers (already 4-8 bit), nor
    attention's out_proj subclass, whose weight attention reads directly."""
    return type(module) is nn.Linear


def _quantized_linear_count(model: nn.Module) -> int:
    return sum(
        1
        for m in model.modules()
        if plain_linear(m) and type(m.weight).__name__ not in ("Parameter", "Tensor")
    )


TORCHAO_METHODS: dict[str, type[AOBaseConfig]] = {
    "dynamic": Int8DynamicActivationInt8WeightConfig,
    "weightOnly": Int8WeightOnlyConfig,
}


def quantize_linears_(model: nn.Module, method: str) -> QuantizationSummary:
    """Quantize the plain Linear layers of `model` in place with torchao's `method` config."""
    config = TORCHAO_METHODS[method]()
    if not any(plain_linear(m) for m in model.modules()):
        raise ValueError(
            f"quantization.method={method}: the model has no (unshared) Linear layer to quantize"
        )
    model.eval()
    before = weight_bytes(model)
    remember_structure(model, method)
    quantize_(model, config, filter_fn=plain_linear)
    return QuantizationSummary(method, "torchao", _quantized_linear_count(model), before, weight_bytes(model))


def quantize_dynamic_int8_(model: nn.Module) -> QuantizationSummary:
    """INT8 weights and per-token INT8 activations computed at run time; no calibration data."""
    return quantize_linears_(model, "dynamic")


def quantize_weight_only_int8_(model: nn.Module) -> QuantizationSummary:
    """INT8 weights dequantized inside the matmul; activations stay float."""
    return quantize_linears_(model, "weightOnly")
