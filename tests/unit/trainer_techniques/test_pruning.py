from __future__ import annotations

import pytest
import torch
from _tiny import accuracy, cnn, mlp, train
from torch import nn

from optikube_operator.api.compression import Pruning
from optikube_trainer.compression import PruningConfig, make_pruning_permanent_, prune_, weight_sparsity


def test_structured_pruning_removes_neurons_and_macs(blobs: tuple[torch.Tensor, torch.Tensor]) -> None:
    inputs, labels = blobs
    model = train(mlp(), inputs, labels, epochs=5)
    summary = prune_(model, PruningConfig(method="structured", sparsity=0.5), inputs[:1])
    assert model[0].out_features == 32 and model[2].out_features == 32
    assert model[4].out_features == 4  # the output layer keeps the task's width
    assert summary.parameters_after <= 0.6 * summary.parameters_before
    assert summary.macs_after <= 0.6 * summary.macs_before
    assert model(inputs[:3]).shape == (3, 4)


def test_structured_pruning_of_a_cnn_shrinks_conv_channels() -> None:
    model = cnn()
    example = torch.randn(2, 1, 4, 4)
    summary = prune_(model, PruningConfig(method="structured", sparsity=0.5), example)
    assert model[0].out_channels == 8 and model[1].num_features == 8 and model[3].in_channels == 8
    assert summary.macs_after < 0.6 * summary.macs_before
    assert model(example).shape == (2, 4)


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_unstructured_pruning_masks_survive_training_and_become_permanent(
    blobs: tuple[torch.Tensor, torch.Tensor], scope: str
) -> None:
    inputs, labels = blobs
    model = train(mlp(), inputs, labels, epochs=3)
    summary = prune_(model, PruningConfig(method="unstructured", sparsity=0.6, scope=scope), inputs[:1])  # type: ignore[arg-type]
    assert summary.weight_sparsity == pytest.approx(0.6, abs=0.02)
    train(model, inputs, labels, epochs=2)
    assert make_pruning_permanent_(model) == 3
    assert not any(name.endswith("_mask") for name, _ in model.named_buffers())
    sparsity, per_layer = weight_sparsity(model)
    assert sparsity == pytest.approx(0.6, abs=0.02)
    if scope == "layer":
        assert all(v == pytest.approx(0.6, abs=0.02) for v in per_layer.values())
    assert accuracy(model, inputs, labels) > 0.9


def test_pruning_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="sparsity"):
        PruningConfig(sparsity=1.5)
    with pytest.raises(ValueError, match="method"):
        PruningConfig(method="random")  # type: ignore[arg-type]
    assert PruningConfig.from_spec(Pruning(sparsity=0.3, fine_tune_epochs=4)).fine_tune_epochs == 4


def test_output_layer_detection_ignores_hidden_layers_of_equal_width() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4))
    from optikube_trainer.compression.pruning import output_layers

    assert output_layers(model, torch.randn(1, 4)) == [model[2]]
