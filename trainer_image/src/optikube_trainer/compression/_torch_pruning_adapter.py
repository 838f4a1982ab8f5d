"""The only module that touches torch-pruning.

torch-pruning is maintained by one person, so everything we need from it (dependency-graph
channel removal and the MAC counter) goes through these two functions; swapping the library means
rewriting this file only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch_pruning as tp
from torch import Tensor, nn


def remove_channels(
    model: nn.Module,
    example_inputs: Tensor,
    *,
    ratio: float,
    ignored_layers: Sequence[nn.Module],
    global_pruning: bool,
    p_norm: int = 2,
) -> None:
    """Physically remove `ratio` of the output channels/neurons of prunable layers, in place.

    Coupled layers (a conv and the next conv's input channels, batch norms, flatten boundaries)
    are shrunk together through torch-pruning's dependency graph, so the model stays consistent.
    """
    attention = {m: m.num_heads for m in model.modules() if isinstance(m, nn.MultiheadAttention)}
    pruner = tp.pruner.MetaPruner(
        model,
        example_inputs,
        importance=tp.importance.MagnitudeImportance(p=p_norm),
        pruning_ratio=ratio,
        global_pruning=global_pruning,
        ignored_layers=list(ignored_layers),
        num_heads=attention,
        prune_head_dims=True,
        prune_num_heads=False,
    )
    pruner.step()


def count_macs_and_params(model: nn.Module, example_inputs: Tensor) -> tuple[int, int]:
    """Multiply-accumulate operations of one forward pass over `example_inputs`, and parameters."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            macs, params = tp.utils.count_ops_and_params(model, example_inputs)
    finally:
        model.train(was_training)
    return int(macs), int(params)
