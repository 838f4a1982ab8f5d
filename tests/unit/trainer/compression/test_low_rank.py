from __future__ import annotations

import pytest
import torch
from _tiny import accuracy, cnn, mlp, train
from torch import nn

from optikube_operator.api.compression import LowRank
from optikube_trainer.compression import LowRankConfig, factorize_low_rank_
from optikube_trainer.compression.low_rank import LowRankLinear, choose_rank


def test_linear_factorization_matches_predicted_parameters(blobs: tuple[torch.Tensor, torch.Tensor]) -> None:
    inputs, labels = blobs
    model = train(mlp(width=64), inputs, labels, epochs=5)
    before = accuracy(model, inputs, labels)
    summary = factorize_low_rank_(model, LowRankConfig(rank_ratio=0.25), ignored_layers=[model[4]])
    assert summary.skipped == {"4": "ignored"}
    middle = summary.layers["2"]
    assert middle.rank == 16
    assert middle.parameters_after == 16 * (64 + 64) + 64  # rank * (in + out) + bias
    assert isinstance(model[2], LowRankLinear) and model[2].first.out_features == 16
    assert model[2].weight.shape == (64, 64)  # still reads like the Linear it replaced
    # the 16x64 input layer has full rank 16: rank 4 of (16 + 64) saves parameters and is factored
    assert summary.layers["0"].rank == 4
    assert summary.changes()["factorizedParametersAfter"] < summary.changes()["factorizedParametersBefore"]
    assert accuracy(model, inputs, labels) > before - 0.1


def test_full_rank_keeps_the_function_and_skips_layers_that_would_grow() -> None:
    model = mlp(width=64)
    x = torch.randn(8, 16)
    reference = model(x)
    summary = factorize_low_rank_(model, LowRankConfig(rank_ratio=1.0))
    assert summary.layers == {}  # a full-rank factorization never saves parameters
    assert set(summary.skipped) == {"0", "2", "4"}
    torch.testing.assert_close(model(x), reference)


def test_energy_rank_choice() -> None:
    singular = torch.tensor([10.0, 1.0, 0.1, 0.01])
    assert choose_rank(singular, LowRankConfig(rank_ratio=None, energy=0.98)) == 1
    assert choose_rank(singular, LowRankConfig(rank_ratio=None, energy=0.99999)) == 3


def test_low_rank_matrix_is_reconstructed_exactly_at_its_rank() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(64, 64, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(64, 4) @ torch.randn(4, 64))
    model = nn.Sequential(layer)
    x = torch.randn(5, 64)
    reference = model(x)
    summary = factorize_low_rank_(model, LowRankConfig(rank_ratio=None, energy=0.999999))
    assert summary.layers["0"].rank == 4
    torch.testing.assert_close(model(x), reference, atol=1e-4, rtol=1e-4)


def test_conv_factorization() -> None:
    model = cnn(channels=16)
    x = torch.randn(2, 1, 4, 4)
    summary = factorize_low_rank_(model, LowRankConfig(rank_ratio=0.25))
    assert "3" in summary.layers  # 32x16x3x3 conv, full rank 32 -> rank 8
    assert summary.layers["3"].rank == 8
    assert summary.layers["3"].parameters_after == 8 * (16 * 9 + 32) + 32
    assert model(x).shape == (2, 4)


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="energy"):
        LowRankConfig(rank_ratio=None, energy=1.5)
    assert LowRankConfig.from_spec(LowRank(energy=0.9)).rank_ratio is None
    assert LowRankConfig.from_spec(LowRank()).rank_ratio == 0.5  # the API's default when neither is set


def test_a_factorization_that_saves_little_is_not_made() -> None:
    # rank 28 of a 64x64 layer keeps 28 * 128 = 3584 of 4096 weights: 12.5 % saved, under 25 %
    model = nn.Sequential(nn.Linear(64, 64))
    x = torch.randn(4, 64)
    reference = model(x)
    summary = factorize_low_rank_(model, LowRankConfig(rank_ratio=28 / 64))
    assert summary.layers == {}
    assert "12.5 %" in summary.skipped["0"] and "under the 25 %" in summary.skipped["0"]
    torch.testing.assert_close(model(x), reference)
    # rank 24 keeps 3072 of 4096: 25 % saved, factorized
    assert factorize_low_rank_(nn.Sequential(nn.Linear(64, 64)), LowRankConfig(rank_ratio=24 / 64)).layers
