"""The report's sentences: what ran, what ships and how it compares, the fit and the data.

Pure functions from the pipeline's results document (Contract 4) to sentences.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optikube_operator.reports.job_text import baseline_comparison, chance_sentence
from optikube_operator.reports.pipeline_text import (
    RUNTIMES,
    STAGES,
    dig,
    free_text,
    number,
    points_text,
    value_text,
)


def summary_sentences(results: Mapping[str, Any]) -> list[str]:
    """The report's opening: what ran, what ships, how it compares, and the budget."""
    sentences: list[str] = []
    ran = [STAGES.get(str(s.get("name")), str(s.get("name"))) for s in results.get("stages") or []]
    skipped = [s for s in results.get("stages") or [] if s.get("skipped")]
    slower = [
        str(s.get("name"))
        for s in skipped
        if ((s.get("budget") or {}).get("latencyCheck") or {}).get("slower")
    ]
    over = [str(s.get("name")) for s in skipped if str(s.get("name")) not in slower]
    if ran:
        sentences.append(f"The pipeline ran {_series(ran)}.")
    if over:
        sentences.append(f"Skipped by the accuracy budget: {_series(over)}.")
    if slower:
        sentences.append(f"Skipped because they made the shipped runtime slower: {_series(slower)}.")
    runtime = results.get("runtime") or {}
    chosen = runtime.get("chosen") or (results.get("artifacts") or {}).get("runtime")
    if chosen:
        why = f", {runtime['reason']}" if runtime.get("reason") else ""
        sentences.append(f"It ships the model for {RUNTIMES.get(str(chosen), str(chosen))}{why}.")
    sentences.extend(_as_sentences(runtime.get("notes")))
    comparison = _comparison(results.get("baseline") or {}, results.get("optimized") or {})
    if comparison:
        sentences.append(comparison)
    fair = fair_baseline_sentence(results.get("optimized") or {})
    if fair:
        sentences.append(fair)
    chance = chance_sentence((results.get("optimized") or {}).get("testComparison") or {})
    if chance:
        sentences.append(chance)
    budget = results.get("budget") or {}
    if budget.get("maxAccuracyDrop") is not None and budget.get("drop") is not None:
        verdict = "within" if budget.get("withinBudget") else "outside"
        allowed = float(budget["maxAccuracyDrop"])
        metric = budget.get("metric", "accuracy")
        sentences.append(
            f"The accuracy budget allowed {number(allowed)} point{'' if allowed == 1 else 's'} of {metric}"
            f" to be lost on the validation split; the shipped model has"
            f" {points_text(float(budget['drop']))},"
            f" {verdict} the budget."
        )
    sentences.extend(_as_sentences(budget.get("notes")))
    return sentences


def _as_sentences(notes: list[str] | None) -> list[str]:
    """results.json's notes (lower-case clauses) as the report's sentences."""
    return [f"{note[0].upper()}{note[1:]}." for note in notes or [] if note]


def _series(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _comparison(baseline: Mapping[str, Any], optimized: Mapping[str, Any]) -> str | None:
    def pair(*path: str) -> tuple[float | None, float | None]:
        return dig(baseline, path), dig(optimized, path)

    return baseline_comparison(
        "it",
        size_on_disk=pair("sizeBytes"),
        batch1_latency=pair("latencyMs", "batch1P50"),
        accuracy=pair("metrics", "accuracy"),
    )


def fair_baseline_sentence(optimized: Mapping[str, Any]) -> str | None:
    """ "x faster than the baseline in PyTorch, y faster than the baseline exported to ONNX Runtime":
    a user who only exports to ONNX Runtime gets part of the speed-up without any stage, so both
    are said (results.json's `optimized.speedup`)."""
    speedup = optimized.get("speedup") or {}
    pytorch, onnx = speedup.get("vsPyTorch") or {}, speedup.get("vsOnnxRuntime") or {}
    sizes = [key for key in pytorch if key in onnx]
    if not sizes:
        return None

    def ratios(key: str) -> str:
        return (
            f"{_times(pytorch[key])} than the baseline in PyTorch and {_times(onnx[key])} than the"
            " baseline exported to ONNX Runtime"
        )

    first, *others = sizes
    sentence = f"At {_batch(first)} the optimized model is {ratios(first)}"
    more = "; ".join(f"at {_batch(key)} {_times(pytorch[key])} and {_times(onnx[key])}" for key in others)
    return f"{sentence}{f' ({more})' if more else ''}."


def _batch(key: str) -> str:
    return f"batch {key[len('batch') :]}"


def _times(ratio: Any) -> str:
    value = float(ratio)
    return f"{value:.3g}x faster" if value >= 1 else f"{1 / value:.3g}x slower"


def diagnosis_sentence(diagnosis: Mapping[str, Any]) -> str | None:
    fit = diagnosis.get("fit")
    if not fit:
        return None
    looks = {"good": "fits well", "overfitting": "overfits", "underfitting": "underfits"}.get(
        str(fit), str(fit)
    )
    sentence = f"The model {looks}"
    if isinstance(diagnosis.get("gap"), int | float):
        sentence += f": train and validation accuracy are {number(diagnosis['gap'])} apart"
    if diagnosis.get("trend"):
        sentence += f"; {diagnosis['trend']}"
    return sentence + "."


def data_sentences(data: Mapping[str, Any]) -> list[str]:
    """What the model saw (results.json's `data`, when the trainer wrote one)."""
    sentences: list[str] = []
    samples = data.get("samples")
    if isinstance(samples, Mapping) and samples:
        splits = ", ".join(f"{number(count)} {name}" for name, count in samples.items())
        kind = f"{data['task']} " if data.get("task") else ""
        sentences.append(f"The {kind}data had {splits} samples.")
    classes = data.get("classes") or []
    if classes:
        sentences.append(f"{len(classes)} classes: {value_text(list(classes))}.")
    for key, value in data.items():
        if key not in ("samples", "task", "classes") and value not in (None, {}, []):
            text = free_text(key, value)
            sentences.append(f"{text[0].upper()}{text[1:]}.")
    return sentences
