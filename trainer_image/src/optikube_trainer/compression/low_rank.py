"""Low-rank factorization: each Linear (and Conv2d) weight W is replaced by the product of two
thinner layers from its truncated SVD, only where that really saves parameters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from optikube_operator.api.compression import FineTuneLoss, LowRank
from optikube_trainer.spec_fields import SpecConfig, spec_default


@dataclass(frozen=True)
class LowRankConfig(SpecConfig, block=LowRank, path="compression.lowRank"):
    """`compression.lowRank`: keep `rank_ratio` of each layer's full rank, or the smallest rank
    holding `energy` of the squared singular values (one of the two; the API's rank ratio when
    neither is set). `include_conv`, not in the spec, leaves convolutions alone when False."""

    rank_ratio: float | None = spec_default(LowRank, "rank_ratio")
    energy: float | None = spec_default(LowRank, "energy")
    fine_tune_epochs: int = spec_default(LowRank, "fine_tune_epochs")
    fine_tune_loss: FineTuneLoss = spec_default(LowRank, "fine_tune_loss")
    include_conv: bool = True


@dataclass
class FactorizedLayer:
    rank: int
    full_rank: int
    parameters_before: int
    parameters_after: int
    energy_kept: float


@dataclass
class LowRankSummary:
    layers: dict[str, FactorizedLayer] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def changes(self) -> dict[str, Any]:
        before = sum(layer.parameters_before for layer in self.layers.values())
        after = sum(layer.parameters_after for layer in self.layers.values())
        return {
            "factorizedLayers": len(self.layers),
            "factorizedParametersBefore": before,
            "factorizedParametersAfter": after,
            "ranks": {name: layer.rank for name, layer in self.layers.items()},
            "skipped": self.skipped,
        }


def choose_rank(singular_values: Tensor, config: LowRankConfig) -> int:
    full = singular_values.numel()
    if config.energy is not None:
        cumulative = torch.cumsum(singular_values.double() ** 2, 0)
        share = cumulative / cumulative[-1].clamp_min(1e-30)
        return int(torch.searchsorted(share, torch.tensor(config.energy, dtype=share.dtype)).item()) + 1
    assert config.rank_ratio is not None
    return max(1, round(full * config.rank_ratio))


def _factor(matrix: Tensor, config: LowRankConfig) -> tuple[Tensor, Tensor, int, float]:
    """Return (left, right, rank, energy kept) with left @ right ~= matrix."""
    u, s, vh = torch.linalg.svd(matrix.detach().double(), full_matrices=False)
    rank = min(choose_rank(s, config), s.numel())
    root = torch.sqrt(s[:rank])
    left = (u[:, :rank] * root).float()
    right = (root[:, None] * vh[:rank]).float()
    energy = float((s[:rank] ** 2).sum() / (s**2).sum().clamp_min(1e-30))
    return left, right, rank, energy


# A factorized layer is two calls where there was one; a layer is factorized only where that saves
# at least this share of its weights. Measured on the digits CNN in ONNX Runtime: a conv whose
# factorization saved 0.7 % of its weights made the model 16 % slower at batch 32.
MIN_SAVING = 0.25


def _too_little_saved(rank: int, before: int, after: int) -> str | None:
    """Why a factorization is not worth it, or None when it is."""
    if after >= before:
        return f"rank {rank} would not save parameters ({after} >= {before})"
    if after > (1.0 - MIN_SAVING) * before:
        saved = 100.0 * (before - after) / before
        return (
            f"rank {rank} would save {saved:.1f} % of the parameters ({after} of {before}),"
            f" under the {100 * MIN_SAVING:.0f} % that pays for the second layer's call"
        )
    return None


def _dense(weight: Tensor) -> Tensor:
    # quantized factors (tensor subclasses) cannot be multiplied together: use their float values
    if type(weight) not in (Tensor, nn.Parameter) and hasattr(weight, "dequantize"):
        return weight.dequantize()
    return weight


class LowRankLinear(nn.Module):
    """y = second(first(x)): a rank-r factorization of a Linear layer. It still answers `weight`
    and `bias` (the product) for code that reads a Linear's parameters directly, such as
    TransformerEncoderLayer's fast-path checks."""

    def __init__(self, first: nn.Linear, second: nn.Linear) -> None:
        super().__init__()
        self.first, self.second = first, second
        self.in_features, self.out_features = first.in_features, second.out_features

    @property
    def weight(self) -> Tensor:
        return _dense(self.second.weight) @ _dense(self.first.weight)

    @property
    def bias(self) -> Tensor | None:
        return self.second.bias

    def forward(self, inputs: Tensor) -> Tensor:
        return self.second(self.first(inputs))


def _factor_linear(layer: nn.Linear, config: LowRankConfig) -> tuple[nn.Module, FactorizedLayer] | str:
    out_f, in_f = layer.weight.shape
    left, right, rank, energy = _factor(layer.weight, config)
    before = out_f * in_f
    after = rank * (in_f + out_f)
    too_little = _too_little_saved(rank, before, after)
    if too_little:
        return too_little
    first = nn.Linear(in_f, rank, bias=False)
    second = nn.Linear(rank, out_f, bias=layer.bias is not None)
    with torch.no_grad():
        first.weight.copy_(right)
        second.weight.copy_(left)
        if layer.bias is not None:
            second.bias.copy_(layer.bias)
    bias = out_f if layer.bias is not None else 0
    info = FactorizedLayer(rank, min(out_f, in_f), before + bias, after + bias, energy)
    return LowRankLinear(first, second), info


def _factor_conv(layer: nn.Conv2d, config: LowRankConfig) -> tuple[nn.Module, FactorizedLayer] | str:
    if layer.groups != 1:
        return "grouped convolution"
    out_c, in_c, kh, kw = layer.weight.shape
    left, right, rank, energy = _factor(layer.weight.reshape(out_c, in_c * kh * kw), config)
    before = out_c * in_c * kh * kw
    after = rank * (in_c * kh * kw + out_c)
    too_little = _too_little_saved(rank, before, after)
    if too_little:
        return too_little
    # A kxk conv into `rank` channels, then a 1x1 conv back out: the spatial filter bank is shared.
    first = nn.Conv2d(
        in_c,
        rank,
        (kh, kw),
        stride=(layer.stride[0], layer.stride[1]),
        padding=layer.padding,  # type: ignore[arg-type]
        dilation=(layer.dilation[0], layer.dilation[1]),
        bias=False,
        padding_mode=layer.padding_mode,
    )
    second = nn.Conv2d(rank, out_c, 1, bias=layer.bias is not None)
    with torch.no_grad():
        first.weight.copy_(right.reshape(rank, in_c, kh, kw))
        second.weight.copy_(left.reshape(out_c, rank, 1, 1))
        if layer.bias is not None and second.bias is not None:
            second.bias.copy_(layer.bias)
    bias = out_c if layer.bias is not None else 0
    info = FactorizedLayer(rank, min(out_c, in_c * kh * kw), before + bias, after + bias, energy)
    return nn.Sequential(first, second), info


def factorize_low_rank_(
    model: nn.Module, config: LowRankConfig, *, ignored_layers: Sequence[nn.Module] = ()
) -> LowRankSummary:
    """Replace eligible layers of `model` in place by their truncated-SVD factorization
    (`ignored_layers`, typically the output layer, stay as they are)."""
    summary = LowRankSummary()
    ignored = {id(layer) for layer in ignored_layers}
    replacements: list[tuple[nn.Module, str, nn.Module]] = []
    for parent_name, parent in model.named_modules():
        for child_name, child in parent.named_children():
            full_name = f"{parent_name}.{child_name}" if parent_name else child_name
            if isinstance(parent, nn.MultiheadAttention):
                continue  # attention calls out_proj's weight directly, not the module
            result: tuple[nn.Module, FactorizedLayer] | str
            if id(child) in ignored:
                summary.skipped[full_name] = "ignored"
                continue
            if type(child) is nn.Linear:
                result = _factor_linear(child, config)
            elif type(child) is nn.Conv2d and config.include_conv:
                result = _factor_conv(child, config)
            else:
                continue
            if isinstance(result, str):
                summary.skipped[full_name] = result
                continue
            replacement, info = result
            replacements.append((parent, child_name, replacement))
            summary.layers[full_name] = info
    for parent, child_name, replacement in replacements:
        setattr(parent, child_name, replacement)
    return summary
