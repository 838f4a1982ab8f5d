"""The words of the job report: what the run did, and for a failed job why and what to do next.

Pure functions from a job's results document (local `results.json`) to plain sentences; the HTML
is `html_report`'s business.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from optikube_operator.api.outcomes import FinishReason

# How a job's or a trial's state shows in a terminal (rich styles): the live view and `optikube get`
STATE_STYLES = {
    "Succeeded": "green",
    "Running": "cyan",
    "Pending": "yellow",
    "Pruned": "magenta",
    "Failed": "red",
    "TimedOut": "red",
    "Stopped": "dim",
    "Suspended": "dim",
}


# Why the search ended, as the end of "The search ended because ...".
SEARCH_ENDED: dict[str, str] = {
    FinishReason.GOAL_REACHED: "a trial reached spec.tuning.goal",
    FinishReason.MAX_TRIALS_REACHED: "every trial of spec.tuning.maxTrials was used",
    FinishReason.SEARCH_SPACE_EXHAUSTED: "every point of the grid was tried",
    FinishReason.DEADLINE_EXCEEDED: "spec.tuning.maxDuration passed",
}
# A failed job: (what went wrong, what to do).
FAILURES: dict[str, tuple[str, str]] = {
    FinishReason.TOO_MANY_FAILURES: (
        "more trials failed than spec.tuning.maxFailedTrials allows, so no model was trained",
        "Read the failed trials' messages and log lines below: a failure in every trial is usually the"
        " spec or the data (a missing file, a column name), one in a few is usually their parameters"
        " (narrow spec.tuning.searchSpace). Raise spec.tuning.maxFailedTrials only when some failures"
        " are expected.",
    ),
    FinishReason.NO_SUCCESSFUL_TRIAL: (
        "the search ended without a single successful trial, so there were no parameters to train",
        "Read the trials' messages and log lines below and fix their cause, then run the job again.",
    ),
    FinishReason.DEADLINE_EXCEEDED: (
        "spec.tuning.maxDuration passed before any trial succeeded",
        "Raise spec.tuning.maxDuration, or make each trial shorter (fewer spec.training.epochs, a"
        " smaller model, a pruner that stops poor trials early).",
    ),
    FinishReason.PIPELINE_FAILED: (
        "the final pipeline (training with the chosen parameters, then compression and export) failed",
        "Its error and last log lines are below. Fix the cause, then continue with"
        " `optikube run FILE --output DIR --resume`: the pipeline runs again from its last finished"
        " stage and no trial is repeated.",
    ),
}
UNFINISHED = (
    "The run has not finished: it was interrupted, or it is still running. Continue an interrupted"
    " run with `optikube run FILE --output DIR --resume`; no finished trial runs again."
)


@dataclass(frozen=True)
class Lead:
    """The top of the report: the verdict, its explanation, and what to do when it failed."""

    verdict: str
    tone: str  # good | bad | pending
    sentences: list[str] = field(default_factory=list)
    advice: str = ""
    log_title: str = ""
    log_lines: list[str] = field(default_factory=list)


def number(value: float | int | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if abs(value) >= 1000 or (isinstance(value, int) and not isinstance(value, bool)):
        return f"{value:,.0f}"
    return f"{value:.4g}"


def size(value: float | None) -> str:
    if value is None:
        return "-"
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} B"


# Rows of the baseline-vs-optimized table: (label, where a Contract 4 block has it, how to write it)
MEASURES: list[tuple[str, tuple[str, ...], Callable[[float | None], str]]] = [
    ("parameters", ("parameters",), number),
    ("size on disk", ("sizeBytes",), size),
    ("MACs per example", ("macs",), number),
    ("latency, batch 1 (ms)", ("latencyMs", "batch1P50"), number),
    ("latency, batch 32 (ms)", ("latencyMs", "batch32P50"), number),
]


def _dig(block: Mapping[str, Any], path: tuple[str, ...]) -> float | None:
    node: Any = block
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return float(node) if isinstance(node, int | float) and not isinstance(node, bool) else None


def comparison_rows(results: Mapping[str, Any]) -> list[tuple[str, float | None, float | None]]:
    """(label, baseline, optimized) for every task metric and measure either side has."""
    baseline = results.get("baseline") or {}
    optimized = results.get("optimized") or {}
    metrics = sorted(set(baseline.get("metrics") or {}) | set(optimized.get("metrics") or {}))
    rows = [(name, _dig(baseline, ("metrics", name)), _dig(optimized, ("metrics", name))) for name in metrics]
    rows += [(label, _dig(baseline, path), _dig(optimized, path)) for label, path, _ in MEASURES]
    return [row for row in rows if row[1] is not None or row[2] is not None]


def value_text(value: Any) -> str:
    """A parameter or metric value as a person writes it."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return number(value)
    if value is None:
        return "-"
    return str(value)


def params_phrase(params: Mapping[str, Any]) -> str:
    if not params:
        return "the spec as written"
    return ", ".join(f"{name} = {value_text(value)}" for name, value in sorted(params.items()))


def values_phrase(values: Mapping[str, Any], metrics: Sequence[str]) -> str:
    shown = [m for m in metrics if m in values] or sorted(values)
    return ", ".join(f"{metric} {value_text(values[metric])}" for metric in shown)


def _counts_phrase(counts: Mapping[str, int]) -> str:
    total = sum(counts.values())
    parts = [f"{count} {state.lower()}" for state, count in sorted(counts.items(), key=lambda kv: -kv[1])]
    return f"{total} trial{'' if total == 1 else 's'} ({', '.join(parts)})" if parts else "no trial"


def _failed_trials(results: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [t for t in results.get("trials") or [] if t.get("state") in ("Failed", "TimedOut")]


def search_sentences(results: Mapping[str, Any]) -> list[str]:
    search = results.get("search") or {}
    objectives = [o.get("metric", "") for o in search.get("objectives") or []]
    sentences: list[str] = []
    counts = search.get("trialCounts") or {}
    if not results.get("trials") and search.get("endedBecause") in (None, FinishReason.NO_SEARCH):
        return ["There was no search (no spec.tuning): the pipeline ran once with the spec as written."]
    ended = SEARCH_ENDED.get(str(search.get("endedBecause")))
    ran = f"The search ran {_counts_phrase(counts)}"
    sentences.append(f"{ran} and ended because {ended}." if ended else f"{ran}.")
    best = results.get("bestTrial") or {}
    chosen = search.get("chosenTrial")
    if best:
        sentences.append(
            f"The best trial is trial {best.get('number')}:"
            f" {values_phrase(best.get('values') or {}, objectives)},"
            f" with {params_phrase(best.get('params') or {})}."
        )
    elif counts:
        sentences.append("No trial succeeded, so there is no best trial.")
    if chosen is not None:
        sentences.append(f"The final pipeline trained with trial {chosen}'s parameters.")
    if search.get("constraintsMet") is False:
        sentences.append(
            "No trial met spec.tuning.selection.constraints, so the choice was made among all"
            " succeeded trials."
        )
    return sentences


def resolution_warning(results: Mapping[str, Any]) -> str | None:
    """The warning when the validation split cannot tell the trials apart (core.resolution)."""
    verdict = (results.get("search") or {}).get("validationResolution") or {}
    if not verdict or verdict.get("distinguishable", True):
        return None
    return str(verdict.get("message", ""))


Pair = tuple[float | None, float | None]  # (baseline, optimized)


def comparison_sentence(rows: Sequence[tuple[str, float | None, float | None]]) -> str | None:
    """One sentence of the baseline-vs-optimized table's most telling rows."""
    by_name = {name: (before, after) for name, before, after in rows}
    return baseline_comparison(
        "the optimized model",
        size_on_disk=by_name.get("size on disk", (None, None)),
        batch1_latency=by_name.get("latency, batch 1 (ms)", (None, None)),
        accuracy=by_name.get("accuracy", (None, None)),
    )


def baseline_comparison(
    subject: str, *, size_on_disk: Pair, batch1_latency: Pair, accuracy: Pair
) -> str | None:
    """'Against the trained baseline, <subject> is 4x smaller on disk, 2x faster at batch 1, ...':
    the job report's and the pipeline report's shared opening."""
    parts: list[str] = []
    before, after = size_on_disk
    if before and after:
        parts.append(f"{before / after:.3g}x smaller on disk ({size(before)} to {size(after)})")
    before, after = batch1_latency
    if before and after:
        word = "faster" if after <= before else "slower"
        ratio = before / after if after <= before else after / before
        parts.append(f"{ratio:.3g}x {word} at batch 1 ({number(before)} to {number(after)} ms)")
    before, after = accuracy
    if before is not None and after is not None:
        parts.append(f"test accuracy {number(before)} to {number(after)}")
    if not parts:
        return None
    return f"Against the trained baseline, {subject} is " + ", ".join(parts) + "."


def chance_sentence(paired: Mapping[str, Any]) -> str | None:
    """Whether the test accuracy change is more than a few samples' luck: results.json's
    `optimized.testComparison` (McNemar's exact test, read at 5 %)."""
    ours, theirs = paired.get("onlyOptimizedRight"), paired.get("onlyBaselineRight")
    if ours is None or theirs is None or paired.get("pValue") is None or ours + theirs == 0:
        return None
    p_value = float(paired["pValue"])
    if p_value >= 0.05:
        verdict = "chance alone gives a split this uneven that often, so it is no evidence of a change"
    else:
        verdict = f"the optimized model is {'more' if ours > theirs else 'less'} accurate beyond chance"
    return (
        f"Of the {paired.get('samples')} test samples, the optimized model alone gets {ours} right and"
        f" the baseline alone {theirs} (McNemar's exact test, p = {p_value:.2g}): {verdict}."
    )


def data_sentence(data: Mapping[str, Any]) -> str | None:
    """What the model saw (results.json's `data`, when the trainer wrote one)."""
    samples = data.get("samples") or {}
    if not isinstance(samples, Mapping) or not samples:
        return None
    splits = ", ".join(f"{number(count)} {name}" for name, count in samples.items())
    classes = data.get("classes") or []
    kind = f"{data['task']} " if data.get("task") else ""
    sentence = f"The {kind}data had {splits} samples"
    if classes:
        sentence += f" in {len(classes)} classes"
    return sentence + "."


def outcome_lead(results: Mapping[str, Any]) -> Lead:
    outcome = results.get("outcome") or {}
    if not outcome:
        return Lead(verdict="Not finished", tone="pending", sentences=[UNFINISHED])
    reason = str(outcome.get("reason", ""))
    message = str(outcome.get("message") or "")
    if outcome.get("succeeded"):
        return Lead(verdict="The job succeeded", tone="good", sentences=search_sentences(results))
    what, advice = FAILURES.get(reason, (f"it ended with {reason}", "Read the messages below."))
    sentences = [f"It ended with {reason}: {what}."]
    if message:
        sentences.append(f"Why: {message.rstrip('.')}.")
    if results.get("trials"):
        sentences += search_sentences(results)
    lead = Lead(verdict="The job failed", tone="bad", sentences=sentences, advice=advice)
    pipeline_error = results.get("pipelineError") or {}
    if reason == FinishReason.PIPELINE_FAILED and pipeline_error:
        if pipeline_error.get("message") and pipeline_error["message"] != message:
            sentences.append(f"The pipeline said: {str(pipeline_error['message']).rstrip('.')}.")
        tail = list(pipeline_error.get("logTail") or [])
        return replace(lead, log_title="The pipeline's last log lines", log_lines=tail)
    failed = _failed_trials(results)
    for trial in failed[:3]:
        note = str(trial.get("message") or "no message").rstrip(".")
        sentences.append(f"Trial {trial.get('number')} ({trial.get('state', '').lower()}): {note}.")
    if len(failed) > 3:
        sentences.append(f"{len(failed) - 3} more trials failed the same way or another; see the table.")
    first_log = next((t for t in failed if t.get("logTail")), None)
    if first_log is not None:
        title = f"Trial {first_log.get('number')}'s last log lines"
        return replace(lead, log_title=title, log_lines=list(first_log["logTail"]))
    return lead
