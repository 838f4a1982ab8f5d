"""The preflight: each problem that would fail every trial fails it first, naming the spec field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from optikube_operator.api import OptimizationJobSpec
from optikube_operator.api.runconfig import parse_run_config
from optikube_operator.runconfig import JobIdentity, render_run_config
from optikube_trainer.__main__ import main
from optikube_trainer.preflight import PREFLIGHT_OUTCOME_FILE, PreflightError, preflight_stage, run_preflight


def spec(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "data": {"source": {"builtin": "iris"}, "validationSplit": 0.2, "testSplit": 0.2},
        "model": {"builtin": {"name": "mlp"}, "params": {"width": 8}},
        "objectives": [{"metric": "accuracy", "direction": "maximize"}],
        "training": {"epochs": 1, "batchSize": 16},
    }
    base.update(changes)
    return base


def parsed(raw: dict[str, Any]) -> OptimizationJobSpec:
    return OptimizationJobSpec.model_validate(raw, by_alias=True, by_name=False)


def csv_file(tmp_path: Path, labels: list[str]) -> Path:
    rows = ["a,b,label", *(f"{i},{i % 3},{label}" for i, label in enumerate(labels))]
    path = tmp_path / "data.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def refused(raw: dict[str, Any]) -> PreflightError:
    with pytest.raises(PreflightError) as caught:
        run_preflight(parsed(raw))
    return caught.value


def test_a_job_that_can_run_passes_with_what_it_found() -> None:
    report = run_preflight(parsed(spec()))
    assert (report.samples, report.classes, report.input_shape) == (150, 3, (4,))
    assert report.parameters == 4 * 8 + 8 + 8 * 8 + 8 + 8 * 3 + 3


def test_a_missing_file_names_the_path(tmp_path: Path) -> None:
    source = {"file": {"path": str(tmp_path / "nope.csv"), "format": "csv", "targetColumn": "label"}}
    error = refused(spec(data={"source": source, "validationSplit": 0.2}))
    assert error.field == "spec.data.source.file.path" and "does not exist" in error.message


def test_a_misspelled_target_column_names_the_field(tmp_path: Path) -> None:
    path = csv_file(tmp_path, ["x", "y"] * 20)
    source = {"file": {"path": str(path), "format": "csv", "targetColumn": "lable"}}
    error = refused(spec(data={"source": source, "validationSplit": 0.2}))
    assert error.field == "spec.data.source.file.targetColumn" and "'lable'" in error.message


@pytest.mark.parametrize(
    ("data", "field", "needed"),
    [
        ({"validationSplit": 0.2, "testSplit": 0.2}, "spec.data.testSplit", 3),
        ({"validationSplit": 0.2, "testSplit": 0.0}, "spec.data.validationSplit", 2),
        ({"validationSplit": 0.2, "crossValidation": {"folds": 5}}, "spec.data.crossValidation.folds", 6),
    ],
)
def test_a_class_too_small_for_the_splits_names_the_split(
    tmp_path: Path, data: dict[str, Any], field: str, needed: int
) -> None:
    rare = needed - 1
    path = csv_file(tmp_path, ["common"] * 40 + ["rare"] * rare)
    source = {"file": {"path": str(path), "format": "csv", "targetColumn": "label"}}
    error = refused(spec(data={"source": source, **data}))
    assert error.field == field
    assert f"class 'rare' has {rare} example" in error.message and f"the {needed} that" in error.message


def test_enough_examples_of_every_class_pass(tmp_path: Path) -> None:
    path = csv_file(tmp_path, ["common"] * 40 + ["rare"] * 3)
    source = {"file": {"path": str(path), "format": "csv", "targetColumn": "label"}}
    assert run_preflight(parsed(spec(data={"source": source, "validationSplit": 0.2}))).classes == 2


def test_non_finite_features_are_refused(tmp_path: Path) -> None:
    features = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)
    features[17, 2] = np.inf
    path = tmp_path / "data.npz"
    np.savez(path, x=features, y=np.arange(60) % 2)
    source = {"file": {"path": str(path), "format": "npz", "featuresKey": "x", "targetColumn": "y"}}
    error = refused(spec(data={"source": source, "validationSplit": 0.2}))
    assert (
        error.field == "spec.data.source"
        and "not a finite number" in error.message
        and "example 17" in error.message
        and "in column 'x[:, 2]'," in error.message
    )


def test_a_model_that_does_not_fit_the_data_names_the_model_field() -> None:
    error = refused(spec(model={"builtin": {"name": "cnn"}}))
    assert error.field == "spec.model.builtin.name" and "cnn needs image data" in error.message


def test_the_student_is_built_and_run_too() -> None:
    student = {"student": {"builtin": {"name": "textTransformer"}}}
    error = refused(spec(compression={"distillation": student}))
    assert error.field == "spec.compression.distillation.student.builtin.name"
    report = run_preflight(
        parsed(spec(compression={"distillation": {"student": {"builtin": {"name": "mlp"}}}}))
    )
    assert report.student_parameters == 4 * 64 + 64 + 64 * 64 + 64 + 64 * 3 + 3  # the student's own width


def test_the_stage_exits_2_with_the_field_in_the_file_and_the_termination_message(tmp_path: Path) -> None:
    source = {"file": {"path": str(tmp_path / "nope.csv"), "format": "csv", "targetColumn": "label"}}
    config = render_run_config(
        job=JobIdentity(name="pf"),
        spec=spec(data={"source": source, "validationSplit": 0.2}),
        stage="preflight",
        output_dir=str(tmp_path / "out"),
    )
    assert parse_run_config(config).stage == "preflight"
    path = tmp_path / "run.json"
    path.write_text(json.dumps(config))
    assert main(["preflight", "--config", str(path)]) == 2
    outcome = json.loads((tmp_path / "out" / PREFLIGHT_OUTCOME_FILE).read_text())
    assert outcome["ok"] is False and outcome["field"] == "spec.data.source.file.path"
    termination = tmp_path / "termination-log"
    termination.write_text("")
    assert preflight_stage(parse_run_config(config), termination) == 2
    assert termination.read_text().startswith("spec.data.source.file.path: ")
