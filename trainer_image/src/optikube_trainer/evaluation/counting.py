"""Parameter and MAC counts of any model form (float, pruned, codebook, quantized)."""

from __future__ import annotations

from torch import Tensor, fx, nn

from optikube_trainer.compression._codebook import codebook_layers
from optikube_trainer.compression._torch_pruning_adapter import count_macs_and_params


def stored_parameters(model: nn.Module) -> int:
    """Number of stored weight values: parameters, plus int8 weights that a graph-mode quantized
    model keeps as buffers (their count does not change by quantizing)."""
    total = sum(p.numel() for p in model.parameters())
    for layer in codebook_layers(model).values():
        # a codebook layer stores one index per weight: those weights still count
        total += _count(layer.weight_shape)
    if isinstance(model, fx.GraphModule):
        total += sum(b.numel() for name, b in model.named_buffers() if name.startswith("_frozen_param"))
        total += sum(
            b.numel()
            for name, b in model.named_buffers()
            if name.endswith("bias") and not name.startswith("_")
        )
    return total


def _count(shape: tuple[int, ...]) -> int:
    total = 1
    for dim in shape:
        total *= dim
    return total


def count_macs(model: nn.Module, example_inputs: Tensor) -> int | None:
    """MACs of one forward pass over `example_inputs`; None where the counter cannot measure the
    model (graph-mode int8 graphs, codebook layers): those keep the MACs of the float model they
    came from, since neither quantizing nor sharing weights changes the multiply-adds."""
    if isinstance(model, fx.GraphModule) or codebook_layers(model):
        return None
    try:
        macs, _ = count_macs_and_params(model, example_inputs)
    except Exception:
        return None
    return macs


def ensure_cpu(model: nn.Module) -> nn.Module:
    """Move `model` to the CPU only when needed: moving quantized tensor subclasses that other
    objects still reference (an export, an optimizer) fails even when they are already there."""
    tensors = [*model.parameters(), *model.buffers()]
    if any(t.device.type != "cpu" for t in tensors):
        model.to("cpu")
    return model
