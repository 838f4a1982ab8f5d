"""Structured pruning's sensitivity allocation (`compression.pruning.allocation`): the layers whose
channels change the outputs least per MAC lose the most, which keeps more of the model than the
same sparsity spread uniformly, for no more MACs."""

from __future__ import annotations

import copy

import torch
from _tiny import accuracy, make_blobs, train
from torch import nn

from optikube_trainer.compression import PruningConfig, prune_
from optikube_trainer.models.builtin import TextTransformer


def _padded_mlp(inputs: torch.Tensor, labels: torch.Tensor) -> nn.Sequential:
    """A trained 16 -> 32 -> 32 -> 4 MLP whose first hidden layer was then widened to 128 with 96
    neurons of near-zero weights: its real width is 32, the second layer's is all of its 32."""
    torch.manual_seed(0)
    small = train(
        nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4)),
        inputs,
        labels,
        epochs=20,
    )
    wide = nn.Sequential(nn.Linear(16, 128), nn.ReLU(), nn.Linear(128, 32), nn.ReLU(), nn.Linear(32, 4))
    with torch.no_grad():
        for layer in wide:
            if isinstance(layer, nn.Linear):
                layer.weight.normal_(std=1e-3)
                layer.bias.zero_()
        wide[0].weight[:32], wide[0].bias[:32] = small[0].weight, small[0].bias
        wide[2].weight[:, :32], wide[2].bias[:] = small[2].weight, small[2].bias
        wide[4].load_state_dict(small[4].state_dict())
    return wide.eval()


def test_sensitivity_prunes_the_redundant_layer_more_and_keeps_more_accuracy_for_fewer_macs() -> None:
    inputs, labels = make_blobs(samples=1024, classes=4, seed=3)
    model = _padded_mlp(inputs, labels)
    before = accuracy(model, inputs, labels)
    results = {}
    for allocation in ("uniform", "sensitivity"):
        pruned = copy.deepcopy(model)
        config = PruningConfig(sparsity=0.5, channel_multiple=8, allocation=allocation)  # type: ignore[arg-type]
        summary = prune_(pruned, config, inputs[:2], calibration=inputs[:256])
        results[allocation] = (summary, accuracy(pruned, inputs, labels))
    (uniform, uniform_accuracy), (sensitive, sensitive_accuracy) = results["uniform"], results["sensitivity"]
    assert uniform.layer_channels == {"0": (128, 64), "2": (32, 16)}
    # the padded layer gives up its near-zero neurons; the second layer keeps most of its own
    kept = {name: after for name, (_, after) in sensitive.layer_channels.items()}
    assert kept["0"] <= 64 and kept["2"] > 16
    assert sensitive.macs_after <= uniform.macs_after
    # without fine-tuning: uniform lost capacity the model used, the sensitivity allocation did not
    assert sensitive_accuracy >= before - 0.01
    assert sensitive_accuracy >= uniform_accuracy + 0.03
    recorded = sensitive.changes()
    assert recorded["allocation"] == "sensitivity"
    assert recorded["layerTargetSparsity"]["0"] > recorded["layerTargetSparsity"]["2"]
    sensitivity = recorded["sensitivity"]
    assert sensitivity["distortion"] < sensitivity["uniformDistortion"]
    assert sensitivity["macsSavedEstimate"] >= sensitivity["uniformMacsSavedEstimate"]
    assert sensitivity["calibrationSamples"] == 64
    assert uniform.changes()["allocation"] == "uniform" and "sensitivity" not in uniform.changes()


def test_sensitivity_allocation_of_a_transformer_keeps_its_width() -> None:
    torch.manual_seed(0)
    model = TextTransformer(vocab_size=50, max_length=8, num_classes=4, width=64, depth=2, heads=4)
    tokens = torch.randint(1, 50, (64, 8))
    summary = prune_(model, PruningConfig(sparsity=0.5), tokens[:2], calibration=tokens)
    attention = [m for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
    assert [(m.embed_dim, m.num_heads) for m in attention] == [(64, 4), (64, 4)]
    assert set(summary.layer_channels) == {"encoder.layers.0.linear1", "encoder.layers.1.linear1"}
    assert summary.macs_after < summary.macs_before
    assert model(tokens[:3]).shape == (3, 4)
