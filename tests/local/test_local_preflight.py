"""`optikube run` runs the real trainer's preflight before the first trial: a job whose data or model
cannot run fails in seconds, naming the field, with exit code 2 and no trial launched; and
`optikube validate --data` runs the same preflight on demand."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from local_jobs import log_uniform, mlp_job

from optikube_operator.cli.run import EXIT_SPEC_ERROR, run
from optikube_operator.cli.validate import validate

pytestmark = pytest.mark.slow  # each case starts a real trainer process (torch, scikit-learn)

# The bound. The floor is the trainer's imports (torch, scikit-learn, pandas), read from the
# venv's bytecode (`make install` compiles it): each case takes 4.5 to 6 s in all on an idle 2-core
# machine, the job's own time (started -> failed, as its state file records it) less.
LIMIT_SECONDS = 10.0

JOB: dict[str, Any] = mlp_job(
    "preflight-test",
    seed=3,
    data={"source": {"builtin": "iris"}, "validationSplit": 0.2, "testSplit": 0.2},
    params={"width": 16},
    tuning={
        "sampler": {"type": "random"},
        "maxTrials": 4,
        "parallelTrials": 2,
        "searchSpace": {"training.learningRate": log_uniform(1e-3, 1e-1)},
    },
    training={"epochs": 2, "batchSize": 16},
)


def _csv(path: Path, labels: list[str]) -> Path:
    rows = ["height,weight,label", *(f"{i % 7},{i % 5}.5,{label}" for i, label in enumerate(labels))]
    path.write_text("\n".join(rows) + "\n")
    return path


def _job(tmp_path: Path, case: str) -> tuple[dict[str, Any], str]:
    """A job that cannot run for the reason ``case``, and the field its failure must name."""
    job = copy.deepcopy(JOB)
    spec = job["spec"]
    csv = {"format": "csv", "targetColumn": "label"}
    if case == "missing-file":
        spec["data"]["source"] = {"file": {**csv, "path": str(tmp_path / "nope.csv")}}
        return job, "spec.data.source.file.path"
    if case == "wrong-target-column":
        path = _csv(tmp_path / "data.csv", ["a", "b"] * 30)
        spec["data"]["source"] = {"file": {**csv, "path": str(path), "targetColumn": "lable"}}
        return job, "spec.data.source.file.targetColumn"
    if case == "model-does-not-fit-the-data":
        spec["model"] = {"builtin": {"name": "cnn"}}  # iris is tabular
        return job, "spec.model.builtin.name"
    if case == "class-too-small":
        path = _csv(tmp_path / "data.csv", ["a", "b"] * 30 + ["rare", "rare"])
        spec["data"]["source"] = {"file": {**csv, "path": str(path)}}
        return job, "spec.data.testSplit"
    if case == "non-finite-features":
        features = np.random.default_rng(0).normal(size=(80, 3)).astype(np.float32)
        features[41, 1] = np.nan
        path = tmp_path / "data.npz"
        np.savez(path, x=features, y=np.arange(80) % 2)
        spec["data"]["source"] = {
            "file": {"format": "npz", "path": str(path), "featuresKey": "x", "targetColumn": "y"}
        }
        return job, "spec.data.source"
    raise AssertionError(case)


def _write(tmp_path: Path, job: dict[str, Any]) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    return path


@pytest.mark.parametrize(
    "case",
    [
        "missing-file",
        "wrong-target-column",
        "model-does-not-fit-the-data",
        "class-too-small",
        "non-finite-features",
    ],
)
def test_a_job_that_cannot_run_fails_at_once_naming_the_field_with_no_trial(
    tmp_path: Path, case: str
) -> None:
    job, field = _job(tmp_path, case)
    out = tmp_path / "out"
    result = CliRunner().invoke(run, [str(_write(tmp_path, job)), "--output", str(out)])
    assert result.exit_code == EXIT_SPEC_ERROR, result.output
    assert f"job.yaml: {field}: " in result.output and "no trial was started" in result.output
    state = json.loads((out / "state.json").read_text())
    seconds = (
        datetime.fromisoformat(state["finished"]["time"]) - datetime.fromisoformat(state["startTime"])
    ).total_seconds()
    assert seconds < LIMIT_SECONDS, (case, seconds)
    assert state["trials"] == [] and not (out / "trials").exists() and not (out / "pipeline").exists()
    assert state["finished"]["reason"] == "PreflightFailed" and state["finished"]["message"].startswith(field)
    assert state["preflight"]["phase"] == "Failed"


def test_a_param_the_model_does_not_take_is_refused_before_any_process(tmp_path: Path) -> None:
    job = copy.deepcopy(JOB)
    job["spec"]["model"]["params"] = {"dim": 16}
    out = tmp_path / "out"
    result = CliRunner().invoke(run, [str(_write(tmp_path, job)), "--output", str(out)])
    assert result.exit_code == EXIT_SPEC_ERROR
    assert "spec.model.params.dim: dim is not a parameter of the built-in mlp" in result.output
    assert not out.exists()


def test_validate_data_runs_the_same_preflight(tmp_path: Path) -> None:
    bad, field = _job(tmp_path, "wrong-target-column")
    plain = CliRunner().invoke(validate, [str(_write(tmp_path, bad))])
    assert plain.exit_code == 0  # the schema cannot see inside the file
    refused = CliRunner().invoke(validate, ["--data", str(_write(tmp_path, bad))])
    assert refused.exit_code == 1 and f"job.yaml: {field}: 'lable' is not a column" in refused.output
    passed = CliRunner().invoke(validate, ["--data", str(_write(tmp_path, JOB))])
    assert passed.exit_code == 0, passed.output
    assert "150 examples, 3 classes" in passed.output
