"""What `optikube run` prints when a job is done: the pipeline's outcome as tables and sentences,
from a real quickstart pipeline's results.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console

from optikube_operator.cli.summary import best_trial_line, print_pipeline_summary

FIXTURE = Path(__file__).parents[2] / "local" / "fixtures" / "quickstart-run" / "pipeline-results.json"
REAL = json.loads(FIXTURE.read_text())


def _printed(results: dict[str, Any]) -> str:
    console = Console(width=200, record=True, color_system=None)
    print_pipeline_summary(console, results)
    return console.export_text()


def test_the_terminal_shows_baseline_vs_optimized_the_runtimes_and_the_budget() -> None:
    text = _printed(REAL)
    size_row = next(line for line in text.splitlines() if "size on disk" in line)
    assert "71.0 kB" in size_row and "8.2 kB" in size_row and "0.116x" in size_row
    shipped = REAL["runtime"]["chosen"]
    assert shipped == "onnx"
    (onnx_row,) = [line for line in text.splitlines() if line.strip().startswith("ONNX Runtime")]
    onnx = next(c for c in REAL["runtime"]["candidates"] if c["runtime"] == "onnx")
    assert f"{onnx['latencyMs']['batch1P50']:.4g}" in onnx_row and "yes" in onnx_row
    assert "It ships the model for ONNX Runtime" in text
    assert "within the budget" in text


def test_a_runtime_that_failed_shows_why() -> None:
    results = json.loads(json.dumps(REAL))
    failed = {"runtime": "compiled", "quantization": "", "error": "no compiler"}
    results["runtime"]["candidates"].append(failed)
    assert "failed: no compiler" in _printed(results)


def test_a_job_without_a_pipeline_result_prints_no_tables() -> None:
    assert _printed({}) == ""


def test_the_best_trial_reads_as_words() -> None:
    results = {
        "bestTrial": {
            "number": 3,
            "values": {"accuracy": 0.9555555555555556, "f1": 0.95},
            "params": {"training.learningRate": 0.005018194236028668},
        },
        "search": {"objectives": [{"metric": "accuracy", "direction": "maximize"}]},
    }
    assert best_trial_line(results) == "best trial 3: accuracy 0.9556, with training.learningRate = 0.005018"
    assert best_trial_line({}) is None
