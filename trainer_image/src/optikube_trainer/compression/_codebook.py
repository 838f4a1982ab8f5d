"""Codebook-coded weights: a layer stores k float values and one small integer per weight.

Indices are bit-packed (4 bits when k <= 16, 8 bits when k <= 256, else 16) into a persistent
buffer, so a saved state dict really holds ~4-8x fewer bytes than float32 weights.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import Tensor, nn


def index_bits(clusters: int) -> int:
    if clusters < 2 or clusters > 65536:
        raise ValueError(f"compression.weightSharing.clusters: expected 2..65536, got {clusters}")
    return 4 if clusters <= 16 else 8 if clusters <= 256 else 16


def pack_indices(indices: Tensor, bits: int) -> Tensor:
    flat = indices.flatten().to(torch.int32)
    if bits == 16:
        return flat.to(torch.int16)
    if bits == 8:
        return flat.to(torch.uint8)
    if flat.numel() % 2:
        flat = torch.cat([flat, flat.new_zeros(1)])
    pairs = flat.view(-1, 2)
    return (pairs[:, 0] | (pairs[:, 1] << 4)).to(torch.uint8)


def unpack_indices(packed: Tensor, bits: int, count: int) -> Tensor:
    if bits == 16:
        return packed.to(torch.int64) & 0xFFFF
    if bits == 8:
        return packed.to(torch.int64)
    wide = packed.to(torch.int64)
    return torch.stack([wide & 0xF, wide >> 4], dim=1).flatten()[:count]


def kmeans_1d(values: Tensor, clusters: int, iterations: int = 25) -> tuple[Tensor, Tensor]:
    """Lloyd's k-means on scalars with linear initialisation over [min, max] (keeps the rare large
    weights representable, as in Deep Compression). Returns (codebook, index per value)."""
    flat = values.detach().flatten().double()
    low, high = flat.min(), flat.max()
    codebook = torch.linspace(float(low), float(high), clusters, dtype=torch.float64)
    assign = torch.zeros_like(flat, dtype=torch.int64)
    for _ in range(iterations):
        order = torch.argsort(codebook)
        codebook = codebook[order]
        boundaries = (codebook[1:] + codebook[:-1]) / 2
        assign = torch.bucketize(flat, boundaries)
        sums = torch.zeros(clusters, dtype=torch.float64).index_add_(0, assign, flat)
        counts = torch.bincount(assign, minlength=clusters).double()
        updated = torch.where(counts > 0, sums / counts.clamp_min(1), codebook)
        if torch.allclose(updated, codebook):
            break
        codebook = updated
    return codebook.float(), assign


class CodebookWeight(nn.Module):
    """Provides `weight` decoded from `codebook` (trainable) and `packed_indices` (fixed)."""

    codebook: nn.Parameter
    packed_indices: Tensor
    weight_shape: tuple[int, ...]
    bits: int

    def _init_codebook(self, dense_weight: Tensor, clusters: int) -> None:
        self.bits = index_bits(clusters)
        self.weight_shape = tuple(dense_weight.shape)
        codebook, assign = kmeans_1d(dense_weight, clusters)
        self.codebook = nn.Parameter(codebook)
        self.register_buffer("packed_indices", pack_indices(assign, self.bits))

    @property
    def weight(self) -> Tensor:
        count = 1
        for dim in self.weight_shape:
            count *= dim
        indices = unpack_indices(self.packed_indices, self.bits, count)
        return self.codebook[indices].view(self.weight_shape)

    def distinct_values(self) -> int:
        return int(torch.unique(self.weight.detach()).numel())

    def extra_repr(self) -> str:
        return f"weight_shape={self.weight_shape}, clusters={self.codebook.numel()}, index_bits={self.bits}"


class SharedWeightLinear(CodebookWeight, nn.Linear):  # type: ignore[override]
    """nn.Linear whose weight is codebook[indices]; MAC counters still see a Linear."""

    @classmethod
    def from_dense(cls, layer: nn.Linear, clusters: int) -> SharedWeightLinear:
        module = cls.__new__(cls)
        nn.Module.__init__(module)
        module.in_features, module.out_features = layer.in_features, layer.out_features
        module._init_codebook(layer.weight, clusters)
        module.bias = nn.Parameter(layer.bias.detach().clone()) if layer.bias is not None else None
        return module


_CONV_ATTRIBUTES = (
    "in_channels",
    "out_channels",
    "kernel_size",
    "stride",
    "padding",
    "dilation",
    "transposed",
    "output_padding",
    "groups",
    "padding_mode",
    "_reversed_padding_repeated_twice",
)


class SharedWeightConv2d(CodebookWeight, nn.Conv2d):  # type: ignore[override]
    """nn.Conv2d whose weight is codebook[indices]."""

    @classmethod
    def from_dense(cls, layer: nn.Conv2d, clusters: int) -> SharedWeightConv2d:
        module = cls.__new__(cls)
        nn.Module.__init__(module)
        for name in _CONV_ATTRIBUTES:
            setattr(module, name, getattr(layer, name))
        module._init_codebook(layer.weight, clusters)
        module.bias = nn.Parameter(layer.bias.detach().clone()) if layer.bias is not None else None
        return module


def codebook_layers(model: nn.Module) -> dict[str, CodebookWeight]:
    return {name: cast(Any, m) for name, m in model.named_modules() if isinstance(m, CodebookWeight)}
