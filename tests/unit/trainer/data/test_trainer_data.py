"""Data sources, deterministic splits, train-only preprocessing and distributed shards."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from optikube_operator.api.data import DataSpec, FileSource, MissingValues, TextPreprocessing
from optikube_operator.api.training import TrainingSpec
from optikube_trainer.data import load_data, load_folds
from optikube_trainer.data.augment import augment_image
from optikube_trainer.data.bundle import ShardSampler
from optikube_trainer.data.text import UNKNOWN_ID, Vocabulary, tokenize
from optikube_trainer.dist import local_context
from optikube_trainer.recipe import TrainingRecipe


def _spec(source: dict[str, Any], **extra: Any) -> DataSpec:
    return DataSpec.model_validate({"source": source, **extra})


def _indices(dataset: Any) -> set[bytes]:
    return {x.numpy().tobytes() for x, _ in dataset}


@pytest.mark.parametrize(
    ("name", "task", "shape", "classes"),
    [
        ("digits", "image", (1, 8, 8), 10),
        ("iris", "tabular", (4,), 3),
        ("wine", "tabular", (13,), 3),
        ("breast_cancer", "tabular", (30,), 2),
    ],
)
def test_builtin_sets(name: str, task: str, shape: tuple[int, ...], classes: int) -> None:
    bundle = load_data(_spec({"builtin": name}), seed=0)
    assert (bundle.task, bundle.input_shape, bundle.num_classes) == (task, shape, classes)
    total = len(bundle.train) + len(bundle.val) + len(bundle.test)  # type: ignore[arg-type]
    assert abs(len(bundle.test) / total - 0.2) < 0.02  # type: ignore[arg-type]


def test_splits_are_deterministic_and_disjoint() -> None:
    spec = _spec({"builtin": "digits"})
    a, b, c = load_data(spec, seed=1), load_data(spec, seed=1), load_data(spec, seed=2)
    assert torch.equal(a.train.tensors[0], b.train.tensors[0])  # type: ignore[attr-defined]
    assert not torch.equal(a.train.tensors[0], c.train.tensors[0])  # type: ignore[attr-defined]
    train, val, test = _indices(a.train), _indices(a.val), _indices(a.test)
    assert not (train & test) and not (val & test)


def test_standard_normalization_is_fitted_on_train_only() -> None:
    bundle = load_data(_spec({"builtin": "wine"}, preprocessing={"normalization": "standard"}), seed=0)
    train = bundle.train.tensors[0]  # type: ignore[attr-defined]
    val = bundle.val.tensors[0]  # type: ignore[attr-defined]
    assert torch.allclose(train.mean(0), torch.zeros(13), atol=1e-4)
    assert torch.allclose(train.std(0, unbiased=False), torch.ones(13), atol=1e-3)
    assert not torch.allclose(val.mean(0), torch.zeros(13), atol=1e-3)  # no leakage from val


def test_minmax_normalization_per_channel_for_images() -> None:
    bundle = load_data(_spec({"builtin": "digits"}, preprocessing={"normalization": "minmax"}), seed=0)
    train = bundle.train.tensors[0]  # type: ignore[attr-defined]
    assert float(train.min()) == pytest.approx(0.0) and float(train.max()) == pytest.approx(1.0)


def test_feature_selection(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    informative = labels + rng.normal(0, 0.3, 200)
    rows = ["a,b,const,label"] + [
        f"{i:.4f},{n:.4f},5.0,{y}" for i, n, y in zip(informative, rng.normal(size=200), labels, strict=True)
    ]
    path = tmp_path / "set.csv"
    path.write_text("\n".join(rows))
    source = {"file": {"path": str(path), "format": "csv", "targetColumn": "label"}}
    variance = load_data(
        _spec(source, preprocessing={"featureSelection": {"method": "varianceThreshold"}}), 0
    )
    assert variance.input_shape == (2,)  # the constant column is gone
    best = load_data(_spec(source, preprocessing={"featureSelection": {"method": "kBest", "k": 1}}), 0)
    assert best.input_shape == (1,)
    kept = best.train.tensors[0][:, 0]  # type: ignore[attr-defined]
    targets = best.train.tensors[1].float()  # type: ignore[attr-defined]
    assert abs(float(torch.corrcoef(torch.stack([kept, targets]))[0, 1])) > 0.7  # the informative one
    with pytest.raises(ValueError, match="featureSelection applies to tabular"):
        load_data(_spec({"builtin": "digits"}, preprocessing={"featureSelection": {"method": "kBest"}}), 0)


def test_augmentation_changes_images_but_not_shapes() -> None:
    spec = _spec(
        {"builtin": "digits"},
        preprocessing={
            "augmentation": {"horizontalFlip": True, "rotationDegrees": 20, "randomCrop": {"padding": 1}}
        },
    )
    bundle = load_data(spec, seed=0)
    torch.manual_seed(0)
    first = torch.stack([bundle.train[i][0] for i in range(32)])
    second = torch.stack([bundle.train[i][0] for i in range(32)])
    assert first.shape == (32, 1, 8, 8)
    assert not torch.equal(first, second)  # random per access
    assert torch.equal(bundle.val[0][0], bundle.val[0][0])  # validation is never augmented
    image = torch.arange(16.0).reshape(1, 4, 4)
    from optikube_operator.api.data import Augmentation

    flipped = augment_image(image, Augmentation(horizontal_flip=True), torch.Generator().manual_seed(3))
    assert torch.equal(flipped, image) or torch.equal(flipped, image.flip(-1))


def test_text_tokenization_removes_stop_words_and_vocab_is_train_only() -> None:
    assert tokenize("The cat is on the Mat", stop_words=frozenset({"the", "is", "on"})) == ["cat", "mat"]
    config = TextPreprocessing(vocab_size=100, max_length=5, remove_stop_words=True)
    vocab = Vocabulary(config).fit(["the goal and the match", "a goal"])
    ids = vocab.encode(["goal match unseen the", "x"])
    assert ids.shape == (2, 5)
    assert ids[0, 0] == vocab.index["goal"] and ids[0, 2] == UNKNOWN_ID
    assert ids[0, 3] == 0  # "the" was removed, so the rest is padding
    assert "the" not in vocab.index


def test_synthetic_text_is_learnable_signal() -> None:
    bundle = load_data(
        _spec(
            {"synthetic": {"kind": "text", "samples": 300, "classes": 3}},
            preprocessing={"text": {"maxLength": 16}},
        ),
        seed=0,
    )
    assert bundle.task == "text" and bundle.input_shape == (16,) and bundle.num_classes == 3
    assert bundle.vocab_size is not None and bundle.vocab_size > 20
    assert bundle.train[0][0].dtype == torch.long


@pytest.mark.parametrize("kind", ["images", "tabular"])
def test_synthetic_images_and_tabular(kind: str) -> None:
    bundle = load_data(
        _spec({"synthetic": {"kind": kind, "samples": 100, "classes": 3, "features": 6}}), seed=0
    )
    assert bundle.num_classes == 3
    assert bundle.input_shape == ((1, 28, 28) if kind == "images" else (6,))


def test_npz_and_image_folder(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.random((40, 6, 6)), y=np.repeat([3, 7], 20))
    bundle = load_data(
        _spec({"file": {"path": str(tmp_path / "d.npz"), "format": "npz", "targetColumn": "y"}}), 0
    )
    assert bundle.task == "image" and bundle.input_shape == (1, 6, 6) and bundle.num_classes == 2
    for name in ("cats", "dogs"):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)).save(
                tmp_path / "imgs" / name / f"{i}.png"
            )
    source = {"file": {"path": str(tmp_path / "imgs"), "format": "imagefolder", "imageSize": 8}}
    images = load_data(_spec(source, validationSplit=0.2, testSplit=0.2), 0)
    assert images.input_shape == (3, 8, 8) and images.class_names == ["cats", "dogs"]


def test_csv_text_column(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "text,label\n"
        + "\n".join(f"{'good great' if i % 2 else 'bad awful'} movie {i},{i % 2}" for i in range(30))
    )
    bundle = load_data(_spec({"file": {"path": str(path), "format": "csv", "textColumn": "text"}}), 0)
    assert bundle.task == "text" and bundle.num_classes == 2
    with pytest.raises(ValueError, match="targetColumn"):
        from optikube_trainer.data.csv_reader import load_csv

        load_csv(FileSource(path=str(path), format="csv", target_column="nope"), MissingValues())


def _write_idx(path: Path, data: np.ndarray) -> None:
    code = 0x08  # unsigned byte
    header = struct.pack(">I", (code << 8) | data.ndim) + struct.pack(f">{data.ndim}I", *data.shape)
    path.write_bytes(header + data.astype(np.uint8).tobytes())


def test_torchvision_source_reads_local_mnist_files(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 50), ("t10k", 10)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 255, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    bundle = load_data(_spec({"torchvision": {"name": "MNIST", "root": str(tmp_path), "maxSamples": 40}}), 0)
    assert bundle.input_shape == (1, 28, 28) and bundle.num_classes == 10
    assert len(bundle.train) + len(bundle.val) + len(bundle.test) == 40  # type: ignore[arg-type]


def test_huggingface_source_reads_a_saved_dataset(tmp_path: Path) -> None:
    import datasets

    texts = [f"{'rocket orbit' if i % 2 else 'oven flour'} story {i}" for i in range(40)]
    datasets.Dataset.from_dict({"sentence": texts, "target": [i % 2 for i in range(40)]}).save_to_disk(
        tmp_path / "hf"
    )
    source = {
        "huggingface": {"name": str(tmp_path / "hf"), "textColumn": "sentence", "labelColumn": "target"}
    }
    bundle = load_data(_spec(source), 0)
    assert bundle.task == "text" and bundle.num_classes == 2
    with pytest.raises(ValueError, match="textColumn"):
        load_data(_spec({"huggingface": {"name": str(tmp_path / "hf")}}), 0)


def test_kfold_bundles_cover_the_pool_once() -> None:
    folds = load_folds(_spec({"builtin": "iris"}, crossValidation={"folds": 3}), seed=0)
    assert len(folds) == 3
    val_rows = [_indices(f.val) for f in folds]
    assert not (val_rows[0] & val_rows[1]) and not (val_rows[1] & val_rows[2])
    assert len(folds[0].test) == len(folds[1].test)  # type: ignore[arg-type]


def test_distributed_loaders_give_disjoint_shards() -> None:
    spec = _spec({"builtin": "iris"})
    shards = []
    for rank in range(2):
        ctx = local_context()
        ctx.rank, ctx.world_size = rank, 2
        bundle = load_data(spec, seed=0, ctx=ctx)
        # the global batch is split over the ranks by the recipe, and each rank loads its share
        share = TrainingRecipe.from_spec(TrainingSpec.model_validate({"batchSize": 16}), world_size=2)
        loader = bundle.loader("train", share.per_process_batch)
        assert loader.batch_size == 8
        shards.append(list(loader.sampler))
    assert not set(shards[0]) & set(shards[1])
    assert set(shards[0]) | set(shards[1]) == set(range(len(bundle.train)))  # type: ignore[arg-type]
    evaluation = [list(ShardSampler(11, r, 2)) for r in range(2)]
    assert sorted(evaluation[0] + evaluation[1]) == list(range(11))
