"""Weight sharing: k-means clustering of each layer's weights into <= k shared values, stored as a
codebook plus bit-packed indices so the saved model really shrinks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from optikube_operator.api.compression import FineTuneLoss, WeightSharing
from optikube_trainer.compression._codebook import (
    SharedWeightConv2d,
    SharedWeightLinear,
    codebook_layers,
    index_bits,
)
from optikube_trainer.spec_fields import SpecConfig, spec_default


@dataclass(frozen=True)
class WeightSharingConfig(SpecConfig, block=WeightSharing, path="compression.weightSharing"):
    """`compression.weightSharing`, plus `min_weights`, not in the spec: smaller layers cost more in
    codebook than they save."""

    clusters: int = spec_default(WeightSharing, "clusters")
    fine_tune_epochs: int = spec_default(WeightSharing, "fine_tune_epochs")
    fine_tune_loss: FineTuneLoss = spec_default(WeightSharing, "fine_tune_loss")
    min_weights: int = 64


@dataclass
class WeightSharingSummary:
    clusters: int
    index_bits: int
    layers: dict[str, int] = field(default_factory=dict)  # name -> distinct weight values
    weight_bytes_before: int = 0
    weight_bytes_after: int = 0

    def changes(self) -> dict[str, Any]:
        return {
            "clusters": self.clusters,
            "indexBits": self.index_bits,
            "sharedLayers": len(self.layers),
            "maxDistinctValues": max(self.layers.values(), default=0),
            "weightBytesBefore": self.weight_bytes_before,
            "weightBytesAfter": self.weight_bytes_after,
        }


def share_weights_(model: nn.Module, config: WeightSharingConfig) -> WeightSharingSummary:
    """Cluster the weights of every Linear/Conv2d layer of `model` in place."""
    summary = WeightSharingSummary(clusters=config.clusters, index_bits=index_bits(config.clusters))
    replacements: list[tuple[nn.Module, str, nn.Module, str]] = []
    for parent_name, parent in model.named_modules():
        if isinstance(parent, nn.MultiheadAttention):
            continue  # attention reads out_proj.weight as a raw parameter
        for child_name, child in parent.named_children():
            full_name = f"{parent_name}.{child_name}" if parent_name else child_name
            if type(child) not in (nn.Linear, nn.Conv2d) or child.weight.numel() < config.min_weights:
                continue
            shared: nn.Module
            if isinstance(child, nn.Linear):
                shared = SharedWeightLinear.from_dense(child, config.clusters)
            else:
                assert isinstance(child, nn.Conv2d)
                shared = SharedWeightConv2d.from_dense(child, config.clusters)
            summary.weight_bytes_before += child.weight.numel() * child.weight.element_size()
            replacements.append((parent, child_name, shared.to(child.weight.device), full_name))
    for parent, child_name, shared, _ in replacements:
        setattr(parent, child_name, shared)
    for name, layer in codebook_layers(model).items():
        summary.layers[name] = layer.distinct_values()
        summary.weight_bytes_after += (
            layer.codebook.numel() * layer.codebook.element_size()
            + layer.packed_indices.numel() * layer.packed_indices.element_size()
        )
    return summary
