"""Each technique's measured effect on an MLP trained on digits under 2-process DDP."""

from __future__ import annotations

from typing import Any

import pytest
from _torchrun import measure_techniques

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return measure_techniques("linear", tmp_path_factory.mktemp("linear"))


def test_baseline_learns_digits(measured: dict[str, Any]) -> None:
    assert measured["baseline"]["accuracy"] >= 0.95


@pytest.mark.parametrize("method", ["dynamic", "weightOnly"])
def test_int8_ptq_weights_3_5x_smaller_within_2_points(measured: dict[str, Any], method: str) -> None:
    base, quantized = measured["baseline"], measured[method]
    assert base["weightBytes"] / quantized["weightBytes"] >= 3.5
    assert base["stateDictBytes"] / quantized["stateDictBytes"] >= 3.4  # the saved file, scales included
    assert quantized["artifactBytes"] < base["artifactBytes"]
    assert quantized["accuracy"] >= base["accuracy"] - 0.02


def test_structured_pruning_halves_macs_and_recovers(measured: dict[str, Any]) -> None:
    pruned, base = measured["structured"], measured["baseline"]
    assert pruned["parametersAfter"] <= 0.6 * pruned["parametersBefore"]
    assert pruned["macsAfter"] <= 0.6 * pruned["macsBefore"]
    assert pruned["accuracy"] >= base["accuracy"] - 0.02
    assert pruned["accuracy"] > pruned["beforeFineTune"]  # fine-tuning did the recovering


def test_low_rank_cuts_factorized_layers_as_the_rank_predicts(measured: dict[str, Any]) -> None:
    layers = measured["lowRank"]["layers"]
    assert layers
    for name, layer in layers.items():
        out_features, in_features = measured["lowRank"]["shapes"][name]
        predicted = layer["rank"] * (in_features + out_features) + out_features
        assert layer["rank"] == round(min(out_features, in_features) * 0.25)
        assert layer["measured"] == layer["parametersAfter"] == predicted
        assert predicted < out_features * in_features
    assert measured["lowRank"]["accuracy"] >= measured["baseline"]["accuracy"] - 0.03


def test_weight_sharing_leaves_k_values_and_shrinks_the_file(measured: dict[str, Any]) -> None:
    shared, base = measured["weightSharing"], measured["baseline"]
    assert shared["distinct"] and max(shared["distinct"].values()) <= 16
    assert shared["stateDictBytes"] * 6 < base["stateDictBytes"]  # 4-bit indices + codebook
    assert shared["artifactBytes"] < base["artifactBytes"] / 2
    assert shared["accuracy"] >= base["accuracy"] - 0.02


def test_distilled_student_beats_itself_alone_or_nears_the_teacher(measured: dict[str, Any]) -> None:
    result, teacher = measured["distillation"], measured["baseline"]["accuracy"]
    assert result["studentParameters"] * 20 < measured["baseline"]["parameters"]
    assert result["distilled"] >= result["alone"] or result["distilled"] >= teacher - 0.01
