"""Contract 2: run configs rendered by the operator load with the trainer's own parser.

The trainer's parser is imported here, never by the operator: the last test proves that
importing the operator's modules does not pull torch in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from optikube_operator.api import SpecError, load_job
from optikube_operator.core import JobSettings, ObservedState, StartTrial, decide
from optikube_operator.runconfig import JobIdentity, render_run_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def _job(path: Path) -> tuple[JobIdentity, dict[str, Any]]:
    job = load_job(path)
    return JobIdentity.of(job, uid="uid-1"), job.spec.to_dict()


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_trial_and_pipeline_configs_of_every_example_load_in_the_trainer(
    example: Path, tmp_path: Path
) -> None:
    from optikube_operator.api.runconfig import load_run_config

    identity, spec = _job(example)
    from datetime import UTC, datetime

    starts = [
        a
        for a in decide(
            JobSettings.from_spec(load_job(example).spec, identity.name),
            ObservedState(),
            datetime(2026, 1, 1, tzinfo=UTC),
        )
        if isinstance(a, StartTrial)
    ]
    for start in starts:
        rendered = render_run_config(
            job=identity,
            spec=spec,
            stage="trial",
            output_dir=str(tmp_path / f"trial-{start.number}"),
            trial_number=start.number,
            params=start.params,
        )
        path = tmp_path / f"trial-{start.number}.json"
        path.write_text(json.dumps(rendered))
        config = load_run_config(path)
        assert config.stage == "trial" and config.trial is not None
        assert config.trial.number == start.number
        for dotted, value in start.params.items():
            node: Any = rendered["spec"]
            for segment in dotted.split("."):
                node = node[segment]
            assert node == value
    pipeline = render_run_config(job=identity, spec=spec, stage="pipeline", output_dir=str(tmp_path / "p"))
    (tmp_path / "pipeline.json").write_text(json.dumps(pipeline))
    loaded = load_run_config(tmp_path / "pipeline.json")
    assert loaded.stage == "pipeline" and loaded.trial is None
    assert loaded.job.name == identity.name


def test_a_sampled_value_that_breaks_a_rule_is_a_spec_error_naming_the_field() -> None:
    identity, spec = _job(ROOT / "examples" / "quickstart.yaml")
    with pytest.raises(SpecError, match=r"spec\.training\.learningRate|training\.learningRate"):
        render_run_config(
            job=identity,
            spec=spec,
            stage="trial",
            output_dir="/out",
            trial_number=0,
            params={"training.learningRate": -1.0},
        )


def test_operator_modules_never_import_torch() -> None:
    modules = [
        "optikube_operator.core",
        "optikube_operator.runconfig",
        "optikube_operator.local.backend",
        "optikube_operator.cli.run",
        "optikube_operator.reports.job_html",
    ]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))\n"
        "print('clean')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clean"


def test_examples_parse_as_yaml() -> None:
    assert EXAMPLES, "examples/ holds the manifests the contract is checked against"
    for example in EXAMPLES:
        assert next(yaml.safe_load_all(example.read_text()))["kind"] == "OptimizationJob"


def test_the_api_the_trainer_imports_needs_only_pydantic_and_yaml() -> None:
    code = (
        "import sys\n"
        "import optikube_operator.api, optikube_operator.api.runconfig, optikube_operator.api.progress\n"
        "heavy = ('kopf', 'kubernetes', 'optuna', 'aiohttp', 'torch', 'rich', 'click')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
