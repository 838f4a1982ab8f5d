"""The job-level report.html: baseline vs optimized, the trials, the link to the pipeline's report."""

from __future__ import annotations

from optikube_operator.html_report import comparison_rows, render_report

RESULTS = {
    "job": "demo",
    "outcome": {"reason": "Succeeded", "succeeded": True},
    "baseline": {
        "metrics": {"accuracy": 0.96},
        "parameters": 16000,
        "sizeBytes": 90000,
        "latencyMs": {"batch1P50": 0.5, "batch32P50": 4.0},
    },
    "optimized": {
        "metrics": {"accuracy": 0.95},
        "parameters": 6000,
        "sizeBytes": 30000,
        "latencyMs": {"batch1P50": 0.25, "batch32P50": 2.0},
    },
    "trials": [
        {
            "number": 0,
            "state": "Succeeded",
            "params": {"model.params.width": 96},
            "values": {"accuracy": 0.95},
        },
        {
            "number": 1,
            "state": "Failed",
            "params": {"model.params.width": 32},
            "values": {},
            "message": "the trainer exited with code 1",
        },
    ],
    "search": {"objectives": [{"metric": "accuracy", "direction": "maximize"}], "chosenTrial": 0},
    "artifacts": {"pipelineReport": "pipeline/report.html"},
}


def test_comparison_rows_pair_baseline_and_optimized() -> None:
    rows = {name: (before, after) for name, before, after in comparison_rows(RESULTS)}
    assert rows["accuracy"] == (0.96, 0.95)
    assert rows["parameters"] == (16000.0, 6000.0)
    assert rows["latency batch 1 p50 (ms)"] == (0.5, 0.25)
    assert "MACs" not in rows  # absent on both sides


def test_report_shows_the_comparison_the_trials_and_the_pipeline_report() -> None:
    page = render_report(RESULTS, study=None)
    assert page.startswith("<!doctype html>") and "Succeeded" in page
    assert "<td>16,000</td><td>6,000</td><td>0.375x</td>" in page
    assert "the trainer exited with code 1" in page
    assert 'href="pipeline/report.html"' in page
    assert page.count("plotly-graph-div") == 1  # the baseline-vs-optimized bars (no study given)
