"""Reading a CSV as it comes: missing cells, numeric and categorical columns, rows left out.

Every cell is read as text, trimmed, and compared with `naValues`; a feature column is numeric when
its cells are numbers, categorical when they are mostly not (or when `categoricalColumns` says so).
`missingValues.strategy` decides here what happens to rows with missing cells (`drop`, `error`);
imputation is fitted later, on the training split only (`optikube_trainer.data.tabular`). Every
error names the spec field, the column and the row (rows count from 1, the first after the header).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optikube_operator.api.data import FileSource, MissingValues
from optikube_trainer.data.raw import RawData, encode_labels
from optikube_trainer.data.tabular import Table

FIELD = "spec.data.source.file"
STRATEGY_FIELD = "spec.data.preprocessing.missingValues.strategy"
# rows quoted in an error message; the rest are counted
SHOWN_ROWS = 5
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _rows(mask: pd.Series) -> str:
    """'row 4' or 'rows 4, 9, 12 (and 30 more)' for the True entries of ``mask`` (indexed by the
    file's row positions, so that rows left out before do not shift the numbers)."""
    numbers = [int(i) + 1 for i in mask.index[mask.to_numpy()]]
    shown = ", ".join(str(n) for n in numbers[:SHOWN_ROWS])
    more = f" (and {len(numbers) - SHOWN_ROWS} more)" if len(numbers) > SHOWN_ROWS else ""
    return f"{'row' if len(numbers) == 1 else 'rows'} {shown}{more}"


def _also(mask: pd.Series) -> str:
    """'; rows 4, 9 like it' when more than one entry is True, else nothing."""
    return f"; {_rows(mask)} like it" if int(mask.sum()) > 1 else ""


def _first(mask: pd.Series) -> int:
    """The file position of the first True entry."""
    return int(mask.index[mask.to_numpy()][0])


def read_cells(path: Path) -> pd.DataFrame:
    """Every cell as trimmed text; no value is interpreted yet."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ValueError(f"{FIELD}.path: {path} is not a readable CSV ({error})") from None
    if frame.empty:
        raise ValueError(f"{FIELD}.path: {path} has no data rows")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.apply(lambda column: column.str.strip())


def _check_columns(source: FileSource, columns: list[str], path: Path) -> None:
    def known(name: str, field: str) -> None:
        if name not in columns:
            raise ValueError(f"{FIELD}.{field}: {name!r} is not a column of {path} (columns: {columns})")

    known(source.target_column, "targetColumn")
    if source.text_column is not None:
        known(source.text_column, "textColumn")
    for field, names in (
        ("ignoreColumns", source.ignore_columns),
        ("categoricalColumns", source.categorical_columns),
    ):
        for name in names or []:
            known(name, field)
            if name == source.target_column:
                raise ValueError(f"{FIELD}.{field}: {name!r} is the targetColumn, not a feature")
    for name in source.categorical_columns or []:
        if name in source.ignore_columns:
            raise ValueError(f"{FIELD}.categoricalColumns: {name!r} is also in ignoreColumns")


def _numbers(cells: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(float value of each cell, whether the cell is a number); NaN-spelled cells are numbers."""
    values = pd.to_numeric(cells, errors="coerce")
    nan_words = cells.str.lower().str.lstrip("+-").eq("nan")
    return values, values.notna() | nan_words


def _numeric_column(name: str, cells: pd.Series, missing: pd.Series, listed: bool) -> pd.Series:
    """The column as float64 (NaN where missing); errors name the first cell that is not a finite number."""
    values, is_number = _numbers(cells)
    present = ~missing
    not_number = present & ~is_number
    if not_number.any():
        row = _first(not_number)
        why = (
            "it is not in categoricalColumns, so it must hold numbers"
            if listed
            else f"{int((present & is_number).sum())} of its {int(present.sum())} cells are numbers"
        )
        raise ValueError(
            f"{FIELD}: column {name!r}, row {row + 1} holds {cells.loc[row]!r}, not a number ({why}"
            f"{_also(not_number)}); fix the cells, add the value to {FIELD}.naValues if it means"
            f" missing, or list {name!r} in {FIELD}.categoricalColumns"
        )
    out_of_range = present & ~(values.abs() <= _FLOAT32_MAX)
    if out_of_range.any():
        row = _first(out_of_range)
        raise ValueError(
            f"{FIELD}: column {name!r}, row {row + 1} holds {cells.loc[row]!r}, which is not a finite"
            f" float32 number{_also(out_of_range)}; add it to {FIELD}.naValues if it means missing"
        )
    return values.where(present, np.nan).astype(np.float64)


def _column_kinds(
    source: FileSource, cells: pd.DataFrame, missing: pd.DataFrame, features: list[str]
) -> tuple[list[str], list[str]]:
    listed = source.categorical_columns
    numeric: list[str] = []
    categorical: list[str] = []
    for name in features:
        present = ~missing[name]
        if not present.any():
            raise ValueError(
                f"{FIELD}: column {name!r} has no value (every cell is missing);"
                f" list it in {FIELD}.ignoreColumns"
            )
        if listed is not None:
            is_categorical = name in listed
        else:
            _, is_number = _numbers(cells[name][present])
            is_categorical = int(is_number.sum()) * 2 < int(present.sum())
        (categorical if is_categorical else numeric).append(name)
    return numeric, categorical


def _kept_rows(
    label_missing: pd.Series, feature_missing: pd.DataFrame, policy: MissingValues, target: str
) -> pd.Series:
    """Which rows stay, per the strategy; errors name the cells a strategy cannot take."""
    if policy.strategy == "drop":
        return ~(label_missing | feature_missing.any(axis=1))
    if label_missing.any():
        raise ValueError(
            f"{FIELD}.targetColumn: column {target!r} has no label in {_rows(label_missing)}; labels are"
            f" never imputed: fill them in, or set {STRATEGY_FIELD} to drop to leave those rows out"
        )
    if policy.strategy == "error" and feature_missing.any(axis=None):
        any_missing = feature_missing.any(axis=1)
        row = _first(any_missing)
        column = str(feature_missing.columns[np.flatnonzero(feature_missing.loc[row].to_numpy())[0]])
        raise ValueError(
            f"{STRATEGY_FIELD} is error, but column {column!r}, row {row + 1} is missing"
            f" ({_rows(any_missing)} have a missing cell); set it to impute or drop"
        )
    return pd.Series(True, index=label_missing.index)


def load_csv(source: FileSource, policy: MissingValues) -> RawData:
    path = Path(source.path)
    cells = read_cells(path)
    columns = list(cells.columns)
    _check_columns(source, columns, path)
    missing = cells.isin(source.na_values)
    target = source.target_column
    features = [
        c for c in columns if c not in (target, source.text_column) and c not in source.ignore_columns
    ]
    if source.text_column is not None:
        features = [source.text_column]
    elif not features:
        raise ValueError(f"{FIELD}: {path} has no feature column besides {target!r} and ignoreColumns")
    findings: dict[str, Any] = {
        "rows": len(cells),
        "naValues": list(source.na_values),
        "missingCells": {c: int(missing[c].sum()) for c in [target, *features] if missing[c].any()},
        "missingStrategy": policy.strategy,
    }
    if source.ignore_columns:
        findings["ignoredColumns"] = list(source.ignore_columns)
    kept = _kept_rows(missing[target], missing[features], policy, target)
    if not kept.any():
        raise ValueError(f"{STRATEGY_FIELD}: drop leaves no row of {path} (every row has a missing cell)")
    findings["rowsDropped"] = int((~kept).sum())
    findings["rowsUsed"] = int(kept.sum())
    labels, names = encode_labels(cells[target][kept].to_numpy())
    if source.text_column is not None:
        texts = cells[source.text_column].where(~missing[source.text_column], "")[kept]
        return RawData(task="text", texts=texts.tolist(), labels=labels, class_names=names)
    numeric, categorical = _column_kinds(source, cells[kept], missing[kept], features)
    frame = pd.DataFrame(index=cells.index[kept])
    for name in features:
        if name in numeric:
            listed = source.categorical_columns is not None
            frame[name] = _numeric_column(name, cells[name][kept], missing[name][kept], listed)
        else:
            frame[name] = cells[name][kept].where(~missing[name][kept], np.nan).astype(object)
    table = Table(
        frame=frame.reset_index(drop=True), numeric=numeric, categorical=categorical, findings=findings
    )
    return RawData(task="tabular", labels=labels, class_names=names, table=table)
