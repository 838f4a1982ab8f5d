"""Whether two models' accuracies on the same samples really differ: McNemar's exact test.

On a test split of a few hundred samples one sample is 0.2 to 0.4 accuracy points, so "0.9 points
lower" can be four samples. Both models answer the same samples; only the samples where exactly
one of them is right (the discordant ones) say which is better, and under "equally accurate" each
discordant sample is a fair coin. The exact two-sided binomial test on them is McNemar's test.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn


@torch.inference_mode()
def correct_predictions(model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]]) -> Tensor:
    """One bool per sample, in the order of `batches`: whether the model's top class is the target."""
    model.eval()
    hits = [model(inputs).argmax(dim=1) == targets for inputs, targets in batches]
    return torch.cat(hits) if hits else torch.zeros(0, dtype=torch.bool)


@dataclass(frozen=True)
class PairedComparison:
    """`first` against `second` on the same samples."""

    samples: int
    only_first: int  # samples only the first model gets right
    only_second: int
    p_value: float  # exact two-sided McNemar: how likely a split this uneven is if both are equal

    @property
    def difference_points(self) -> float:
        """First minus second, in accuracy points."""
        return 100.0 * (self.only_first - self.only_second) / self.samples if self.samples else 0.0

    def significant(self, level: float = 0.05) -> bool:
        return self.p_value < level

    def to_contract(self, first: str = "first", second: str = "second") -> dict[str, Any]:
        """As results.json and the benchmarks record it, the two models named (camel case)."""
        return {
            "samples": self.samples,
            f"only{first[0].upper()}{first[1:]}Right": self.only_first,
            f"only{second[0].upper()}{second[1:]}Right": self.only_second,
            "differencePoints": round(self.difference_points, 4) + 0.0,
            "pValue": round(self.p_value, 4),
        }


def mcnemar_exact_p(only_first: int, only_second: int) -> float:
    """Two-sided exact p-value of `only_first` against `only_second` discordant samples."""
    discordant = only_first + only_second
    if discordant == 0:
        return 1.0
    tail = sum(math.comb(discordant, k) for k in range(min(only_first, only_second) + 1))
    return min(1.0, 2.0 * tail / 2.0**discordant)


def compare_paired(first_correct: Tensor, second_correct: Tensor) -> PairedComparison:
    """McNemar's exact test of two models' per-sample correctness (from `correct_predictions`)."""
    if first_correct.shape != second_correct.shape:
        raise ValueError(
            f"paired comparison needs the same samples: {tuple(first_correct.shape)}"
            f" vs {tuple(second_correct.shape)}"
        )
    only_first = int((first_correct & ~second_correct).sum())
    only_second = int((second_correct & ~first_correct).sum())
    return PairedComparison(
        samples=int(first_correct.numel()),
        only_first=only_first,
        only_second=only_second,
        p_value=mcnemar_exact_p(only_first, only_second),
    )
