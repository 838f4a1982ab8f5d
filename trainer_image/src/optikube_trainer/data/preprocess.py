"""Normalization and feature selection, fitted on the training split only (no leakage)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.feature_selection import SelectKBest, VarianceThreshold, f_classif

from optikube_operator.api.data import FeatureSelection

_EPS = 1e-8


@dataclass
class Normalizer:
    """Standard (z-score) or min-max scaling per feature (tabular) or per channel (images)."""

    method: str
    shift: np.ndarray | None = None
    scale: np.ndarray | None = None

    def _axes(self, x: np.ndarray) -> tuple[int, ...]:
        return (0, 2, 3) if x.ndim == 4 else (0,)

    def fit(self, x: np.ndarray) -> Normalizer:
        axes = self._axes(x)
        if self.method == "standard":
            self.shift = x.mean(axis=axes, keepdims=True)
            self.scale = x.std(axis=axes, keepdims=True)
        elif self.method == "minmax":
            self.shift = x.min(axis=axes, keepdims=True)
            self.scale = x.max(axis=axes, keepdims=True) - self.shift
        elif self.method != "none":
            raise ValueError(f"data.preprocessing.normalization: unknown method {self.method!r}")
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        if self.method == "none" or self.shift is None or self.scale is None:
            return x
        # constant features keep scale 1 so they become 0 instead of NaN
        scale = np.where(self.scale < _EPS, 1.0, self.scale)
        return ((x - self.shift) / scale).astype(np.float32)


@dataclass
class FeatureSelector:
    config: FeatureSelection
    mask: np.ndarray | None = None

    def fit(self, x: np.ndarray, y: np.ndarray) -> FeatureSelector:
        if x.ndim != 2:
            raise ValueError("data.preprocessing.featureSelection applies to tabular data only")
        if self.config.method == "varianceThreshold":
            selector = VarianceThreshold(threshold=self.config.threshold).fit(x)
            mask = selector.get_support()
        else:
            k = min(self.config.k or x.shape[1], x.shape[1])
            # constant features get an undefined F score: they are simply never selected
            with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                mask = SelectKBest(f_classif, k=k).fit(x, y).get_support()
        if not mask.any():
            raise ValueError("data.preprocessing.featureSelection removed every feature; lower threshold")
        self.mask = mask
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return x if self.mask is None else x[:, self.mask]
