"""A built-in model's params are checked against the API's table, in the spec, the student and the
search space, each problem naming its field."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from api_corpus_cases import EXAMPLES

from optikube_operator.api.model_params import resolve_builtin_params
from optikube_operator.api.validation import validate_manifest


def quickstart() -> dict[str, Any]:
    documents = yaml.safe_load_all((EXAMPLES / "quickstart.yaml").read_text())
    job: dict[str, Any] = next(d for d in documents if d["kind"] == "OptimizationJob")
    return job


def errors(job: dict[str, Any]) -> list[str]:
    return [str(error) for error in validate_manifest(job)]


@pytest.mark.parametrize(
    ("model", "params", "expected"),
    [
        (
            {"builtin": {"name": "mlp"}},
            {"dim": 64},
            "spec.model.params.dim: dim is not a parameter of the built-in mlp (it takes width, depth);"
            " did you mean width?",
        ),
        (
            {"builtin": {"name": "mlp"}},
            {"width": 0},
            "spec.model.params.width: expected a positive integer, got 0",
        ),
        (
            {"builtin": {"name": "cnn"}},
            {"batchNorm": 1},
            "spec.model.params.batchNorm: expected true or false, got 1",
        ),
        (
            {"builtin": {"name": "textTransformer"}},
            {"width": 30, "heads": 4},
            "spec.model.params.heads: 4 must divide width (30)",
        ),
        (
            {"torchvision": {"name": "resnet18"}},
            {"width": 3},
            "spec.model.params.width: a torchvision model takes no params",
        ),
    ],
)
def test_a_param_the_model_does_not_take_names_the_field(
    model: dict[str, Any], params: dict[str, Any], expected: str
) -> None:
    job = quickstart()
    job["spec"]["model"] = {**model, "params": params}
    job["spec"]["tuning"]["searchSpace"].pop("model.params.width")
    assert errors(job) == [expected]


def test_an_import_path_builder_takes_any_param() -> None:
    job = quickstart()
    job["spec"]["model"] = {"importPath": "my_models:build", "params": {"block": "residual", "dim": 3}}
    job["spec"]["tuning"]["searchSpace"]["model.params.dim"] = {"type": "int", "low": 1, "high": 4}
    del job["spec"]["tuning"]["searchSpace"]["model.params.width"]
    assert errors(job) == []


def test_the_students_params_are_its_own_models() -> None:
    job = quickstart()
    job["spec"]["compression"]["distillation"] = {
        "student": {"builtin": {"name": "mlp"}, "params": {"layers": 1}}
    }
    assert errors(job) == [
        "spec.compression.distillation.student.params.layers: layers is not a parameter of the built-in"
        " mlp (it takes width, depth); did you mean depth?"
    ]


def test_a_search_over_a_param_the_model_does_not_take_names_the_key() -> None:
    job = quickstart()
    space = job["spec"]["tuning"]["searchSpace"]
    space["compression.distillation.student.params.heads"] = {"type": "categorical", "choices": [2, 4]}
    job["spec"]["compression"]["distillation"] = {"student": {"builtin": {"name": "mlp"}}}
    assert errors(job) == [
        'spec.tuning.searchSpace["compression.distillation.student.params.heads"]: heads is not a parameter'
        " of the built-in mlp (it takes width, depth)"
    ]
    del space["compression.distillation.student.params.heads"]
    space["model.params.depth"] = {"type": "int", "low": 0, "high": 3}
    assert errors(job) == [
        'spec.tuning.searchSpace["model.params.depth"].low: 0 is not valid for spec.model.params.depth:'
        " expected a positive integer, got 0"
    ]
    # a trial's run config: its own values applied and checked, the search space not tried again
    assert validate_manifest(job, search_space=False) == []


def test_resolving_fills_defaults_and_takes_whole_floats_as_integers() -> None:
    assert resolve_builtin_params("textTransformer", {"width": 32.0, "heads": 2}) == {
        "width": 32,
        "depth": 2,
        "heads": 2,
        "ffMultiplier": 2,
    }
    with pytest.raises(ValueError, match=r"^model\.params\.widht: widht is not a parameter"):
        resolve_builtin_params("mlp", {"widht": 3})
