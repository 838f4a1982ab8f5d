"""The entry point in one process: exit codes, JSON-line events and results.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from optikube_operator.api.runconfig import parse_run_config
from optikube_trainer.__main__ import main
from optikube_trainer.data import load_job_data
from optikube_trainer.recipe import read_recipe


def _write(path: Path, output_dir: Path, **spec_overrides: Any) -> Path:
    spec: dict[str, Any] = {
        "data": {"source": {"builtin": "iris"}},
        "model": {"builtin": {"name": "mlp"}, "params": {"width": 8}},
        "objectives": [{"metric": "accuracy", "direction": "maximize"}],
        "training": {"epochs": 2, "batchSize": 16, "learningRate": 0.01},
        **spec_overrides,
    }
    path.write_text(
        json.dumps(
            {
                "stage": "trial",
                "job": {"name": "main"},
                "trial": {"number": 4, "params": {}},
                "spec": spec,
                "outputDir": str(output_dir),
            }
        )
    )
    return path


@pytest.fixture(autouse=True)
def single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "OPTIKUBE_PROGRESS_URL", "OPTIKUBE_METRICS_PORT"):
        monkeypatch.delenv(name, raising=False)


def test_trial_prints_events_and_writes_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _write(tmp_path / "run.json", tmp_path / "out")
    assert main(["trial", "--config", str(config), "--cpu"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [e["type"] for e in events] == ["intermediate", "intermediate", "final"]
    assert all(e["trial"] == 4 for e in events)
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["values"] == events[-1]["values"]
    assert (tmp_path / "out" / "checkpoints" / "checkpoint.pt").exists()
    # the tie-breakers and the validation-resolution check read these (docs/tuning.md)
    spec = parse_run_config(json.loads(config.read_text())).spec
    validation = load_job_data(read_recipe(spec, world_size=1)).val
    assert results["values"]["validationSamples"] == len(validation) > 0  # type: ignore[arg-type]
    assert results["values"]["valLoss"] > 0 and results["values"]["parameters"] > 0


def test_bad_config_exits_2_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _write(tmp_path / "run.json", tmp_path / "out", training={"learningRate": "fast"})
    assert main(["trial", "--config", str(config)]) == 2
    assert "spec.training.learningRate" in capsys.readouterr().err


def test_stage_must_match_the_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _write(tmp_path / "run.json", tmp_path / "out")
    assert main(["pipeline", "--config", str(config)]) == 2
    assert "does not match" in capsys.readouterr().err


def test_a_failing_stage_reports_failed_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _write(
        tmp_path / "run.json",
        tmp_path / "out",
        data={"source": {"file": {"path": str(tmp_path / "missing.csv"), "format": "csv"}}},
    )
    assert main(["trial", "--config", str(config), "--cpu"]) == 1
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert events[-1]["type"] == "failed" and "missing.csv" in events[-1]["message"]
