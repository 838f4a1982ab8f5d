"""How structured pruning spreads its sparsity over the layers (`compression.pruning.allocation`).

`uniform`: every layer loses the same share of its channels. `sensitivity`: each group of layers
that lose channels together (torch-pruning's dependency groups: a plain layer alone, the
convolutions of a ResNet stage that add into one residual stream together) is pruned alone, on a
copy, at a few sparsities; the copy's outputs on calibration inputs are compared with the unpruned
model's (KL divergence of the class probabilities) and its MACs counted. Each group then takes the
sparsity that minimizes `distortion - lam * MACs saved`, with `lam` the smallest for which the groups
together save at least the MACs that uniform pruning at the asked sparsity saves: the groups whose
channels change the outputs least per MAC are pruned most, and the model is at least as much
cheaper as uniform pruning would make it (on the sum of the groups' savings, the estimate both sides
are compared on). Where that estimate does not beat uniform pruning, uniform pruning is kept.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from optikube_trainer.compression._torch_pruning_adapter import (
    count_macs_and_params,
    pruning_groups,
    ratio_keeping,
    remove_channels,
)

if TYPE_CHECKING:  # pruning.py imports this module
    from optikube_trainer.compression.pruning import PruningConfig

# The sparsities each group is tried at besides the asked one: coarse enough that a ResNet-18 (12
# groups) is measured in about a minute on one core, fine enough to move a layer by a quarter.
SENSITIVITY_LEVELS = (0.25, 0.5, 0.75)
# Inputs the distortion is measured on: a forward pass of ResNet-18 at 32x32 takes 6 s for 256
# samples on one core, and each group is measured at up to four sparsities.
SENSITIVITY_SAMPLES = 64
LAGRANGE_STEPS = 60


def layer_width(layer: nn.Module) -> int:
    """Output channels of a conv, output neurons of a linear layer."""
    if isinstance(layer, nn.Conv1d | nn.Conv2d):
        return layer.out_channels
    assert isinstance(layer, nn.Linear)
    return layer.out_features


def kept_channels(width: int, sparsity: float, multiple: int) -> int:
    """What structured pruning keeps of a layer `width` wide: the share `1 - sparsity`, rounded up
    to a multiple of `multiple` and never wider than the layer. CPU and GPU kernels work on blocks
    of 8 or 16 channels: in ONNX Runtime (bench/channel_widths.py, one thread, batch 32) the digits
    CNN pruned to 24/48/96 of its 32/64/128 channels ran at 0.85x the unpruned model's speed, and
    to 22/44/89 at 0.47x; rounded up to 32/48/96, both ran at 1.17x."""
    exact = int(width * (1.0 - sparsity))
    return min(width, max(multiple, math.ceil(exact / multiple) * multiple))


def layer_ratios(sparsity: Mapping[nn.Module, float], multiple: int) -> dict[nn.Module, float]:
    """Each layer's torch-pruning ratio, the one that keeps `kept_channels` at its sparsity."""
    return {
        layer: ratio_keeping(kept_channels(layer_width(layer), share, multiple), layer_width(layer))
        for layer, share in sparsity.items()
    }


@dataclass(frozen=True)
class GroupOption:
    """One group pruned alone at one sparsity: how much it changed the outputs and what it saved."""

    sparsity: float
    distortion: float
    macs_saved: int


@dataclass
class Allocation:
    """Each pruned layer's sparsity, and what the choice was based on (for results.json)."""

    method: str
    sparsity: dict[str, float]  # layer name -> share of its channels removed
    distortion: float | None = None  # summed over the groups, each pruned alone
    uniform_distortion: float | None = None
    macs_saved: int | None = None
    uniform_macs_saved: int | None = None
    calibration_samples: int = 0
    options: dict[str, list[GroupOption]] = field(default_factory=dict)

    def changes(self) -> dict[str, Any]:
        recorded: dict[str, Any] = {
            "allocation": self.method,
            "layerTargetSparsity": {name: round(share, 4) for name, share in self.sparsity.items()},
        }
        if self.distortion is not None and self.uniform_distortion is not None:
            recorded["sensitivity"] = {
                "calibrationSamples": self.calibration_samples,
                "distortion": round(self.distortion, 6),
                "uniformDistortion": round(self.uniform_distortion, 6),
                "macsSavedEstimate": self.macs_saved,
                "uniformMacsSavedEstimate": self.uniform_macs_saved,
            }
        return recorded


def uniform_allocation(layers: Mapping[str, nn.Module], sparsity: float) -> Allocation:
    return Allocation("uniform", dict.fromkeys(layers, sparsity))


@torch.no_grad()
def _probabilities(model: nn.Module, inputs: Tensor) -> Tensor:
    was_training = model.training
    model.eval()
    try:
        outputs = model(inputs)
    finally:
        model.train(was_training)
    return torch.log_softmax(outputs.float(), dim=-1)


def _distortion(reference: Tensor, model: nn.Module, inputs: Tensor) -> float:
    """Mean KL divergence of `model`'s class probabilities from the reference's."""
    log_probabilities = _probabilities(model, inputs)
    kl = torch.nn.functional.kl_div(log_probabilities, reference, log_target=True, reduction="batchmean")
    return max(0.0, float(kl))


def _prune_group_alone(
    model: nn.Module,
    names: Mapping[nn.Module, str],
    group: Sequence[nn.Module],
    ignored: Sequence[nn.Module],
    sparsity: float,
    multiple: int,
    example_inputs: Tensor,
) -> nn.Module:
    """A copy of `model` with only `group` pruned at `sparsity` (the same rounding as the real run)."""
    pruned = copy.deepcopy(model)
    in_copy = {layer: pruned.get_submodule(names[layer]) for layer in [*group, *ignored] if layer in names}
    ratios = layer_ratios({in_copy[layer]: sparsity for layer in group}, multiple)
    remove_channels(
        pruned,
        example_inputs,
        ratio=0.0,
        ignored_layers=[in_copy[layer] for layer in ignored if layer in in_copy],
        global_pruning=False,
        layer_ratios=ratios,
    )
    return pruned


def _choose(options: Mapping[str, list[GroupOption]], lam: float) -> dict[str, GroupOption]:
    """Each group's option minimizing distortion - lam * MACs saved (not pruning at all included)."""
    unpruned = GroupOption(0.0, 0.0, 0)
    return {
        group: min([unpruned, *choices], key=lambda o: (o.distortion - lam * o.macs_saved, o.sparsity))
        for group, choices in options.items()
    }


def allocate(
    model: nn.Module,
    layers: Mapping[str, nn.Module],
    ignored: Sequence[nn.Module],
    config: PruningConfig,
    example_inputs: Tensor,
    calibration: Tensor | None,
) -> Allocation:
    """Each layer's sparsity by `config.allocation`: the same for all (`uniform`), or the
    sensitivity allocation of the module docstring, measured on `calibration` (`example_inputs`
    without it); `layers` are the prunable layers by name."""
    sparsity, multiple = config.sparsity, config.channel_multiple
    if config.allocation == "uniform" or not layers:
        return uniform_allocation(layers, sparsity)
    names = {module: name for name, module in model.named_modules()}
    inputs = (calibration if calibration is not None else example_inputs)[:SENSITIVITY_SAMPLES]
    reference = _probabilities(model, inputs)
    macs_full, _ = count_macs_and_params(model, example_inputs[:1])
    groups = {
        names[group[0]]: group
        for group in pruning_groups(model, example_inputs, ignored)
        if all(layer in layers.values() for layer in group)
    }
    levels = sorted({*SENSITIVITY_LEVELS, sparsity})
    options: dict[str, list[GroupOption]] = {}
    for key, group in groups.items():
        by_channels: dict[tuple[int, ...], tuple[float, int]] = {}  # kept channels -> measurement
        options[key] = []
        for level in levels:
            kept = tuple(kept_channels(layer_width(layer), level, multiple) for layer in group)
            if kept not in by_channels:  # rounding to the multiple can make two levels the same
                pruned = _prune_group_alone(model, names, group, ignored, level, multiple, example_inputs)
                macs, _ = count_macs_and_params(pruned, example_inputs[:1])
                by_channels[kept] = (_distortion(reference, pruned, inputs), macs_full - macs)
            options[key].append(GroupOption(level, *by_channels[kept]))
    uniform = {key: next(o for o in choices if o.sparsity == sparsity) for key, choices in options.items()}
    goal = sum(o.macs_saved for o in uniform.values())
    chosen = _smallest_lambda_reaching(options, goal)
    distortion = sum(o.distortion for o in chosen.values())
    uniform_distortion = sum(o.distortion for o in uniform.values())
    if distortion >= uniform_distortion:  # no better than uniform on the estimate: keep uniform
        chosen = uniform
    allocation = uniform_allocation(layers, sparsity)
    allocation.method = "sensitivity"
    for key, option in chosen.items():
        for layer in groups[key]:
            allocation.sparsity[names[layer]] = option.sparsity
    allocation.distortion = sum(o.distortion for o in chosen.values())
    allocation.uniform_distortion = uniform_distortion
    allocation.macs_saved = sum(o.macs_saved for o in chosen.values())
    allocation.uniform_macs_saved = goal
    allocation.calibration_samples = int(inputs.shape[0])
    allocation.options = options
    return allocation


def _smallest_lambda_reaching(options: Mapping[str, list[GroupOption]], goal: int) -> dict[str, GroupOption]:
    """The choice at the smallest multiplier whose groups save at least `goal` MACs. The savings
    grow with the multiplier, so it is found by bisection, on a log scale (distortions per MAC
    span orders of magnitude); where no multiplier saves enough, every group is pruned as far as
    it was measured."""
    ratios = [o.distortion / o.macs_saved for c in options.values() for o in c if o.macs_saved > 0]
    high = 2.0 * max([*ratios, 1e-12])
    best = _choose(options, high)
    for _ in range(LAGRANGE_STEPS):  # a trade between two options can cost more per MAC than either
        if sum(o.macs_saved for o in best.values()) >= goal:
            break
        high *= 4.0
        best = _choose(options, high)
    else:
        return _most_saving(options)
    low = high * 1e-12
    for _ in range(LAGRANGE_STEPS):
        middle = math.sqrt(low * high)
        choice = _choose(options, middle)
        if sum(o.macs_saved for o in choice.values()) >= goal:
            high, best = middle, choice
        else:
            low = middle
    return best


def _most_saving(options: Mapping[str, list[GroupOption]]) -> dict[str, GroupOption]:
    return {group: max(choices, key=lambda o: o.macs_saved) for group, choices in options.items()}
