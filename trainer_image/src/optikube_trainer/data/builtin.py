"""Data sets that ship with scikit-learn, so they work without a network."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sklearn import datasets

from optikube_trainer.data.raw import RawData

_TABULAR: dict[str, Callable[..., Any]] = {
    "iris": datasets.load_iris,
    "wine": datasets.load_wine,
    "breast_cancer": datasets.load_breast_cancer,
}


def load_builtin(name: str) -> RawData:
    if name == "digits":
        bunch = datasets.load_digits()
        # 8x8 grey images with values 0..16, kept as images so that CNNs apply
        images = bunch.images.reshape(-1, 1, 8, 8) / 16.0
        return RawData(
            task="image",
            features=images,
            labels=bunch.target,
            class_names=[str(c) for c in bunch.target_names],
        )
    if name in _TABULAR:
        bunch = _TABULAR[name]()
        return RawData(
            task="tabular",
            features=bunch.data,
            labels=bunch.target,
            class_names=[str(c) for c in bunch.target_names],
        )
    raise ValueError(f"data.source.builtin: unknown data set {name!r}")
