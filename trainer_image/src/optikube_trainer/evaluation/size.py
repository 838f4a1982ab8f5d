"""Bytes a model really stores: the serialized artifact and the weights inside it."""

from __future__ import annotations

import io
from typing import Any

import torch
from torch import Tensor, nn


def tensor_storage_bytes(tensor: Tensor) -> int:
    """Bytes of a tensor's data, looking inside quantized tensor subclasses (int8 data + scales)."""
    flatten = getattr(type(tensor), "__tensor_flatten__", None)
    if flatten is not None and type(tensor) is not nn.Parameter and type(tensor) is not Tensor:
        names, _ = tensor.__tensor_flatten__()  # type: ignore[attr-defined]
        return sum(tensor_storage_bytes(getattr(tensor, name)) for name in names)
    return tensor.numel() * tensor.element_size()


def state_dict_bytes(model: nn.Module) -> int:
    """Bytes of all tensors the model persists (weights, quantization scales, codebooks)."""
    seen: set[int] = set()
    total = 0
    for value in model.state_dict().values():
        key = id(value)
        if key in seen:
            continue
        seen.add(key)
        total += tensor_storage_bytes(value)
    return total


WEIGHT_LEAVES = ("weight", "codebook", "packed_indices")
# graph-mode quantized models keep int8 weights and their scales as `_frozen_param<n>` etc.
GRAPH_WEIGHT_PREFIXES = ("_frozen_param", "_scale_", "_zero_point_")


def weight_bytes(model: nn.Module) -> int:
    """Bytes of weight tensors only (the `weight` of layers, quantized or not, and codebooks)."""
    total = 0
    for name, value in model.state_dict().items():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in WEIGHT_LEAVES or leaf.startswith(GRAPH_WEIGHT_PREFIXES):
            total += tensor_storage_bytes(value)
    return total


def serialized_bytes(obj: Any) -> int:
    """Size of `torch.save(obj)` without touching the disk."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getbuffer().nbytes
