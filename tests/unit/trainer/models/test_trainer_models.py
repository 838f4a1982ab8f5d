"""Model builders: output shapes, tunable sizes, transfer learning and user models."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from optikube_operator.api.model import ModelSpec
from optikube_trainer.data import DataBundle
from optikube_trainer.models import build_model, count_parameters


def _bundle(task: str, shape: tuple[int, ...], classes: int = 5, vocab: int | None = None) -> DataBundle:
    empty: Any = torch.utils.data.TensorDataset(torch.zeros(0))
    return DataBundle(
        empty, empty, empty, num_classes=classes, input_shape=shape, task=task, vocab_size=vocab
    )


def _spec(**raw: Any) -> ModelSpec:
    return ModelSpec.model_validate(raw)


def test_mlp_width_and_depth_change_the_size() -> None:
    bundle = _bundle("tabular", (13,))
    small = build_model(_spec(builtin={"name": "mlp"}, params={"width": 16, "depth": 1}), bundle)
    large = build_model(_spec(builtin={"name": "mlp"}, params={"width": 64, "depth": 3}), bundle)
    assert small(torch.randn(4, 13)).shape == (4, 5)
    assert count_parameters(small) == 13 * 16 + 16 + 16 * 5 + 5
    assert count_parameters(large) > 10 * count_parameters(small)


def test_dropout_reaches_the_layers() -> None:
    model = build_model(_spec(builtin={"name": "mlp"}), _bundle("image", (1, 8, 8)), dropout=0.3)
    rates = {m.p for m in model.modules() if isinstance(m, nn.Dropout)}
    assert rates == {0.3}


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)])
def test_cnn_handles_small_and_rgb_images(shape: tuple[int, ...]) -> None:
    model = build_model(
        _spec(builtin={"name": "cnn"}, params={"channels": 8, "depth": 3}), _bundle("image", shape)
    )
    assert model(torch.randn(2, *shape)).shape == (2, 5)


def test_text_transformer_shapes_and_padding() -> None:
    bundle = _bundle("text", (12,), classes=3, vocab=50)
    model = build_model(
        _spec(builtin={"name": "textTransformer"}, params={"width": 16, "heads": 2, "depth": 1}), bundle
    )
    model.eval()
    ids = torch.randint(2, 50, (4, 12))
    ids[0, 5:] = 0
    ids[1] = 0  # all padding must not give NaN
    logits = model(ids)
    assert logits.shape == (4, 3) and torch.isfinite(logits).all()
    padded_more = ids.clone()
    padded_more[0, 5:] = 0
    assert torch.allclose(model(padded_more)[0], logits[0])


@pytest.mark.parametrize(
    ("raw", "bundle", "message"),
    [
        (
            {"builtin": {"name": "mlp"}, "params": {"widht": 3}},
            _bundle("tabular", (4,)),
            "model.params.widht",
        ),
        (
            {"builtin": {"name": "mlp"}, "params": {"width": -3}},
            _bundle("tabular", (4,)),
            "model.params.width",
        ),
        ({"builtin": {"name": "cnn"}}, _bundle("tabular", (4,)), "cnn needs image data"),
        (
            {"builtin": {"name": "textTransformer"}, "params": {"width": 10, "heads": 4}},
            _bundle("text", (8,), vocab=20),
            "model.params.heads",
        ),
        ({"importPath": "no_such_module_xyz:build"}, _bundle("tabular", (4,)), "model.importPath"),
    ],
)
def test_bad_params_name_the_field(raw: dict[str, Any], bundle: DataBundle, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_model(_spec(**raw), bundle)


def test_resnet_from_local_weights_frozen_with_new_head(tmp_path: Path) -> None:
    import torchvision

    reference = torchvision.models.resnet18(weights=None)
    torch.save(reference.state_dict(), tmp_path / "resnet18.pth")
    spec = _spec(
        torchvision={
            "name": "resnet18",
            "pretrained": True,
            "weightsPath": str(tmp_path / "resnet18.pth"),
            "freezeBackbone": True,
        }
    )
    model = build_model(spec, _bundle("image", (1, 8, 8), classes=10))
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert torch.equal(model.layer1[0].conv1.weight, reference.layer1[0].conv1.weight)  # type: ignore[index, union-attr]
    trainable = {name.split(".")[0] for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"fc", "conv1"}  # the head and the stem adapted to 1x8x8 inputs


@pytest.mark.slow  # importing transformers alone takes seconds
def test_huggingface_model_from_a_local_tiny_config(tmp_path: Path) -> None:
    import transformers

    config = transformers.DistilBertConfig(
        vocab_size=60, dim=16, n_layers=1, n_heads=2, hidden_dim=32, max_position_embeddings=32
    )
    transformers.DistilBertForSequenceClassification(config).save_pretrained(tmp_path / "tiny")
    spec = _spec(huggingface={"name": "tiny", "localPath": str(tmp_path / "tiny"), "freezeBackbone": True})
    model = build_model(spec, _bundle("text", (16,), classes=3, vocab=80))
    logits = model(torch.randint(1, 80, (2, 16)))
    assert logits.shape == (2, 3)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("classifier" in name for name in trainable)
    with pytest.raises(ValueError, match="maxLength"):
        build_model(spec, _bundle("text", (64,), classes=3, vocab=80))


def test_user_model_by_import_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "user_models_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(
        "import math\nfrom torch import nn\n"
        "def build(input_shape, num_classes, hidden=8):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), hidden), nn.ReLU(),"
        " nn.Linear(hidden, num_classes))\n"
        "def not_a_model(**kwargs):\n    return 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    model = build_model(
        _spec(importPath="user_models_pkg.nets:build", params={"hidden": 4}), _bundle("tabular", (6,))
    )
    assert model(torch.randn(2, 6)).shape == (2, 5)
    assert count_parameters(model) == 6 * 4 + 4 + 4 * 5 + 5
    with pytest.raises(ValueError, match=r"not a torch\.nn\.Module"):
        build_model(_spec(importPath="user_models_pkg.nets:not_a_model"), _bundle("tabular", (6,)))
    sys.modules.pop("user_models_pkg.nets", None)
    sys.modules.pop("user_models_pkg", None)
