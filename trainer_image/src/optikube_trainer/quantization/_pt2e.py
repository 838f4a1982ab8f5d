"""Graph-mode (PT2E) INT8 with torchao's X86InductorQuantizer: export with a dynamic batch
dimension, insert observers or fake-quant, convert to int8 weights with quantize/dequantize ops."""

from __future__ import annotations

import torch
from torch import Tensor, fx, nn
from torchao.quantization.pt2e import (
    allow_exported_model_train_eval,
    move_exported_model_to_eval,
    move_exported_model_to_train,
)
from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e, prepare_qat_pt2e
from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
    X86InductorQuantizer,
    get_default_x86_inductor_quantization_config,
)

MAX_BATCH = 65536


def export_for_quantization(model: nn.Module, example_inputs: Tensor) -> fx.GraphModule:
    """Export with the batch dimension symbolic, so calibration and serving batch sizes may differ.

    The example batch must hold at least 2 rows: export specializes a dimension of size 1."""
    if example_inputs.shape[0] < 2:
        example_inputs = torch.cat([example_inputs, example_inputs])
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    program = torch.export.export(model, (example_inputs,), dynamic_shapes=({0: batch},))
    module = program.module()
    assert isinstance(module, fx.GraphModule)
    separate_repeated_calls(module)
    return module


def separate_repeated_calls(module: fx.GraphModule) -> None:
    """Give each call of a module that runs twice in one forward (torchvision's ResNet blocks call
    their one `relu` twice) its own name in the nodes' module stack.

    The quantizer groups nodes into patterns by the module they came from; two calls of the same
    ReLU form one group with two outputs, and X86InductorQuantizer refuses the whole model ("Input
    partition has more than one output node"). Export already tells the calls apart in the stack's
    keys (`layer1.0.relu@1`); the name the grouping reads is made to match."""
    for node in module.graph.nodes:
        stack = node.meta.get("nn_module_stack")
        if not stack:
            continue
        key, (name, kind) = list(stack.items())[-1]
        call = key.rpartition("@")[2] if "@" in key else None
        if call is not None and not str(name).endswith(f"@{call}"):
            stack[key] = (f"{name}@{call}", kind)


def _quantizer(*, is_qat: bool) -> X86InductorQuantizer:
    quantizer = X86InductorQuantizer()
    quantizer.set_global(get_default_x86_inductor_quantization_config(is_qat=is_qat))
    return quantizer


def prepare_static(model: nn.Module, example_inputs: Tensor) -> fx.GraphModule:
    model.eval()
    return prepare_pt2e(export_for_quantization(model, example_inputs), _quantizer(is_qat=False))


def prepare_qat(model: nn.Module, example_inputs: Tensor) -> fx.GraphModule:
    model.eval()  # export traces the inference graph; training behaviour is switched back on below
    prepared = prepare_qat_pt2e(export_for_quantization(model, example_inputs), _quantizer(is_qat=True))
    move_exported_model_to_train(prepared)
    # Training loops call .train()/.eval(); let those switch dropout and batch norm correctly.
    allow_exported_model_train_eval(prepared)
    return prepared


def convert(prepared: fx.GraphModule) -> fx.GraphModule:
    move_exported_model_to_eval(prepared)
    quantized = convert_pt2e(prepared)
    drop_unused_attributes(quantized)
    allow_exported_model_train_eval(quantized)  # evaluation code calls .eval() on any model
    return quantized


def drop_unused_attributes(module: fx.GraphModule) -> None:
    """convert_pt2e stores int8 copies of the weights but keeps the float originals as unused
    attributes; drop them so the saved model holds int8 weights only."""
    used = {str(node.target) for node in module.graph.nodes if node.op in ("get_attr", "call_module")}
    for name, _ in list(module.named_parameters()) + list(module.named_buffers()):
        if name in used:
            continue
        owner_path, _, leaf = name.rpartition(".")
        owner = module.get_submodule(owner_path) if owner_path else module
        if leaf in owner._parameters:
            del owner._parameters[leaf]
        elif leaf in owner._buffers:
            del owner._buffers[leaf]
