from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _tiny import cnn, mlp
from torch import nn

from optikube_operator.reports.pipeline_html import render_report
from optikube_trainer.compression import WeightSharingConfig, share_weights_
from optikube_trainer.evaluation import measure_latency, measure_model
from optikube_trainer.export import example_input, export_model, load_exported
from optikube_trainer.quantization import QuantizationConfig, quantize


def _dynamic(model: nn.Module) -> nn.Module:
    return quantize(model, QuantizationConfig(method="dynamic"), example_inputs=torch.randn(4, 16))[0]


def _static(model: nn.Module) -> nn.Module:
    x = torch.randn(8, 16)
    return quantize(model, QuantizationConfig(method="static"), example_inputs=x, calibration=lambda: [x])[0]


@pytest.mark.parametrize(
    ("build", "form"),
    [
        (lambda: mlp().eval(), "pickledModule"),
        (lambda: _dynamic(mlp().eval()), "stateDict"),
        (lambda: _static(mlp().eval()), "exportedProgram"),
        (
            lambda: (lambda m: (share_weights_(m, WeightSharingConfig(clusters=8)), m)[1])(mlp().eval()),
            "pickledModule",
        ),
    ],
    ids=["float", "int8-dynamic", "int8-static", "weight-shared"],
)
def test_exported_model_loads_and_matches(tmp_path: Path, build: object, form: str) -> None:
    model = build()  # type: ignore[operator]
    inputs = torch.randn(5, 16)
    artifact = export_model(model, tmp_path / "model", example_inputs=inputs, description={"stages": []})
    assert artifact.format == form
    assert sum(path.stat().st_size for path in artifact.files) == artifact.size_bytes
    loaded = load_exported(tmp_path / "model")
    torch.testing.assert_close(loaded(inputs), model(inputs))
    assert type(loaded(inputs)) is torch.Tensor
    assert loaded(example_input(tmp_path / "model", batch=1)).shape == (1, 4)
    assert json.loads((tmp_path / "model" / "manifest.json").read_text())["inputShape"] == [16]


def test_int8_artifact_is_smaller_than_the_float_one(tmp_path: Path) -> None:
    model = mlp(width=256).eval()
    inputs = torch.randn(5, 16)
    float_size = export_model(model, tmp_path / "f", example_inputs=inputs, description={}).size_bytes
    quantized = _dynamic(model)
    int8_size = export_model(quantized, tmp_path / "q", example_inputs=inputs, description={}).size_bytes
    assert int8_size * 3.3 < float_size


def test_load_exported_rejects_a_folder_without_manifest(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"manifest\.json"):
        load_exported(tmp_path)


def test_latency_has_percentiles_for_both_batches() -> None:
    latency = measure_latency(cnn().eval(), torch.randn(4, 1, 4, 4), runs=5, warmup=1)
    assert set(latency) == {"batch1P50", "batch1P90", "batch32P50", "batch32P90"}
    assert 0 < latency["batch1P50"] <= latency["batch1P90"]


def test_report_embeds_plots_and_tables() -> None:
    model = mlp().eval()
    m = measure_model(
        model,
        metrics={"accuracy": 0.9, "f1": 0.88},
        size_bytes=1000,
        sample_inputs=torch.randn(4, 16),
        latency_runs=3,
    )
    entry = m.to_contract()
    assert entry["macs"] and entry["parameters"] == sum(p.numel() for p in model.parameters())
    results = {
        "baseline": entry,
        "optimized": {**entry, "sizeBytes": 250},
        "stages": [
            {
                "name": "pruning",
                "durationSeconds": 1.0,
                "changes": {"parametersBefore": 40, "parametersAfter": 10, "validationAccuracyAfter": 0.85},
                "budget": {"outcome": "accepted", "attempts": [{"validation": 0.85, "drop": 5.0}]},
            }
        ],
        "curves": {
            "train": {"loss": [1.0, 0.5], "accuracy": [0.5, 0.8]},
            "validation": {"loss": [1.1, 0.6], "accuracy": [0.4, 0.7]},
        },
        "diagnosis": {"fit": "good", "gap": 0.1, "trend": "falling"},
    }
    page = render_report(results, title="t")
    assert page.count("data:image/png;base64,") == 2
    assert "The model fits well: train and validation accuracy are 0.1 apart; falling." in page
    assert "parameters 40 to 10 (-75%); validation accuracy after it 0.85" in page
    assert "accepted; 5 points lost on validation" in page and "4x smaller on disk" in page
    assert "{" not in page[page.index("<body>") :].split("<img")[0]  # sentences, not JSON
