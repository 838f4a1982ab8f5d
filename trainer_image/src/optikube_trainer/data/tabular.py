"""A CSV's feature columns as numbers: scikit-learn's imputers and encoders, fitted on training rows only.

`Table` is what the CSV reader found (numeric columns as floats with NaN for a missing cell,
categorical ones as strings); `encode_table` builds a `ColumnTransformer` from the spec, fits it on
the training rows and transforms every row, so validation and test never inform an imputed value
or a category.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

from optikube_operator.api.data import Preprocessing

# the category that missing cells become with `categorical: constant`
MISSING_CATEGORY = "missing"
# results.json lists at most this many categories of a column (a column may have thousands)
SHOWN_CATEGORIES = 50

_SKLEARN_STRATEGY = {
    "mean": "mean",
    "median": "median",
    "mostFrequent": "most_frequent",
    "constant": "constant",
}


@dataclass
class Table:
    """Feature columns of a CSV after reading: ``frame`` holds float64 numeric columns and object
    (str) categorical ones, NaN marking a missing cell; ``findings`` is what reading found and did."""

    frame: pd.DataFrame
    numeric: list[str]
    categorical: list[str]
    findings: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frame)


@dataclass
class EncodedTable:
    features: np.ndarray  # float32, (rows, encoded features)
    feature_names: list[str]
    summary: dict[str, Any]  # results.json's `data.encoding`


def _imputer(kind: str, pre: Preprocessing) -> SimpleImputer:
    missing = pre.missing_values
    if kind == "numeric":
        return SimpleImputer(
            strategy=_SKLEARN_STRATEGY[missing.numeric],
            fill_value=missing.fill_value,
            keep_empty_features=True,
        )
    return SimpleImputer(
        strategy=_SKLEARN_STRATEGY[missing.categorical],
        fill_value=MISSING_CATEGORY,
        keep_empty_features=True,
    )


def _encoder(pre: Preprocessing) -> OneHotEncoder | OrdinalEncoder:
    if pre.categorical.encoding == "oneHot":
        return OneHotEncoder(
            handle_unknown="infrequent_if_exist",
            max_categories=pre.categorical.max_categories,
            sparse_output=False,
            dtype=np.float64,
        )
    return OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, dtype=np.float64)


def build_transformer(table: Table, pre: Preprocessing) -> ColumnTransformer:
    """The unfitted transformer: impute (when the strategy imputes) then encode categories."""
    impute = pre.missing_values.strategy == "impute"
    numeric: Any = Pipeline([("impute", _imputer("numeric", pre))]) if impute else "passthrough"
    categorical_steps: list[tuple[str, Any]] = [("impute", _imputer("categorical", pre))] if impute else []
    categorical = Pipeline([*categorical_steps, ("encode", _encoder(pre))])
    return ColumnTransformer(
        [("numeric", numeric, table.numeric), ("categorical", categorical, table.categorical)],
        sparse_threshold=0.0,
        verbose_feature_names_out=False,
    )


def _summary(
    transformer: ColumnTransformer, table: Table, train: pd.DataFrame, pre: Preprocessing
) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "numericColumns": list(table.numeric),
        "categoricalColumns": list(table.categorical),
        "categoricalEncoding": pre.categorical.encoding,
    }
    if table.categorical:
        encoder = transformer.named_transformers_["categorical"].named_steps["encode"]
        categories: dict[str, Any] = {}
        infrequent = getattr(encoder, "infrequent_categories_", None)
        for index, (column, values) in enumerate(zip(table.categorical, encoder.categories_, strict=True)):
            names = [str(v) for v in values]
            entry: dict[str, Any] = {"count": len(names), "values": names[:SHOWN_CATEGORIES]}
            if infrequent is not None and infrequent[index] is not None:
                entry["infrequent"] = [str(v) for v in infrequent[index]][:SHOWN_CATEGORIES]
            categories[column] = entry
        summary["categories"] = categories
    if pre.missing_values.strategy == "impute":
        imputed: dict[str, Any] = {}
        for kind, columns in (("numeric", table.numeric), ("categorical", table.categorical)):
            if not columns:
                continue
            statistics = transformer.named_transformers_[kind].named_steps["impute"].statistics_
            strategy = pre.missing_values.numeric if kind == "numeric" else pre.missing_values.categorical
            for column, value in zip(columns, statistics, strict=True):
                cells = int(train[column].isna().sum())
                if cells:
                    fill = float(value) if kind == "numeric" else str(value)
                    imputed[column] = {"trainingCells": cells, "strategy": strategy, "value": fill}
        summary["imputed"] = imputed
    return summary


def encode_table(table: Table, pre: Preprocessing, train_idx: np.ndarray) -> EncodedTable:
    """Fit the imputers and encoders on ``train_idx``'s rows, then encode every row."""
    transformer = build_transformer(table, pre)
    train = table.frame.iloc[train_idx]
    with warnings.catch_warnings():
        # categories only validation or test rows have are encoded as unknown, by design
        warnings.filterwarnings("ignore", message=".*unknown categories.*", category=UserWarning)
        transformer.fit(train)
        features = np.asarray(transformer.transform(table.frame), dtype=np.float64)
    names = [str(name) for name in transformer.get_feature_names_out()]
    return EncodedTable(
        features=features.astype(np.float32),
        feature_names=names,
        summary=_summary(transformer, table, train, pre),
    )
