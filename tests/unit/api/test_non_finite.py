"""No float field of the API takes a non-finite number: YAML's `.nan`, `.inf` and `-.inf` are floats
to PyYAML, and each comparison with NaN is false, so a NaN would slip past every bound. Each is
refused naming the field, by the models, by `optikube validate` and by `load_job`."""

from __future__ import annotations

import importlib
import math
import pkgutil
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
import yaml
from api_corpus_cases import EXAMPLES
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import optikube_operator.api as api_package
from optikube_operator.api import SpecError, load_job, validate_manifest
from optikube_operator.api.base import ApiModel
from optikube_operator.api.validation import model_errors
from optikube_operator.cli.validate import validate

NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
FINITE_MESSAGE = "must be a finite number"
# YAML 1.1's spellings of the non-finite floats, as PyYAML reads them
YAML_SPELLINGS = (".nan", ".NaN", ".NAN", ".inf", ".Inf", "+.inf", "-.inf", "-.Inf")


def _api_models() -> list[type[ApiModel]]:
    for module in pkgutil.iter_modules(api_package.__path__):
        importlib.import_module(f"{api_package.__name__}.{module.name}")
    found: list[type[ApiModel]] = []
    pending: list[type[ApiModel]] = [ApiModel]
    while pending:
        model = pending.pop()
        for child in model.__subclasses__():
            if child.__module__.startswith(api_package.__name__) and child not in found:
                found.append(child)
                pending.append(child)
    return sorted(found, key=lambda model: model.__qualname__)


def _holding(annotation: Any, value: float) -> Any | None:
    """A value of `annotation`'s shape whose float is `value`; None when the type holds no float."""
    origin = get_origin(annotation)
    if annotation is float:
        return value
    if origin is Union or origin is types.UnionType:
        return next((v for a in get_args(annotation) if (v := _holding(a, value)) is not None), None)
    if origin is dict:
        inner = _holding(get_args(annotation)[1], value)
        return None if inner is None else {"key": inner}
    if origin is list:
        inner = _holding(get_args(annotation)[0], value)
        return None if inner is None else [inner]
    if hasattr(annotation, "__metadata__"):  # Annotated[...]
        return _holding(get_args(annotation)[0], value)
    return None


FLOAT_FIELDS = [
    (model, info.alias or name, info.annotation)
    for model in _api_models()
    for name, info in model.model_fields.items()
    if _holding(info.annotation, 0.0) is not None
]


def test_the_api_has_float_fields_in_every_part_of_the_spec() -> None:
    owners = {model.__module__.rsplit(".", 1)[1] for model, _, _ in FLOAT_FIELDS}
    assert {"tuning", "training", "compression", "data", "status", "progress"} <= owners
    assert len(FLOAT_FIELDS) >= 40


@pytest.mark.parametrize(
    ("model", "field", "annotation"),
    FLOAT_FIELDS,
    ids=[f"{model.__name__}.{field}" for model, field, _ in FLOAT_FIELDS],
)
@settings(max_examples=6, deadline=None)
@given(value=NON_FINITE)
def test_every_float_field_refuses_a_non_finite_number_naming_itself(
    model: type[ApiModel], field: str, annotation: Any, value: float
) -> None:
    _, errors = model_errors(model, {field: _holding(annotation, value)})
    mine = [e for e in errors if e.path == field or e.path.startswith((f"{field}.", f"{field}["))]
    assert any("finite" in e.message for e in mine), [str(e) for e in errors]


def _float_leaves(value: Any, path: str) -> list[str]:
    if isinstance(value, float):
        return [path]
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _float_leaves(item, _child(path, key))]
    if isinstance(value, list):
        return [leaf for index, item in enumerate(value) for leaf in _float_leaves(item, f"{path}[{index}]")]
    return []


def _child(path: str, key: str) -> str:
    if "." in key:
        return f'{path}["{key}"]'
    return f"{path}.{key}" if path else key


def _set(document: dict[str, Any], path: str, value: float) -> None:
    tokens = yaml_path_tokens(path)
    node: Any = document
    for token in tokens[:-1]:
        node = node[token]
    node[tokens[-1]] = value


def yaml_path_tokens(path: str) -> list[str | int]:
    """`spec.tuning.searchSpace["a.b"].low` -> ['spec', 'tuning', 'searchSpace', 'a.b', 'low']."""
    tokens: list[str | int] = []
    rest = path
    while rest:
        if rest.startswith('["'):
            key, _, rest = rest[2:].partition('"]')
            tokens.append(key)
        elif rest.startswith("["):
            index, _, rest = rest[1:].partition("]")
            tokens.append(int(index))
        else:
            rest = rest.removeprefix(".")
            cut = min((i for i in (rest.find("."), rest.find("[")) if i >= 0), default=len(rest))
            tokens.append(rest[:cut])
            rest = rest[cut:]
    return tokens


EXAMPLE_JOBS = [
    next(d for d in yaml.safe_load_all(path.read_text()) if d.get("kind") == "OptimizationJob")
    for path in sorted(EXAMPLES.glob("*.yaml"))
]
EXAMPLE_LEAVES = [(index, leaf) for index, job in enumerate(EXAMPLE_JOBS) for leaf in _float_leaves(job, "")]


def test_the_examples_write_float_fields_throughout_the_spec() -> None:
    assert len(EXAMPLE_LEAVES) >= 20
    assert {"spec.training.learningRate", "spec.data.validationSplit"} <= {leaf for _, leaf in EXAMPLE_LEAVES}


@settings(max_examples=60, deadline=None)
@given(case=st.sampled_from(EXAMPLE_LEAVES), value=NON_FINITE)
def test_a_non_finite_number_anywhere_in_an_example_is_refused_naming_the_field(
    case: tuple[int, str], value: float
) -> None:
    index, leaf = case
    document = yaml.safe_load(yaml.safe_dump(EXAMPLE_JOBS[index]))
    _set(document, leaf, value)
    errors = validate_manifest(document)
    assert [str(e) for e in errors] == [f"{leaf}: {FINITE_MESSAGE}"]


def _quickstart_with(field: str, spelling: str) -> str:
    text = (EXAMPLES / "quickstart.yaml").read_text().split("\n---\n")[0]
    block, leaf = field.rsplit(".", 1)
    anchor = {"spec.tuning": "  tuning:\n", "spec.training": "  training:\n"}[block]
    assert anchor in text
    return text.replace(anchor, f"{anchor}    {leaf}: {spelling}\n", 1)


@pytest.mark.parametrize("field", ["spec.tuning.goal", "spec.training.gradientClipNorm"])
@pytest.mark.parametrize("spelling", YAML_SPELLINGS)
def test_yaml_non_finite_spellings_are_refused_by_validate_and_load_job(
    tmp_path: Path, field: str, spelling: str
) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(_quickstart_with(field, spelling))
    result = CliRunner().invoke(validate, [str(path)])
    assert result.exit_code == 1
    assert f"{path}: {field}: {FINITE_MESSAGE}" in result.output
    with pytest.raises(SpecError) as refused:
        load_job(path)
    assert [str(e) for e in refused.value.errors] == [f"{field}: {FINITE_MESSAGE}"]


def test_a_non_finite_categorical_choice_is_refused_where_it_would_land() -> None:
    quickstart = next(job for job in EXAMPLE_JOBS if job["metadata"]["name"] == "quickstart")
    document = yaml.safe_load(yaml.safe_dump(quickstart))
    document["spec"]["tuning"]["searchSpace"]["training.learningRate"] = {
        "type": "categorical",
        "choices": [0.01, math.nan],
    }
    (error,) = validate_manifest(document)
    assert error.path == 'spec.tuning.searchSpace["training.learningRate"].choices[1]'
    assert "spec.training.learningRate: must be a finite number" in error.message
