from __future__ import annotations

import pytest
import torch
from _tiny import accuracy, cnn, mlp, train
from torch import nn

from optikube_operator.api.compression import Pruning
from optikube_trainer.compression import PruningConfig, make_pruning_permanent_, prune_, weight_sparsity
from optikube_trainer.compression.pruning_allocation import kept_channels
from optikube_trainer.models.builtin import TextTransformer


def test_structured_pruning_removes_neurons_and_macs(blobs: tuple[torch.Tensor, torch.Tensor]) -> None:
    inputs, labels = blobs
    model = train(mlp(), inputs, labels, epochs=5)
    config = PruningConfig(method="structured", sparsity=0.5, allocation="uniform")
    summary = prune_(model, config, inputs[:1])
    assert model[0].out_features == 32 and model[2].out_features == 32
    assert model[4].out_features == 4  # the output layer keeps the task's width
    assert summary.parameters_after <= 0.6 * summary.parameters_before
    assert summary.macs_after <= 0.6 * summary.macs_before
    assert model(inputs[:3]).shape == (3, 4)


def test_structured_pruning_of_a_cnn_shrinks_conv_channels() -> None:
    model = cnn()
    example = torch.randn(2, 1, 4, 4)
    config = PruningConfig(method="structured", sparsity=0.5, channel_multiple=8, allocation="uniform")
    summary = prune_(model, config, example)
    assert model[0].out_channels == 8 and model[1].num_features == 8 and model[3].in_channels == 8
    assert summary.macs_after < 0.6 * summary.macs_before
    assert model(example).shape == (2, 4)


def _digits_cnn() -> nn.Sequential:
    """The channel widths of bench/trainer.py's digits CNN: 32 and 64 channels, a 128-wide head."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


@pytest.mark.parametrize(
    ("sparsity", "multiple", "channels"),
    [
        (0.25, 1, {"0": (32, 24), "4": (64, 48), "9": (128, 96)}),  # exactly the sparsity
        (0.25, 16, {"0": (32, 32), "4": (64, 48), "9": (128, 96)}),  # 24 rounds up to all 32
        (0.3, 16, {"0": (32, 32), "4": (64, 48), "9": (128, 96)}),  # 22, 44, 89 round up
        (0.5, 16, {"0": (32, 16), "4": (64, 32), "9": (128, 64)}),  # already multiples
        (0.9, 16, {"0": (32, 16), "4": (64, 16), "9": (128, 16)}),  # never below one multiple
    ],
)
def test_structured_pruning_keeps_channel_counts_that_are_multiples_of_channel_multiple(
    sparsity: float, multiple: int, channels: dict[str, tuple[int, int]]
) -> None:
    model = _digits_cnn()
    example = torch.randn(2, 1, 8, 8)
    config = PruningConfig(sparsity=sparsity, channel_multiple=multiple, allocation="uniform")
    summary = prune_(model, config, example)
    assert summary.layer_channels == channels
    assert summary.changes()["layerChannels"] == channels
    assert summary.changes()["channelMultiple"] == multiple
    widths = {"0": model[0].out_channels, "4": model[4].out_channels, "9": model[9].out_features}
    assert widths == {name: after for name, (_, after) in channels.items()}
    assert model[1].num_features == widths["0"] and model[4].in_channels == widths["0"]
    assert model(example).shape == (2, 10)


def test_structured_pruning_of_a_transformer_shrinks_the_feed_forward_layers_and_keeps_the_width() -> None:
    # with a ratio per layer, torch-pruning would also prune the residual stream (the width every
    # attention projection reads) that its own per-layer default leaves whole
    torch.manual_seed(0)
    model = TextTransformer(vocab_size=50, max_length=8, num_classes=4, width=64, depth=2, heads=4)
    tokens = torch.randint(1, 50, (2, 8))
    summary = prune_(model, PruningConfig(sparsity=0.3, allocation="uniform"), tokens)
    attention = [m for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
    assert [(m.embed_dim, m.num_heads, m.head_dim) for m in attention] == [(64, 4, 16), (64, 4, 16)]
    assert summary.layer_channels == {
        "encoder.layers.0.linear1": (128, 96),
        "encoder.layers.1.linear1": (128, 96),
    }
    assert [layer.linear2.in_features for layer in model.encoder.layers] == [96, 96]  # type: ignore[union-attr]
    assert summary.macs_after < 0.9 * summary.macs_before
    assert model(tokens).shape == (2, 4)


@pytest.mark.parametrize("multiple", [1, 8, 16, 32])
@pytest.mark.parametrize("width", [8, 16, 24, 50, 64, 100, 512])
@pytest.mark.parametrize("sparsity", [0.1, 0.25, 0.5, 0.75, 0.95])
def test_kept_channels_are_a_multiple_and_never_fewer_than_the_sparsity_asks(
    multiple: int, width: int, sparsity: float
) -> None:
    kept = kept_channels(width, sparsity, multiple)
    assert kept == width or kept % multiple == 0
    assert int(width * (1 - sparsity)) <= kept <= width
    assert kept - int(width * (1 - sparsity)) < multiple or kept == multiple


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
    with pytest.raises(ValueError, match="channelMultiple"):
        PruningConfig(channel_multiple=0)
    with pytest.raises(ValueError, match=r"channelMultiple.*global"):
        PruningConfig(scope="global")
    assert PruningConfig(scope="global", channel_multiple=1).scope == "global"
    assert PruningConfig.from_spec(Pruning(channel_multiple=8)).channel_multiple == 8
    assert PruningConfig.from_spec(Pruning(sparsity=0.3, fine_tune_epochs=4)).fine_tune_epochs == 4


def test_output_layer_detection_ignores_hidden_layers_of_equal_width() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4))
    from optikube_trainer.compression.pruning import output_layers

    assert output_layers(model, torch.randn(1, 4)) == [model[2]]
