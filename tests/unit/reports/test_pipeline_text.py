"""The pipeline report's words: each stage's changes, the budget, the data, as sentences."""

from __future__ import annotations

import json
from pathlib import Path

from optikube_operator.reports.pipeline_html import render_report
from optikube_operator.reports.pipeline_sentences import data_sentences, summary_sentences
from optikube_operator.reports.pipeline_text import (
    runtime_table,
    stage_budget,
    stage_changes,
)

# a real quickstart pipeline's results.json
REAL = json.loads(
    (
        Path(__file__).parents[2] / "local" / "fixtures" / "quickstart-run" / "pipeline-results.json"
    ).read_text()
)


def test_a_real_pipeline_reads_as_sentences() -> None:
    summary = " ".join(summary_sentences(REAL))
    assert "The pipeline ran training, pruning and quantization." in summary
    assert "It ships the model for ONNX Runtime, the fastest runtime within the accuracy budget" in summary
    assert "8.62x smaller on disk (71.0 kB to 8.2 kB)" in summary
    assert "the shipped model has 0.56 points gained, within the budget" in summary
    train, pruning, quantization = REAL["stages"]
    assert (
        stage_changes(train) == "5 epochs; the weights of epoch 4 kept; validation accuracy after it 0.9556"
    )
    assert stage_changes(pruning).startswith("method structured; parameters 16,522 to 5,962 (-64%)")
    assert "weights 23.4 kB to 6.4 kB (-73%)" in stage_changes(quantization)
    assert stage_budget(pruning) == "accepted; 0.83 points gained on validation"


def test_a_stage_the_budget_skipped_says_why() -> None:
    stage = {
        "name": "lowRank",
        "skipped": True,
        "changes": {"validationAccuracyAfter": None},
        "budget": {
            "outcome": "skipped",
            "reason": "every rank lost more than 1 point",
            "attempts": [{"drop": 3.0}, {"drop": 2.0}],
        },
    }
    assert (
        stage_changes(stage) == "skipped: every rank lost more than 1 point; the model is the one before it"
    )
    assert stage_budget(stage) == "skipped after 2 attempts; 2 points lost on validation"


def test_the_data_section_reads_a_tables_summary_without_python_reprs() -> None:
    data = {
        "task": "tabular",
        "classes": ["no", "yes"],
        "samples": {"train": 600, "val": 200, "test": 200},
        "features": {"count": 9, "names": ["age", "income", "city_Paris"]},
        "table": {"rowsUsed": 1000, "rowsDropped": 3, "ignoredColumns": ["id"]},
    }
    text = " ".join(data_sentences(data))
    assert "The tabular data had 600 train, 200 val, 200 test samples." in text
    assert "2 classes: no, yes." in text
    assert "Features: count 9, names (age, income, city_Paris)." in text
    assert "Table: rows used 1,000, rows dropped 3, ignored columns (id)." in text
    assert "[" not in text and "{" not in text
    assert "<h2>Data</h2>" in render_report({**REAL, "data": data}, title="t")


def test_the_runtime_notes_are_part_of_the_summary() -> None:
    results = json.loads(json.dumps(REAL))
    results["runtime"]["notes"] = [
        "the optimized model is slower in onnx than the baseline, at batch 1 (0.88x)"
    ]
    summary = " ".join(summary_sentences(results))
    assert "The optimized model is slower in onnx than the baseline, at batch 1 (0.88x)." in summary


def test_the_summary_says_whether_the_test_accuracy_change_is_more_than_chance() -> None:
    results = json.loads(json.dumps(REAL))
    paired = {"samples": 450, "onlyOptimizedRight": 1, "onlyBaselineRight": 5, "pValue": 0.2188}
    results["optimized"]["testComparison"] = paired
    summary = " ".join(summary_sentences(results))
    assert "Of the 450 test samples, the optimized model alone gets 1 right and the baseline alone 5" in (
        summary
    )
    assert "p = 0.22): chance alone gives a split this uneven that often" in summary
    results["optimized"]["testComparison"] = {**paired, "onlyBaselineRight": 14, "pValue": 0.001}
    assert "the optimized model is less accurate beyond chance" in " ".join(summary_sentences(results))
    results["optimized"]["testComparison"] = {**paired, "onlyOptimizedRight": 0, "onlyBaselineRight": 0}
    assert "test samples" not in " ".join(summary_sentences(results))  # nothing differs: no sentence


def test_the_summary_repeats_what_the_budget_could_not_see() -> None:
    results = json.loads(json.dumps(REAL))
    results["budget"]["notes"] = ["the trained model scores accuracy 1.0 on all 300 validation samples: x"]
    summary = " ".join(summary_sentences(results))
    assert summary.endswith(
        "within the budget. The trained model scores accuracy 1.0 on all 300 validation samples: x."
    )


def test_the_runtimes_table_has_a_column_for_the_serving_batch_size() -> None:
    runtime = json.loads(json.dumps(REAL["runtime"]))
    header, rows, chosen = runtime_table(runtime)
    assert "batch 1 (ms)" in header and not any(name.startswith("batch 8") for name in header)
    runtime["servingBatchSize"] = 8
    for candidate in runtime["candidates"]:
        candidate["latencyMs"]["batch8P50"] = 0.5
    header, rows, chosen = runtime_table(runtime)
    column = header.index("batch 8 (ms)")
    assert header[column - 1] == "batch 32 (ms)" and all(row[column] == "0.5" for row in rows)
    assert chosen is not None and rows[chosen][0] == "ONNX Runtime"
    runtime["servingBatchSize"] = 32  # already a column of its own
    assert runtime_table(runtime)[0].count("batch 32 (ms)") == 1


def test_a_stage_the_latency_check_skipped_says_so_with_its_numbers() -> None:
    stage = {
        "name": "quantization",
        "skipped": True,
        "budget": {
            "outcome": "skipped",
            "reason": "the stage made the model slower at batch 1 in ONNX Runtime, 0.0256 to 0.0326 ms",
            "attempts": [{"method": "dynamic", "drop": -3.3}],
            "latencyCheck": {
                "batch1": {"runtimeAfter": "onnx", "speedup": 0.786},
                "batch32": {"runtimeAfter": "onnx", "speedup": 0.795},
                "slower": True,
            },
        },
    }
    assert stage_budget(stage) == (
        "skipped; 3.3 points gained on validation;"
        " slower 0.786x at batch 1, 0.795x at batch 32 (ONNX Runtime)"
    )
    assert stage_changes(stage).startswith(
        "skipped: the stage made the model slower at batch 1 in ONNX Runtime"
    )
    accepted = {**stage, "skipped": False}
    accepted["budget"] = {**stage["budget"], "outcome": "accepted"}  # type: ignore[dict-item]
    accepted["budget"]["latencyCheck"] = {"batch1": {"runtimeAfter": "onnx", "speedup": 1.3}, "slower": False}  # type: ignore[index]
    assert stage_budget(accepted).endswith("; speed 1.3x at batch 1 (ONNX Runtime)")
    results = json.loads(json.dumps(REAL))
    results["stages"].append(stage)
    summary = " ".join(summary_sentences(results))
    assert "Skipped because they made the shipped runtime slower: quantization." in summary
    assert "Skipped by the accuracy budget" not in summary
