from __future__ import annotations

import io

import pytest
import torch
from _tiny import accuracy, cnn, mlp, train
from torch import nn

from optikube_trainer.evaluation.size import weight_bytes
from optikube_trainer.quantization import QuantizationConfig, quantize


def _saved_bytes(model: nn.Module) -> int:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


@pytest.mark.parametrize("method", ["dynamic", "weightOnly"])
def test_torchao_int8_stores_int8_weights_and_keeps_accuracy(
    blobs: tuple[torch.Tensor, torch.Tensor], method: str
) -> None:
    inputs, labels = blobs
    model = train(mlp(width=128), inputs, labels, epochs=5)
    before_acc = accuracy(model, inputs, labels)
    before_bytes, before_weights = _saved_bytes(model), weight_bytes(model)
    quantized, summary = quantize(model, QuantizationConfig(method=method), example_inputs=inputs[:2])  # type: ignore[arg-type]
    assert summary.quantized_layers == 3
    assert before_weights / weight_bytes(quantized) >= 3.5
    assert _saved_bytes(quantized) < before_bytes / 2.5
    assert accuracy(quantized, inputs, labels) >= before_acc - 0.02


def _images(samples: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 4, (samples,), generator=generator)
    images = torch.randn(samples, 1, 4, 4, generator=generator) * 0.3
    images[torch.arange(samples), 0, labels, labels] += 2.0  # class = position of a bright pixel
    return images, labels


def test_static_int8_of_a_cnn_with_calibration() -> None:
    images, labels = _images()
    model = train(cnn(), images, labels, epochs=5)
    before_acc, before_weights = accuracy(model, images, labels), weight_bytes(model)
    quantized, summary = quantize(
        model,
        QuantizationConfig(method="static"),
        example_inputs=images[:4],
        calibration=lambda: (images[i : i + 32] for i in range(0, 128, 32)),
    )
    assert summary.quantized_layers == 3
    assert not any(p.dtype == torch.float32 and p.dim() > 1 for p in quantized.parameters())
    assert before_weights / weight_bytes(quantized) > 2.5  # tiny layers: per-channel scales weigh in
    assert quantized(images[:1]).shape == (1, 4)  # batch sizes other than the example's work
    assert accuracy(quantized, images, labels) >= before_acc - 0.03


@pytest.mark.parametrize(
    "backend",
    [pytest.param("pt2e", marks=pytest.mark.slow), "torchao"],  # pt2e QAT tracing costs ~30 s
)
def test_qat_trains_with_fake_quant_then_converts_to_int8(backend: str) -> None:
    images, labels = _images()
    model = train(cnn(), images, labels, epochs=3) if backend == "pt2e" else None
    if model is None:
        flat = images.flatten(1)
        model = train(mlp(features=16), flat, labels, epochs=3)
        images = flat
    config = QuantizationConfig(method="qat", qat_epochs=1, qat_backend=backend)  # type: ignore[arg-type]
    quantized, summary = quantize(
        model, config, example_inputs=images[:4], train=lambda m: train(m, images, labels, epochs=2)
    )
    assert summary.backend == backend and summary.quantized_layers == 3
    assert summary.weight_bytes_after < summary.weight_bytes_before / 2.5
    assert accuracy(quantized, images, labels) > 0.9
