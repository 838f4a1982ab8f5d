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
    (onnx_row,) = [line for line in text.splitlines() if line.strip().startswith("ORT ")]
    onnx = next(c for c in REAL["runtime"]["candidates"] if c["runtime"] == "onnx")
    assert f"{onnx['latencyMs']['batch1P50']:.4g}" in onnx_row and "yes" in onnx_row
    assert "It ships the model for ONNX Runtime" in text
    assert "within the budget" in text


def _with_this_pipelines_records() -> dict[str, Any]:
    """The quickstart's document with what the pipeline now also records: an int8 and a float form
    per runtime (the float one shipped), both speed-ups, and a stage the latency check skipped."""
    results = json.loads(json.dumps(REAL))
    for candidate in list(results["runtime"]["candidates"]):
        floating = {**json.loads(json.dumps(candidate)), "quantization": "none (float)"}
        results["runtime"]["candidates"].append(floating)
    results["runtime"]["candidates"][-1]["shipped"] = True
    results["optimized"]["speedup"] = {
        "vsPyTorch": {"batch1": 2.39, "batch32": 2.09},
        "vsOnnxRuntime": {"batch1": 1.05, "batch32": 1.25},
    }
    results["stages"].append(
        {
            "name": "lowRank",
            "skipped": True,
            "changes": {},
            "budget": {
                "outcome": "skipped",
                "reason": "the stage made the model slower at batch 1 in ONNX Runtime, 0.031 to 0.036 ms",
                "attempts": [{"rankRatio": 0.5, "drop": 0.0}],
                "latencyCheck": {
                    "batch1": {"runtimeAfter": "onnx", "speedup": 0.86},
                    "batch32": {"runtimeAfter": "onnx", "speedup": 1.01},
                    "slower": True,
                },
            },
        }
    )
    return results


def test_at_80_columns_no_word_is_broken_and_both_baselines_are_said() -> None:
    results = _with_this_pipelines_records()
    console = Console(width=80, record=True, color_system=None)
    print_pipeline_summary(console, results)
    text = console.export_text()
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    table = lines[lines.index(next(line for line in lines if line.startswith("Runtimes tried"))) :]
    rows = [line.split() for line in table if line.strip().startswith(("eager ", "compiled ", "ORT "))]
    # every cell's words whole on one line: runtime, form (two words or one), five numbers or words
    assert [row[0] for row in rows] == ["eager", "compiled", "ORT"] * 2
    assert all(row[1] in ("int8", "float") for row in rows)
    assert "Runtimes: eager = eager PyTorch, compiled = torch.compile, ORT = ONNX Runtime." in text
    assert "int8 w = torchao int8 weight-only (Linear) or int8 weights, folded to" in text
    flat = " ".join(text.split())
    assert (
        "At batch 1 the optimized model is 2.39x faster than the baseline in PyTorch and 1.05x faster than"
        " the baseline exported to ONNX Runtime (at batch 32 2.09x faster and 1.25x faster)." in flat
    )
    assert "Skipped because they made the shipped runtime slower: lowRank." in flat


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
