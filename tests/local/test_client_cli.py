"""The client's commands on local jobs (`--local --output DIR`): the same client underneath, so
these check what they print and how they exit; jobs are run with the stand-in trainer."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from local_jobs import log_uniform, median_search, mlp_job

from optikube_operator.cli.main import cli
from optikube_operator.client import Client
from optikube_operator.client.local import LocalJobs

RUNNER = [sys.executable, str(Path(__file__).with_name("client_fake_runner.py"))]
ROOT = Path(__file__).resolve().parents[2]


def _digits_search(name: str, *, seed: int, trials: int, epochs: int) -> dict[str, Any]:
    """A random search of the learning rate on digits, one trial at a time."""
    space = {"training.learningRate": log_uniform(1e-4, 1e-1)}
    return mlp_job(
        name,
        seed=seed,
        data={"source": {"builtin": "digits"}},
        tuning=median_search({"type": "random"}, trials=trials, parallel=1, space=space),
        training={"epochs": epochs, "learningRate": 0.01},
    )


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding one succeeded local job, `cli-job`."""
    root = tmp_path_factory.mktemp("jobs")
    job = _digits_search("cli-job", seed=3, trials=3, epochs=2)
    Client(LocalJobs(root, runner=RUNNER, poll_seconds=0.1)).submit(job).wait(timeout=120)
    return root


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_get_lists_the_printer_columns_and_the_trials(finished: Path) -> None:
    code, output = _run("get", "--local", "--output", str(finished))
    assert code == 0, output
    header, row = output.strip().splitlines()
    assert [name.strip() for name in header.split("   ") if name.strip()] == [
        "NAME",
        "PHASE",
        "STAGE",
        "TRIALS",
        "BEST",
        "SIZE RATIO",
        "SPEEDUP",
        "RUNTIME",
        "AGE",
    ]
    assert row.split()[:4] == ["cli-job", "Succeeded", "train", "3"]
    code, output = _run("get", "cli-job", "-t", "--local", "--output", str(finished))
    assert code == 0 and "Trials of cli-job" in output and "learningRate" in output


def test_describe_shows_conditions_budget_and_the_best_trial(finished: Path) -> None:
    code, output = _run("describe", "cli-job", "--local", "--output", str(finished))
    assert code == 0, output
    assert "phase: Succeeded" in output and "Conditions" in output and "Succeeded" in output
    assert "trials: 3 of 3 finished" in output and "best trial" in output
    assert "Baseline vs optimized" in output and str(finished / "cli-job" / "results.json") in output


def test_results_as_json_is_the_clients_document(finished: Path) -> None:
    code, output = _run("results", "cli-job", "-o", "json", "--local", "--output", str(finished))
    assert code == 0, output
    document = json.loads(output)
    answered = Client(LocalJobs(finished)).get("cli-job").results().to_dict()
    assert document == json.loads(json.dumps(answered))
    assert document["phase"] == "Succeeded" and document["optimized"]["sizeBytes"] == 4000


def test_watch_prints_one_plain_line_per_update_and_exits_by_the_outcome(finished: Path) -> None:
    code, output = _run("watch", "cli-job", "--local", "--output", str(finished))
    assert code == 0, output
    lines = output.strip().splitlines()
    # the phase that ended the job comes after its trials, then the best trial
    assert lines[-2] == "cli-job: phase - -> Succeeded" and "\x1b[" not in output
    assert "cli-job: trial 0 started" in output and lines[-1].startswith("best trial ")


def test_errors_exit_with_what_to_do(tmp_path: Path, finished: Path) -> None:
    code, output = _run("describe", "nope", "--local", "--output", str(finished))
    assert code == 1 and "error (NotFound)" in output and "What to do:" in output
    bad = ROOT / "tests" / "api_corpus" / "invalid" / "training-zero-epochs.yaml"
    code, output = _run("submit", str(bad), "--local", "--output", str(tmp_path))
    assert code == 2 and "spec.training.epochs" in output and not list(tmp_path.iterdir())
    code, output = _run("get", "--local", "-n", "default")
    assert code == 2 and "exclude each other" in output


def test_logs_and_delete(tmp_path: Path) -> None:
    client = Client(LocalJobs(tmp_path, runner=RUNNER, poll_seconds=0.1))
    job = _digits_search("short", seed=1, trials=1, epochs=1)
    client.submit(job).wait(timeout=120)
    code, output = _run("logs", "short", "--trial", "5", "--local", "--output", str(tmp_path))
    assert code == 1 and "trial 5 of job 'short' has no log yet" in output
    code, output = _run("delete", "short", "--local", "--output", str(tmp_path))
    assert code == 0 and output.strip() == "deleted short" and not (tmp_path / "short").exists()
