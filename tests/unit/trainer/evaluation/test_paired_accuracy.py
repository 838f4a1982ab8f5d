"""McNemar's exact test of two models on the same samples (evaluation/paired.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from optikube_trainer.evaluation.paired import compare_paired, correct_predictions, mcnemar_exact_p


def test_the_p_value_is_the_two_sided_binomial_tail_of_the_discordant_samples() -> None:
    # 1 vs 7 of 8 discordant: 2 * (C(8,0) + C(8,1)) / 2**8 = 18 / 256
    assert mcnemar_exact_p(1, 7) == pytest.approx(18 / 256)
    assert mcnemar_exact_p(7, 1) == pytest.approx(18 / 256)
    assert mcnemar_exact_p(0, 0) == 1.0
    assert mcnemar_exact_p(5, 5) == 1.0  # capped: an even split is no evidence either way
    assert mcnemar_exact_p(0, 20) < 1e-5


def test_only_the_samples_where_exactly_one_model_is_right_count() -> None:
    first = torch.tensor([True] * 90 + [True] * 2 + [False] * 6 + [False] * 2)
    second = torch.tensor([True] * 90 + [False] * 2 + [True] * 6 + [False] * 2)
    paired = compare_paired(first, second)
    assert (paired.samples, paired.only_first, paired.only_second) == (100, 2, 6)
    assert paired.difference_points == pytest.approx(-4.0)
    assert paired.p_value == pytest.approx(mcnemar_exact_p(2, 6))
    assert not paired.significant()
    lopsided = compare_paired(torch.tensor([False] * 12 + [True] * 88), torch.ones(100, dtype=torch.bool))
    assert lopsided.significant() and lopsided.difference_points == pytest.approx(-12.0)
    assert lopsided.to_contract("optimized", "baseline") == {
        "samples": 100,
        "onlyOptimizedRight": 0,
        "onlyBaselineRight": 12,
        "differencePoints": -12.0,
        "pValue": round(2 / 2**12, 4),
    }


def test_different_samples_cannot_be_compared() -> None:
    with pytest.raises(ValueError, match="same samples"):
        compare_paired(torch.ones(3, dtype=torch.bool), torch.ones(4, dtype=torch.bool))


def test_correct_predictions_follow_the_order_of_the_batches() -> None:
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))  # predicts the larger input
    inputs = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    batches = [(inputs[:2], torch.tensor([0, 0])), (inputs[2:], torch.tensor([0]))]
    assert correct_predictions(model, batches).tolist() == [True, False, True]
