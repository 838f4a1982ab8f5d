"""Static INT8 PTQ vs QAT on a CNN trained on digits under 2-process DDP."""

from __future__ import annotations

from typing import Any

import pytest
from _torchrun import measure_techniques

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return measure_techniques("conv", tmp_path_factory.mktemp("conv"))


def test_static_int8_of_the_cnn_is_smaller_and_accurate(measured: dict[str, Any]) -> None:
    base, static = measured["baseline"], measured["static"]
    assert static["quantizedLayers"] >= 3
    assert static["weightBytesAfter"] * 3 < base["weightBytes"]
    assert static["accuracy"] >= base["accuracy"] - 0.02


def test_qat_is_at_least_as_accurate_as_static_ptq(measured: dict[str, Any]) -> None:
    assert measured["qat"]["backend"] == "pt2e"
    assert measured["qat"]["weightBytesAfter"] * 3 < measured["baseline"]["weightBytes"]
    assert measured["qat"]["accuracy"] >= measured["static"]["accuracy"] - 0.005
