"""bench/channel_widths.py: the pruned digits CNNs it times are what `prune_` makes, and every one
of them runs in each runtime it compares."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import torch
from _bench import bench_module


def _module() -> ModuleType:
    return bench_module("channel_widths")


def test_the_variants_keep_the_channel_counts_the_table_names() -> None:
    variants = _module().pruned_variants(torch.randn(2, 1, 8, 8))
    kept = {label: channels for label, (_, channels) in variants.items()}
    assert kept == {
        "unpruned": [32, 64, 128],
        "25% multiple 1": [24, 48, 96],
        "25% multiple 16": [32, 48, 96],
        "30% multiple 1": [22, 44, 89],
        "30% multiple 16": [32, 48, 96],
        "50% multiple 1": [16, 32, 64],
        "50% multiple 16": [16, 32, 64],
    }


def test_every_runtime_form_answers_like_the_eager_model(tmp_path: Path) -> None:
    bench = _module()
    example = torch.randn(4, 1, 8, 8)
    model, _ = bench.pruned_variants(example[:2])["25% multiple 16"]
    forms = bench.runtime_forms(model, example[:2], tmp_path)
    assert set(forms) == set(bench.RUNTIMES)
    with torch.no_grad():
        expected = model(example)
    assert torch.allclose(forms["onnx float"](example), expected, atol=1e-4)
    assert forms["onnx int8 static"](example).shape == expected.shape
