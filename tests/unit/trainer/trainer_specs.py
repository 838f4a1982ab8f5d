"""Specs of the in-process pipeline checks: a small MLP on digits, trained in seconds."""

from __future__ import annotations

from typing import Any


def digits_mlp_spec(*, seed: int, epochs: int, **blocks: Any) -> dict[str, Any]:
    """A spec that trains a two-layer MLP of width 64 on digits (a fifth of it validates, a fifth
    tests) for accuracy, with ``blocks`` (compression, quantization, export, ...) added."""
    return {
        "seed": seed,
        "data": {"source": {"builtin": "digits"}, "validationSplit": 0.2, "testSplit": 0.2},
        "model": {"builtin": {"name": "mlp"}, "params": {"width": 64, "depth": 2}},
        "objectives": [{"metric": "accuracy", "direction": "maximize"}],
        "training": {"epochs": epochs, "batchSize": 64, "learningRate": 0.01},
        **blocks,
    }
