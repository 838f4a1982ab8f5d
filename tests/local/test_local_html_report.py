"""The job-level report.html: sentences, a failed job's cause first, the trials, one shared plotly."""

from __future__ import annotations

import copy
import html
import re
from pathlib import Path
from typing import Any

import plotly.offline

from optikube_operator.reports.job_html import PLOTLY_JS, comparison_rows, render_report, write_report

RESULTS: dict[str, Any] = {
    "job": "demo",
    "outcome": {"reason": "Succeeded", "succeeded": True, "message": ""},
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
        "testComparison": {"samples": 200, "onlyOptimizedRight": 1, "onlyBaselineRight": 3, "pValue": 0.625},
    },
    "trials": [
        {
            "number": 0,
            "state": "Succeeded",
            "params": {"model.params.width": 96},
            "values": {"accuracy": 0.95, "valLoss": 0.2},
        },
        {
            "number": 1,
            "state": "Failed",
            "params": {"model.params.width": 32},
            "values": {},
            "message": "the trainer exited with code 1",
            "logTail": [
                "Traceback (most recent call last):",
                "ValueError: spec.data.source.file.path: missing",
            ],
        },
    ],
    "bestTrial": {"number": 0, "params": {"model.params.width": 96}, "values": {"accuracy": 0.95}},
    "search": {
        "objectives": [{"metric": "accuracy", "direction": "maximize"}],
        "endedBecause": "MaxTrialsReached",
        "chosenTrial": 0,
        "trialCounts": {"Succeeded": 1, "Failed": 1},
    },
    "artifacts": {"pipelineReport": "pipeline/report.html"},
}


def _text(page: str) -> str:
    """The page's body as a reader sees it: tags gone (inline ones without a gap), whitespace collapsed."""
    body = re.sub(r"<script\b.*?</script>", " ", page[page.index("<body>") :], flags=re.S)
    inline = re.sub(r"</?(code|b|a)\b[^>]*>", "", body)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", inline)))


def _failed(reason: str, message: str) -> dict[str, Any]:
    results = copy.deepcopy(RESULTS)
    for key in ("baseline", "optimized", "artifacts", "bestTrial"):
        results.pop(key)
    results["outcome"] = {"reason": reason, "succeeded": False, "message": message}
    results["trials"][0].update(state="Failed", values={}, message="the trainer was killed (OOMKilled)")
    counts = {"Failed": 2}
    results["search"] = {
        **results["search"],
        "endedBecause": None,
        "chosenTrial": None,
        "trialCounts": counts,
    }
    return results


def test_comparison_rows_pair_baseline_and_optimized() -> None:
    rows = {name: (before, after) for name, before, after in comparison_rows(RESULTS)}
    assert rows["accuracy"] == (0.96, 0.95)
    assert rows["parameters"] == (16000.0, 6000.0)
    assert rows["latency, batch 1 (ms)"] == (0.5, 0.25)
    assert "MACs per example" not in rows  # absent on both sides


def test_a_succeeded_report_says_what_happened_in_sentences_not_dicts() -> None:
    page = render_report(RESULTS, study=None)
    text = _text(page)
    assert page.startswith("<!doctype html>") and "The job succeeded" in text
    assert "The search ran 2 trials (1 succeeded, 1 failed) and ended because every trial of" in text
    assert "The best trial is trial 0: accuracy 0.95, with model.params.width = 96." in text
    assert "3x smaller on disk (90.0 kB to 30.0 kB), 2x faster at batch 1 (0.5 to 0.25 ms)" in text
    assert "<td>16,000</td><td>6,000</td><td>0.375x</td>" in page
    assert (
        "Of the 200 test samples, the optimized model alone gets 1 right and the baseline alone 3"
        " (McNemar's exact test, p = 0.62): chance alone gives a split this uneven that often" in text
    )
    assert "the trainer exited with code 1" in text and "chosen for the final pipeline" in text
    assert 'href="pipeline/report.html"' in page
    # no Python or JSON leaks into what a person reads
    assert not re.search(r"\{'|\{\"|None|True|False", text)


def test_plotly_is_one_shared_file_beside_the_report_not_inlined(tmp_path: Path) -> None:
    page = render_report(RESULTS, study=None)
    assert page.count('class="plotly-graph-div"') == 1  # the baseline-vs-optimized bars (no study)
    assert page.count(f'src="{PLOTLY_JS}"') == 1 and len(page) < 100_000
    write_report(tmp_path / "report.html", RESULTS, None)
    shared = tmp_path / PLOTLY_JS
    assert shared.read_text(encoding="utf-8") == plotly.offline.get_plotlyjs()
    written = shared.stat().st_mtime_ns
    write_report(tmp_path / "report-again.html", RESULTS, None)  # a second report of the folder
    assert shared.stat().st_mtime_ns == written and len(list(tmp_path.glob("*.js"))) == 1


def test_a_failed_job_leads_with_why_and_what_to_do_and_the_failed_trials_log() -> None:
    results = _failed("TooManyFailures", "3 trials failed or timed out (spec.tuning.maxFailedTrials: 2)")
    page = render_report(results, study=None)
    text = _text(page)
    lead = text.index("The job failed")
    assert lead < text.index("Trials")  # first, before anything else of the run
    assert "It ended with TooManyFailures: more trials failed than spec.tuning.maxFailedTrials" in text
    assert "Why: 3 trials failed or timed out (spec.tuning.maxFailedTrials: 2)." in text
    assert "What to do:" in text and "narrow spec.tuning.searchSpace" in text
    assert "Trial 0 (failed): the trainer was killed (OOMKilled)." in text
    assert "Trial 1 (failed): the trainer exited with code 1." in text
    assert "The search ran 2 trials (2 failed)." in text
    assert "ValueError: spec.data.source.file.path: missing" in text  # its last log lines
    assert "No trial succeeded, so there is no best trial." in text
    assert "None" not in text and "Baseline vs optimized" not in text


def test_a_failed_pipeline_shows_its_error_and_how_to_resume() -> None:
    results = _failed("PipelineFailed", "the pipeline exited with code 1")
    results["pipelineError"] = {
        "message": "CUDA out of memory",
        "logTail": ["RuntimeError: CUDA out of memory"],
    }
    text = _text(render_report(results, study=None))
    assert "the final pipeline (training with the chosen parameters" in text
    assert "The pipeline said: CUDA out of memory." in text
    assert "optikube run FILE --output DIR --resume" in text
    assert "The pipeline's last log lines: RuntimeError: CUDA out of memory" in text


def test_an_unfinished_run_says_how_to_continue() -> None:
    results = copy.deepcopy(RESULTS)
    results["outcome"] = {}
    text = _text(render_report(results, study=None))
    assert "The run has not finished" in text and "--resume" in text


def test_a_validation_split_too_small_to_rank_the_trials_is_said_up_front() -> None:
    results = copy.deepcopy(RESULTS)
    message = "The 2 succeeded trials scored accuracy within 0.03333 ... Set spec.data.crossValidation"
    results["search"]["validationResolution"] = {"distinguishable": False, "message": message}
    page = render_report(results, study=None)
    assert "The validation split cannot rank these trials." in page
    assert "<code>spec.data.crossValidation</code>" in page
    assert page.index("cannot rank") < page.index("Baseline vs optimized")
    results["search"]["validationResolution"]["distinguishable"] = True
    assert "cannot rank" not in render_report(results, study=None)
