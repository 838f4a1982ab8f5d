"""Deterministic train/validation/test splits and k-fold, stratified where every class allows it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split


@dataclass(frozen=True)
class SplitIndices:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def _stratify(labels: np.ndarray, parts: int, held: int | None = None) -> np.ndarray | None:
    """The labels when a stratified split is possible, else None (a plain shuffled split)."""
    counts = np.bincount(labels)
    classes = int((counts > 0).sum())
    if counts[counts > 0].min() < parts:
        return None
    if held is not None and (held < classes or len(labels) - held < classes):
        return None
    return labels


def _split(
    indices: np.ndarray, labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    if fraction <= 0:
        return indices, indices[:0]
    held = math.ceil(fraction * len(indices))
    keep, held_out = train_test_split(
        indices, test_size=held, random_state=seed, stratify=_stratify(labels[indices], 2, held)
    )
    return np.sort(keep), np.sort(held_out)


def split_indices(labels: np.ndarray, *, validation: float, test: float, seed: int) -> SplitIndices:
    """Fractions are of the whole data set; the same seed always gives the same split."""
    everything = np.arange(len(labels))
    rest, test_idx = _split(everything, labels, test, seed)
    val_fraction = validation / (1.0 - test) if test < 1 else 0.0
    train_idx, val_idx = _split(rest, labels, val_fraction, seed + 1)
    return SplitIndices(train=train_idx, val=val_idx, test=test_idx)


def kfold_indices(
    labels: np.ndarray, pool: np.ndarray, folds: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, validation) index pairs over ``pool`` (the non-test samples)."""
    if folds < 2:
        raise ValueError("data.crossValidation.folds must be >= 2 for k-fold")
    pool_labels = labels[pool]
    splitter: StratifiedKFold | KFold
    if _stratify(pool_labels, folds) is not None:
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(np.sort(pool[tr]), np.sort(pool[va])) for tr, va in splitter.split(pool, pool_labels)]
