"""Every shipped example keeps working: each `examples/*.yaml` runs with `optikube run --smoke`.

The examples that run on a laptop (built-in or generated data, built-in models) run end to end:
2 trials, the pipeline, results.json. The two that need what no laptop has (a data volume with
CIFAR, pretrained ResNet weights, GPU nodes) are validated and then preflighted in their smoke
form: the trainer's preflight stage loads the stand-in data and builds and runs the model (the
ResNet with its new head and stem, randomly initialized) on one batch. Their full smoke run trains
and evaluates a ResNet in every runtime, which takes 10 minutes and more on 2 cores, too long for
`make test` (its cluster side is `tests/unit/kube/test_kube_resources.py`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from optikube_operator.api import load_job
from optikube_operator.api.runconfig import JobIdentity
from optikube_operator.api.smoke import SMOKE_TRIALS, STAND_IN, smoke_spec
from optikube_operator.runconfig import render_run_config

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).parents[2] / "examples"
END_TO_END = ["quickstart", "multi-objective", "nlp-distillation"]
PREFLIGHT_ONLY = ["image-classification", "multi-node-gpu"]
BIN = Path(sys.executable).parent


def test_every_example_is_covered() -> None:
    assert sorted(END_TO_END + PREFLIGHT_ONLY) == sorted(p.stem for p in EXAMPLES.glob("*.yaml"))


def _run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )


@pytest.mark.timeout(600)
@pytest.mark.parametrize("example", END_TO_END)
def test_the_example_runs_end_to_end_in_its_smoke_form(example: str, tmp_path: Path) -> None:
    manifest = EXAMPLES / f"{example}.yaml"
    out = tmp_path / "out"
    done = _run([str(BIN / "optikube"), "run", str(manifest), "--smoke", "--output", str(out)], 540)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "SMOKE RUN" in done.stdout
    results: dict[str, Any] = json.loads((out / "results.json").read_text())
    expected = smoke_spec(load_job(manifest).spec)
    assert results["smoke"]["changes"] == [change.to_dict() for change in expected.changes]
    assert results["outcome"]["succeeded"] is True, results["outcome"]
    trials = results["trials"]
    assert 1 <= len(trials) <= SMOKE_TRIALS
    assert all(trial["state"] in ("Succeeded", "Pruned") for trial in trials), trials
    assert all(len(trial["intermediate"]) <= 1 for trial in trials)  # one epoch each
    # the pipeline ran every stage the YAML asks for and exported a model that loads
    for objective in load_job(manifest).spec.objectives:
        assert results["bestTrial"]["values"][objective.metric] is not None
    assert results["optimized"]["metrics"]["accuracy"] >= 0
    assert (out / "model").is_dir() and (out / "report.html").is_file()
    for stage in results["stages"]:
        assert stage.get("durationSeconds") is not None, stage


@pytest.mark.timeout(600)
@pytest.mark.parametrize("example", PREFLIGHT_ONLY)
def test_the_example_is_preflighted_with_its_stand_ins(example: str, tmp_path: Path) -> None:
    manifest = EXAMPLES / f"{example}.yaml"
    validated = _run([str(BIN / "optikube"), "validate", str(manifest)], 120)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    job = load_job(manifest)
    smoke = smoke_spec(job.spec)
    stand_ins = {change.path for change in smoke.stand_ins()}
    assert {"spec.data.source", "spec.model.torchvision.pretrained"} <= stand_ins
    assert all(change.kind == STAND_IN for change in smoke.stand_ins())
    config = render_run_config(
        job=JobIdentity.of(job),
        spec=smoke.spec.to_dict(),
        stage="preflight",
        output_dir=str(tmp_path / "preflight"),
    )
    config_path = tmp_path / "run.json"
    config_path.write_text(json.dumps(config))
    done = _run(
        [str(BIN / "python"), "-m", "optikube_trainer", "preflight", "--config", str(config_path)], 540
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    outcome = json.loads((tmp_path / "preflight" / "preflight.json").read_text())
    assert outcome["ok"] is True, outcome
