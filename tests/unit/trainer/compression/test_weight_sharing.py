from __future__ import annotations

import io

import pytest
import torch
from _tiny import accuracy, cnn, mlp, train

from optikube_trainer.compression import WeightSharingConfig, share_weights_
from optikube_trainer.compression._codebook import kmeans_1d, pack_indices, unpack_indices


def _saved_bytes(model: torch.nn.Module) -> int:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


@pytest.mark.parametrize("clusters", [8, 32])
def test_weight_sharing_limits_distinct_values_and_shrinks_the_file(
    blobs: tuple[torch.Tensor, torch.Tensor], clusters: int
) -> None:
    inputs, labels = blobs
    model = train(mlp(width=128), inputs, labels, epochs=5)
    before_bytes, before_acc = _saved_bytes(model), accuracy(model, inputs, labels)
    summary = share_weights_(model, WeightSharingConfig(clusters=clusters))
    assert summary.layers and max(summary.layers.values()) <= clusters
    for layer in (model[0], model[2], model[4]):
        assert torch.unique(layer.weight).numel() <= clusters
    ratio = before_bytes / _saved_bytes(model)
    assert ratio > (4.0 if clusters <= 16 else 2.5)
    assert accuracy(model, inputs, labels) >= before_acc - 0.05
    # fine-tuning trains the codebook only; indices stay fixed so the value count holds
    train(model, inputs, labels, epochs=1)
    assert torch.unique(model[2].weight).numel() <= clusters


def test_weight_sharing_reloads_from_its_state_dict() -> None:
    model = cnn()
    share_weights_(model, WeightSharingConfig(clusters=16))
    x = torch.randn(3, 1, 4, 4)
    model.eval()
    reference = model(x)
    fresh = cnn()
    share_weights_(fresh, WeightSharingConfig(clusters=16))
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    fresh.load_state_dict(torch.load(buffer))
    fresh.eval()
    torch.testing.assert_close(fresh(x), reference)


def test_pack_roundtrip_and_kmeans() -> None:
    indices = torch.randint(0, 16, (101,))
    for bits in (4, 8, 16):
        assert torch.equal(unpack_indices(pack_indices(indices, bits), bits, 101), indices)
    assert pack_indices(indices, 4).numel() == 51
    values = torch.cat([torch.full((50,), -1.0), torch.full((50,), 2.0)]) + torch.randn(100) * 0.01
    codebook, assign = kmeans_1d(values, 2)
    assert torch.allclose(codebook.sort().values, torch.tensor([-1.0, 2.0]), atol=0.01)
    assert assign[:50].unique().numel() == 1


def test_clusters_out_of_range_is_rejected() -> None:
    with pytest.raises(ValueError, match="clusters"):
        WeightSharingConfig(clusters=1)
