"""CSV tables as they come: missing cells, categorical columns, train-only imputation and encoding,
and errors that name the field, the column and the row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from optikube_operator.api.data import DataSpec
from optikube_trainer.data import build_bundle, load_data, load_raw


def _csv(tmp_path: Path, text: str) -> str:
    path = tmp_path / "table.csv"
    path.write_text(text)
    return str(path)


def _spec(path: str, *, file: dict[str, Any] | None = None, **preprocessing: Any) -> DataSpec:
    return DataSpec.model_validate(
        {
            "source": {"file": {"path": path, "format": "csv", **(file or {})}},
            "preprocessing": {"normalization": "none", **preprocessing},
            "validationSplit": 0.2,
            "testSplit": 0.2,
        }
    )


def _features(bundle: Any) -> torch.Tensor:
    return torch.cat([bundle.train.tensors[0], bundle.val.tensors[0], bundle.test.tensors[0]])


PEOPLE = """age,plan,city,income,label
34,basic,Oslo,52000,no
NA,pro,Rome,,yes
41,pro, Oslo ,61000,yes
nan,enterprise,?,75000,no
29,basic,Lima,48000,yes
38,basic,Rome,null,no
52,pro,Oslo,83000,yes
45,enterprise,Lima,90000,no
33,basic,Rome,51000,no
47,pro,Lima,None,yes
"""


def test_categorical_columns_are_detected_and_one_hot_encoded(tmp_path: Path) -> None:
    bundle = load_data(_spec(_csv(tmp_path, PEOPLE)), seed=0)
    encoding = bundle.summary["encoding"]
    assert encoding["numericColumns"] == ["age", "income"]
    assert encoding["categoricalColumns"] == ["plan", "city"]
    assert bundle.feature_names is not None
    assert bundle.feature_names[:2] == ["age", "income"]
    assert {"plan_basic", "plan_pro", "city_Oslo"} <= set(bundle.feature_names)
    # " Oslo " is trimmed into the same category as "Oslo"
    assert not any(name.startswith("city_ ") for name in bundle.feature_names)
    features = _features(bundle)
    assert bool(torch.isfinite(features).all())
    plans = [bundle.feature_names.index(f"plan_{p}") for p in encoding["categories"]["plan"]["values"]]
    # one-hot: exactly one plan feature is 1 in each row (every plan occurs in training here)
    assert torch.equal(features[:, plans].sum(dim=1), torch.ones(len(features)))


def test_every_default_missing_spelling_is_missing(tmp_path: Path) -> None:
    raw = load_raw(_spec(_csv(tmp_path, PEOPLE)).source, 0)
    assert raw.table is not None
    # NA, nan, ?, empty, null, None: each read as missing, none as a value or a category
    assert raw.table.findings["missingCells"] == {"age": 2, "city": 1, "income": 3}
    assert int(raw.table.frame["age"].isna().sum()) == 2
    assert set(raw.table.frame["city"].dropna()) == {"Oslo", "Rome", "Lima"}


def test_imputation_is_fitted_on_the_training_rows_only(tmp_path: Path) -> None:
    # training rows have x around 10; the held-out rows have huge x: a leak would move the median
    rows = ["x,colour,label"]
    rows += [f"{'NA' if i % 4 == 0 else 10 + i % 3},{'red' if i % 2 else 'blue'},{i % 2}" for i in range(12)]
    rows += [f"{1000 + i},{'green' if i == 0 else 'red'},{i % 2}" for i in range(6)]
    spec = _spec(_csv(tmp_path, "\n".join(rows)))
    raw = load_raw(spec.source, 0)
    train, val, test = np.arange(12), np.arange(12, 15), np.arange(15, 18)
    bundle = build_bundle(raw, spec, train, val, test, seed=0)
    imputed = bundle.summary["encoding"]["imputed"]["x"]
    known = [10 + i % 3 for i in range(12) if i % 4]
    assert imputed == {"trainingCells": 3, "strategy": "median", "value": float(np.median(known))}
    # 'green' occurs only in a held-out row: not a learned category, encoded as no category at all
    assert bundle.summary["encoding"]["categories"]["colour"]["values"] == ["blue", "red"]
    first_val = bundle.val.tensors[0][0]  # type: ignore[attr-defined]
    assert first_val[1:].sum() == 0 and first_val[0] == 1000


def test_drop_leaves_out_rows_with_a_missing_cell_and_impute_keeps_them(tmp_path: Path) -> None:
    path = _csv(tmp_path, PEOPLE)
    imputed = load_data(_spec(path), seed=0)
    dropped = load_data(_spec(path, missingValues={"strategy": "drop"}), seed=0)
    assert imputed.summary["table"]["rowsUsed"] == 10 and imputed.summary["table"]["rowsDropped"] == 0
    # rows 2, 4, 6 and 10 have a missing cell
    assert dropped.summary["table"]["rowsDropped"] == 4 and dropped.summary["table"]["rowsUsed"] == 6
    assert len(_features(dropped)) == 6 and "imputed" not in dropped.summary["encoding"]
    assert bool(torch.isfinite(_features(dropped)).all())


def test_constant_fills_and_ordinal_encoding(tmp_path: Path) -> None:
    spec = _spec(
        _csv(tmp_path, PEOPLE),
        missingValues={"numeric": "constant", "fillValue": -1.0, "categorical": "constant"},
        categorical={"encoding": "ordinal"},
    )
    raw = load_raw(spec.source, 0)
    everything = np.arange(10)
    bundle = build_bundle(raw, spec, everything, everything[:2], everything[:2], seed=0)
    assert bundle.feature_names == ["age", "income", "plan", "city"]
    assert bundle.summary["encoding"]["categories"]["city"]["values"] == ["Lima", "Oslo", "Rome", "missing"]
    x = bundle.train.tensors[0]  # type: ignore[attr-defined]
    assert x[1, 0] == -1.0 and x[3, 3] == 3.0  # row 2's age, row 4's city


def test_rare_categories_share_one_feature(tmp_path: Path) -> None:
    rows = ["tag,label"] + [f"{'common' if i % 2 else f'rare{i}'},{i % 2}" for i in range(40)]
    bundle = load_data(_spec(_csv(tmp_path, "\n".join(rows)), categorical={"maxCategories": 3}), seed=0)
    assert bundle.input_shape == (3,)
    assert bundle.feature_names is not None and "tag_infrequent_sklearn" in bundle.feature_names


def test_listed_categorical_columns_override_detection(tmp_path: Path) -> None:
    text = "zip,score,label\n" + "\n".join(f"{1000 + i % 3},{i},{i % 2}" for i in range(20))
    bundle = load_data(_spec(_csv(tmp_path, text), file={"categoricalColumns": ["zip"]}), seed=0)
    assert bundle.summary["encoding"]["categoricalColumns"] == ["zip"]
    assert bundle.input_shape == (4,)


def test_ignored_columns_are_not_features(tmp_path: Path) -> None:
    text = "id,x,label\n" + "\n".join(f"u{i},{i},{i % 2}" for i in range(20))
    bundle = load_data(_spec(_csv(tmp_path, text), file={"ignoreColumns": ["id"]}), seed=0)
    assert bundle.feature_names == ["x"]


def test_feature_names_follow_feature_selection(tmp_path: Path) -> None:
    text = "a,const,b,label\n" + "\n".join(f"{i},5,{i % 3},{i % 2}" for i in range(20))
    spec = _spec(_csv(tmp_path, text), featureSelection={"method": "varianceThreshold"})
    assert load_data(spec, seed=0).feature_names == ["a", "b"]


def _error(tmp_path: Path, text: str, **spec: Any) -> str:
    with pytest.raises(ValueError) as caught:
        load_data(_spec(_csv(tmp_path, text), **spec), seed=0)
    return str(caught.value)


def test_a_missing_label_names_the_column_and_row(tmp_path: Path) -> None:
    text = "x,label\n" + "\n".join(f"{i},{'NA' if i == 6 else i % 2}" for i in range(20))
    message = _error(tmp_path, text)
    assert "spec.data.source.file.targetColumn" in message
    assert "column 'label' has no label in row 7;" in message and "drop" in message
    dropped = load_data(_spec(_csv(tmp_path, text), missingValues={"strategy": "drop"}), seed=0)
    assert dropped.summary["table"]["rowsDropped"] == 1


def test_a_word_in_a_numeric_column_names_the_column_and_row(tmp_path: Path) -> None:
    text = "age,label\n" + "\n".join(f"{'thirty' if i == 11 else 30 + i},{i % 2}" for i in range(20))
    message = _error(tmp_path, text)
    assert "column 'age', row 12 holds 'thirty', not a number" in message
    assert "(19 of its 20 cells are numbers)" in message and "categoricalColumns" in message


def test_a_text_cell_outside_the_listed_categorical_columns_is_an_error(tmp_path: Path) -> None:
    text = "kind,size,label\n" + "\n".join(f"k{i % 2},{'big' if i == 3 else i},{i % 2}" for i in range(20))
    message = _error(tmp_path, text, file={"categoricalColumns": ["kind"]})
    assert "column 'size', row 4 holds 'big'" in message and "not in categoricalColumns" in message


def test_a_non_finite_number_names_the_column_and_row(tmp_path: Path) -> None:
    text = "x,y,label\n" + "\n".join(f"{i},{'inf' if i == 4 else i},{i % 2}" for i in range(20))
    message = _error(tmp_path, text)
    assert "column 'y', row 5 holds 'inf'" in message and "naValues" in message
    several = "x,label\n" + "\n".join(f"{'-inf' if i in (4, 9) else i},{i % 2}" for i in range(20))
    assert "rows 5, 10 like it" in _error(tmp_path, several)


def test_nan_is_a_number_error_when_it_is_not_a_missing_token(tmp_path: Path) -> None:
    text = "x,label\n" + "\n".join(f"{'nan' if i == 2 else i},{i % 2}" for i in range(20))
    message = _error(tmp_path, text, file={"naValues": ["NA"]})
    assert "column 'x', row 3 holds 'nan'" in message


def test_custom_missing_tokens(tmp_path: Path) -> None:
    text = "x,label\n" + "\n".join(f"{'-' if i in (1, 2) else i},{i % 2}" for i in range(20))
    bundle = load_data(_spec(_csv(tmp_path, text), file={"naValues": ["-"]}), seed=0)
    assert bundle.summary["table"]["missingCells"] == {"x": 2}


def test_strategy_error_names_the_first_missing_cell(tmp_path: Path) -> None:
    message = _error(tmp_path, PEOPLE, missingValues={"strategy": "error"})
    assert "missingValues.strategy is error" in message and "column 'age', row 2 is missing" in message


@pytest.mark.parametrize(
    ("file", "field", "fragment"),
    [
        ({"targetColumn": "lable"}, "targetColumn", "'lable' is not a column"),
        ({"ignoreColumns": ["ages"]}, "ignoreColumns", "'ages' is not a column"),
        ({"categoricalColumns": ["plans"]}, "categoricalColumns", "'plans' is not a column"),
        ({"categoricalColumns": ["label"]}, "categoricalColumns", "is the targetColumn"),
        ({"path": "/nonexistent/people.csv"}, "path", "does not exist"),
    ],
)
def test_misspelled_fields_are_named(tmp_path: Path, file: dict[str, Any], field: str, fragment: str) -> None:
    message = _error(tmp_path, PEOPLE, file=file)
    assert f"spec.data.source.file.{field}" in message and fragment in message


def test_an_empty_column_and_a_ragged_file_are_named(tmp_path: Path) -> None:
    empty = "x,blank,label\n" + "\n".join(f"{i},NA,{i % 2}" for i in range(20))
    assert "column 'blank' has no value" in _error(tmp_path, empty)
    ragged = "x,label\n1,0\n2,1,3\n"
    assert "spec.data.source.file.path" in _error(tmp_path, ragged)
