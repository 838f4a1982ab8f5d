"""load_data / load_folds: raw data -> deterministic splits -> train-fitted preprocessing -> DataBundle."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from optikube_operator.api.data import DataSource, DataSpec, MissingValues
from optikube_trainer.data.augment import AugmentedDataset
from optikube_trainer.data.builtin import load_builtin
from optikube_trainer.data.bundle import DataBundle
from optikube_trainer.data.external import load_huggingface, load_torchvision
from optikube_trainer.data.files import load_file
from optikube_trainer.data.preprocess import FeatureSelector, Normalizer
from optikube_trainer.data.raw import RawData
from optikube_trainer.data.splits import kfold_indices, split_indices
from optikube_trainer.data.synthetic import load_synthetic
from optikube_trainer.data.tabular import encode_table
from optikube_trainer.data.text import build_text_encoder
from optikube_trainer.dist import RunContext
from optikube_trainer.recipe import folds, text_preprocessing

if TYPE_CHECKING:
    from optikube_trainer.recipe import Recipe

Split = Dataset[tuple[torch.Tensor, torch.Tensor]]
# results.json names at most this many input features (one-hot columns can be thousands)
SHOWN_FEATURES = 200


def load_raw(source: DataSource, seed: int, *, missing: MissingValues | None = None) -> RawData:
    """The examples of ``source``, not split yet. ``missing`` is spec.data.preprocessing.missingValues
    (its defaults when None): with `drop` the CSV rows with a missing cell are left out here.
    Every problem of the data is a ValueError naming the spec field (and column and row of a CSV)."""
    if source.builtin is not None:
        return load_builtin(source.builtin)
    if source.synthetic is not None:
        return load_synthetic(source.synthetic, seed)
    if source.file is not None:
        return load_file(source.file, missing if missing is not None else MissingValues())
    if source.torchvision is not None:
        return load_torchvision(source.torchvision)
    if source.huggingface is not None:
        return load_huggingface(source.huggingface)
    raise ValueError("spec.data.source: no source given")


def _summary(raw: RawData, x: np.ndarray, names: list[str] | None, sizes: dict[str, int]) -> dict[str, Any]:
    """results.json's `data`: what the model saw, and what reading and encoding a table chose."""
    summary: dict[str, Any] = {
        "task": raw.task,
        "classes": list(raw.class_names),
        "samples": sizes,
        "inputShape": [int(d) for d in x.shape[1:]],
    }
    if names is not None:
        summary["features"] = {"count": len(names), "names": names[:SHOWN_FEATURES]}
    if raw.table is not None:
        summary["table"] = dict(raw.table.findings)
    return summary


def _tensor_split(x: np.ndarray, y: np.ndarray, dtype: torch.dtype) -> Split:
    dataset = TensorDataset(torch.as_tensor(x, dtype=dtype), torch.as_tensor(y, dtype=torch.long))
    return cast(Split, dataset)


def build_bundle(
    raw: RawData,
    spec: DataSpec,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    test_idx: np.ndarray,
    *,
    seed: int,
    ctx: RunContext | None = None,
    fold: int | None = None,
    pretrained: str | None = None,
) -> DataBundle:
    """Fit every preprocessing step on ``train_idx`` only, then transform the three splits.

    ``pretrained`` is the Hugging Face model (hub id or folder) whose tokenizer the `pretrained`
    tokenizer setting uses.
    """
    pre = spec.preprocessing
    y = raw.labels
    vocab_size: int | None = None
    pad_id = 0
    names = raw.feature_names
    encoding: dict[str, Any] | None = None
    if raw.task == "text":
        assert raw.texts is not None
        texts = raw.texts
        encoder = build_text_encoder(text_preprocessing(spec), pretrained).fit([texts[i] for i in train_idx])
        x = encoder.encode(texts)
        vocab_size, pad_id, dtype = encoder.size, encoder.pad_id, torch.long
    else:
        if raw.table is not None:
            encoded = encode_table(raw.table, pre, train_idx)
            x, names, encoding = encoded.features, encoded.feature_names, encoded.summary
        else:
            assert raw.features is not None
            x = raw.features
        if pre.feature_selection is not None:
            if raw.task != "tabular":
                raise ValueError("spec.data.preprocessing.featureSelection applies to tabular data only")
            selector = FeatureSelector(pre.feature_selection).fit(x[train_idx], y[train_idx])
            x = selector.transform(x)
            if names is not None and selector.mask is not None:
                names = [name for name, kept in zip(names, selector.mask, strict=True) if kept]
        x = Normalizer(pre.normalization).fit(x[train_idx]).transform(x)
        dtype = torch.float32
    train = _tensor_split(x[train_idx], y[train_idx], dtype)
    if pre.augmentation is not None and pre.augmentation.enabled:
        if raw.task != "image":
            raise ValueError("spec.data.preprocessing.augmentation applies to image data only")
        train = AugmentedDataset(
            torch.as_tensor(x[train_idx]), torch.as_tensor(y[train_idx]), pre.augmentation
        )
    summary = _summary(raw, x, names, {"train": len(train_idx), "val": len(val_idx), "test": len(test_idx)})
    if encoding is not None:
        summary["encoding"] = encoding
    return DataBundle(
        train=train,
        val=_tensor_split(x[val_idx], y[val_idx], dtype),
        test=_tensor_split(x[test_idx], y[test_idx], dtype),
        num_classes=raw.num_classes,
        input_shape=tuple(int(d) for d in x.shape[1:]),
        task=raw.task,
        seed=seed,
        rank=ctx.rank if ctx is not None else 0,
        world_size=ctx.world_size if ctx is not None else 1,
        vocab_size=vocab_size,
        pad_id=pad_id,
        class_names=raw.class_names,
        fold=fold,
        feature_names=names,
        summary=summary,
    )


def load_job_data(recipe: Recipe, ctx: RunContext | None = None) -> DataBundle:
    """The job's data: splits and preprocessing of ``spec.data``, seeded by ``spec.seed``."""
    return load_data(recipe.data.spec, recipe.seed, ctx, pretrained=recipe.data.pretrained_tokenizer)


def load_job_folds(recipe: Recipe, ctx: RunContext | None = None) -> list[DataBundle]:
    """One bundle per cross-validation fold of the job's data."""
    return load_folds(recipe.data.spec, recipe.seed, ctx, pretrained=recipe.data.pretrained_tokenizer)


def load_data(
    spec: DataSpec,
    seed: int,
    ctx: RunContext | None = None,
    *,
    raw: RawData | None = None,
    pretrained: str | None = None,
) -> DataBundle:
    raw = raw if raw is not None else load_raw(spec.source, seed, missing=spec.preprocessing.missing_values)
    idx = split_indices(raw.labels, validation=spec.validation_split, test=spec.test_split, seed=seed)
    return build_bundle(raw, spec, idx.train, idx.val, idx.test, seed=seed, ctx=ctx, pretrained=pretrained)


def load_folds(
    spec: DataSpec,
    seed: int,
    ctx: RunContext | None = None,
    *,
    pretrained: str | None = None,
) -> list[DataBundle]:
    """One bundle per fold of ``spec.crossValidation.folds`` over the non-test data; test stays held out."""
    raw = load_raw(spec.source, seed, missing=spec.preprocessing.missing_values)
    idx = split_indices(raw.labels, validation=spec.validation_split, test=spec.test_split, seed=seed)
    pool = np.sort(np.concatenate([idx.train, idx.val]))
    if folds(spec) < 2:
        raise ValueError("spec.data.crossValidation: set folds to split into folds")
    fold_indices = kfold_indices(raw.labels, pool, folds(spec), seed)
    return [
        build_bundle(raw, spec, tr, va, idx.test, seed=seed, ctx=ctx, fold=i, pretrained=pretrained)
        for i, (tr, va) in enumerate(fold_indices)
    ]
