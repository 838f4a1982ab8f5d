"""The only module that touches torch-pruning.

torch-pruning is maintained by one person, so everything we need from it (dependency-graph
channel removal, its pruning groups and the MAC counter) goes through these functions; swapping
the library means rewriting this file only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
    layer_ratios: Mapping[nn.Module, float] | None = None,
    p_norm: int = 2,
) -> None:
    """Physically remove `ratio` of the output channels/neurons of prunable layers, in place
    (`layer_ratios[layer]` instead where given).

    Coupled layers (a conv and the next conv's input channels, batch norms, flatten boundaries)
    are shrunk together through torch-pruning's dependency graph, so the model stays consistent.
    """
    attention = {m: m.num_heads for m in model.modules() if isinstance(m, nn.MultiheadAttention)}
    pruner = tp.pruner.MetaPruner(
        model,
        example_inputs,
        importance=tp.importance.MagnitudeImportance(p=p_norm),
        pruning_ratio=ratio,
        pruning_ratio_dict=dict(layer_ratios or {}),
        global_pruning=global_pruning,
        ignored_layers=list(ignored_layers),
        num_heads=attention,
        prune_head_dims=True,
        prune_num_heads=False,
    )
    pruner.step()


def coupled_with_attention(
    model: nn.Module, example_inputs: Tensor, layers: Sequence[nn.Module]
) -> list[nn.Module]:
    """The `layers` whose output channels are pruned together with a multi-head attention: a
    transformer's residual stream, which every attention projection and layer norm reads."""
    attention = {
        id(part) for m in model.modules() if isinstance(m, nn.MultiheadAttention) for part in m.modules()
    }
    if not attention:
        return []
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example_inputs)
    coupled = []
    for layer in layers:
        group = graph.get_pruning_group(layer, graph.get_pruner_of_module(layer).prune_out_channels, idxs=[0])
        if any(id(dependency.target.module) in attention for dependency, _ in group):
            coupled.append(layer)
    return coupled


def pruning_groups(
    model: nn.Module, example_inputs: Tensor, ignored_layers: Sequence[nn.Module]
) -> list[list[nn.Module]]:
    """The layers whose output channels are removed together, one list per group of
    torch-pruning's dependency graph (a ResNet stage's convolutions that add into the same residual
    stream are one group; a plain layer is a group of its own). The groups that `remove_channels`
    with the same `ignored_layers` would prune."""
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example_inputs)
    groups: list[list[nn.Module]] = []
    roots = (nn.Conv1d, nn.Conv2d, nn.Linear)
    for group in graph.get_all_groups(ignored_layers=list(ignored_layers), root_module_types=roots):
        layers: list[nn.Module] = []
        for dependency, _ in group:
            layer = dependency.target.module
            if (
                isinstance(layer, roots)
                and graph.is_out_channel_pruning_fn(dependency.handler)
                and layer not in layers
                and layer not in ignored_layers
            ):
                layers.append(layer)
        if layers:
            groups.append(layers)
    return groups


def ratio_keeping(kept: int, width: int) -> float:
    """The pruning ratio under which torch-pruning keeps exactly `kept` of `width` channels: it
    keeps int(width * (1 - ratio)), so aim half a channel above to stay clear of rounding down."""
    return 0.0 if kept >= width else 1.0 - (kept + 0.5) / width


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
