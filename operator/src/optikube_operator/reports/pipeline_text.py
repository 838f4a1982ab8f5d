"""The words of the pipeline's report: its numbers, what each stage did, the budget and the runtimes.

Pure functions from the pipeline's results document (Contract 4) to table cells and short texts;
the report's sentences are in pipeline_sentences.py.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from optikube_operator.reports.job_text import size

# The baseline-vs-optimized rows: (label, how to read it from a Contract 4 block, kind of number)
MEASURES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("accuracy (test split)", ("metrics", "accuracy"), "score"),
    ("F1, macro (test split)", ("metrics", "f1"), "score"),
    ("parameters", ("parameters",), "count"),
    ("size on disk", ("sizeBytes",), "bytes"),
    ("MACs per example", ("macs",), "count"),
    ("latency, batch 1 (ms, median)", ("latencyMs", "batch1P50"), "score"),
    ("latency, batch 32 (ms, median)", ("latencyMs", "batch32P50"), "score"),
)
RUNTIMES = {"eager": "eager PyTorch", "compiled": "torch.compile", "onnx": "ONNX Runtime"}
# The terminal's runtimes table fits 80 columns with these and a legend under it (whole words).
SHORT_RUNTIMES = {"eager": "eager", "compiled": "compiled", "onnx": "ORT"}
SHORT_FORMS = {
    "torchao int8 dynamic (Linear)": "int8 dyn",
    "torchao int8 weight-only (Linear)": "int8 w",
    "PT2E int8 static (X86InductorQuantizer)": "int8 static",
    "int8 QAT": "int8 QAT",
    "onnxruntime int8 dynamic (MatMul/Gemm)": "int8 dyn",
    "int8 weights, folded to float at load": "int8 w",
    "onnxruntime int8 static QDQ": "int8 QDQ",
    "none (float)": "float",
}
STAGES = {
    "train": "training",
    "distillation": "knowledge distillation",
    "pruning": "pruning",
    "lowRank": "low-rank factorization",
    "weightSharing": "weight sharing",
    "quantization": "quantization",
}
SHOWN_ITEMS = 6


def dig(block: Mapping[str, Any], path: tuple[str, ...]) -> float | None:
    node: Any = block
    for key in path:
        if not isinstance(node, Mapping) or node.get(key) is None:
            return None
        node = node[key]
    return float(node) if isinstance(node, int | float) and not isinstance(node, bool) else None


def number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def measure_text(kind: str, value: float | None) -> str:
    if kind == "bytes":
        return size(value)
    if kind == "count" and value is not None:
        return f"{value:,.0f}"
    return number(value)


def words(key: str) -> str:
    """A camelCase key as words: weightBytesBefore -> weight bytes before."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key).lower()


def _change(before: Any, after: Any, write: Any = number) -> str:
    text = f"{write(before)} to {write(after)}"
    if isinstance(before, int | float) and isinstance(after, int | float) and before:
        text += f" ({(after - before) / before:+.0%})"
    return text


def value_text(value: Any, nested: bool = False) -> str:
    """A value as words: a mapping as "key value" pairs, a list comma-separated, both shortened."""
    if isinstance(value, Mapping):
        items = [f"{words(str(k))} {value_text(v, True)}" for k, v in list(value.items())[:SHOWN_ITEMS]]
        more = f" and {len(value) - SHOWN_ITEMS} more" if len(value) > SHOWN_ITEMS else ""
        text = ", ".join(items) + more
        return f"({text})" if nested else text
    if isinstance(value, list | tuple):
        text = ", ".join(value_text(v, True) for v in value[:SHOWN_ITEMS])
        text += f" and {len(value) - SHOWN_ITEMS} more" if len(value) > SHOWN_ITEMS else ""
        return f"({text})" if nested else text
    return number(value)


def free_text(key: str, value: Any) -> str:
    """Any other change: its words and its value."""
    separator = ": " if isinstance(value, Mapping | list | tuple) else " "
    return f"{words(key)}{separator}{value_text(value)}"


# pairs of changes that read as "x to y": (before key, after key, label, writer)
_PAIRS = (
    ("parametersBefore", "parametersAfter", "parameters", number),
    ("macsBefore", "macsAfter", "MACs", number),
    ("weightBytesBefore", "weightBytesAfter", "weights", size),
    ("sizeBytesBefore", "sizeBytesAfter", "size", size),
)
_TRAIN_KEYS = ("epochsRun", "bestEpoch", "stoppedEarly")


COMPARISON_HEADER = ("measure", "baseline", "optimized", "optimized / baseline")
RUNTIME_HEADER = (
    "runtime",
    "quantization",
    "batch 1 (ms)",
    "batch 32 (ms)",
    "baseline batch 1 (ms)",
    "test accuracy",
    "within budget",
)


def comparison_rows(baseline: Mapping[str, Any], optimized: Mapping[str, Any]) -> list[list[str]]:
    """The baseline-vs-optimized table (COMPARISON_HEADER): every measure either side has."""
    rows = []
    for label, path, kind in MEASURES:
        before, after = dig(baseline, path), dig(optimized, path)
        if before is None and after is None:
            continue
        ratio = f"{after / before:.3g}x" if before and after is not None else "-"
        rows.append([label, measure_text(kind, before), measure_text(kind, after), ratio])
    return rows


def _candidates(runtime: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for c in runtime.get("candidates") or [] if isinstance(c, Mapping)]


def shipped_index(runtime: Mapping[str, Any]) -> int | None:
    """Which candidate shipped: the one marked `shipped`, else (older documents) the first of the
    chosen runtime."""
    candidates = _candidates(runtime)
    marked = next((i for i, c in enumerate(candidates) if c.get("shipped")), None)
    if marked is not None:
        return marked
    return next((i for i, c in enumerate(candidates) if c.get("runtime") == runtime.get("chosen")), None)


def runtime_table(
    runtime: Mapping[str, Any], *, short: bool = False
) -> tuple[list[str], list[list[str]], int | None]:
    """The runtimes table of results.json's `runtime` block: its header (RUNTIME_HEADER, with a
    column for the serving batch size where the spec set one), its rows, and the index of the row
    that shipped. `short`: the terminal's labels (SHORT_RUNTIMES, SHORT_FORMS; `runtime_legend`
    spells them out), without the baseline column, so that it fits 80 columns without breaking a
    word."""
    serving = runtime.get("servingBatchSize")
    shows_serving = serving not in (None, 1, 32)  # 1 and 32 have their columns already
    if short:
        serving_column = [f"b{serving} ms"] if shows_serving else []
        header = ["runtime", "form", "b1 ms", "b32 ms", *serving_column, "accuracy", "in budget"]
    else:
        serving_column = [f"batch {serving} (ms)"] if shows_serving else []
        header = [*RUNTIME_HEADER[:4], *serving_column, *RUNTIME_HEADER[4:]]
    rows = []
    for c in _candidates(runtime):
        name, form = str(c.get("runtime")), str(c.get("quantization") or "-")
        row = [
            (SHORT_RUNTIMES if short else RUNTIMES).get(name, name),
            SHORT_FORMS.get(form, form) if short else form,
            _failed(c, short) or number(dig(c, ("latencyMs", "batch1P50"))),
            number(dig(c, ("latencyMs", "batch32P50"))),
            *([number(dig(c, ("latencyMs", f"batch{serving}P50")))] if shows_serving else []),
            *([] if short else [number(dig(c, ("baselineLatencyMs", "batch1P50")))]),
            number(dig(c, ("metrics", "accuracy"))),
            "yes" if c.get("withinBudget") else "no",
        ]
        rows.append(row)
    return header, rows, shipped_index(runtime)


def runtime_legend(runtime: Mapping[str, Any]) -> list[str]:
    """What the terminal table's short labels stand for, only those it shows."""
    candidates = _candidates(runtime)
    runtimes = dict.fromkeys(str(c.get("runtime")) for c in candidates)
    forms = dict.fromkeys(str(c.get("quantization")) for c in candidates if c.get("quantization"))
    named = [f"{SHORT_RUNTIMES[r]} = {RUNTIMES[r]}" for r in runtimes if r in SHORT_RUNTIMES]
    by_label: dict[str, list[str]] = {}
    for form in forms:
        if form in SHORT_FORMS and SHORT_FORMS[form] != form:
            by_label.setdefault(SHORT_FORMS[form], []).append(form)
    lines = []
    if named:
        lines.append("Runtimes: " + ", ".join(named) + ".")
    if by_label:
        lines.append(
            "Forms: " + "; ".join(f"{label} = {' or '.join(long)}" for label, long in by_label.items()) + "."
        )
    for candidate in candidates:
        if candidate.get("error"):
            name = str(candidate.get("runtime"))
            lines.append(f"{RUNTIMES.get(name, name)} failed: {str(candidate['error'])[:200]}")
    return lines


def _failed(candidate: Mapping[str, Any], short: bool = False) -> str | None:
    """A candidate that did not run: its error (in the terminal only "failed"; the legend says why)."""
    error = candidate.get("error")
    if not error:
        return None
    return "failed" if short else f"failed: {str(error)[:80]}"


def stage_changes(stage: Mapping[str, Any]) -> str:
    """What a stage did, as a sentence from its `changes`."""
    changes = dict(stage.get("changes") or {})
    if stage.get("skipped"):
        reason = (stage.get("budget") or {}).get("reason")
        return f"skipped{f': {reason}' if reason else ''}; the model is the one before it"
    parts: list[str] = []
    if stage.get("name") == "train" and "epochsRun" in changes:
        epochs = changes.get("epochsRun")
        best = changes.get("bestEpoch")
        early = ", stopped early" if changes.get("stoppedEarly") else ""
        parts.append(f"{number(epochs)} epochs{early}; the weights of epoch {number(best)} kept")
        for key in _TRAIN_KEYS:
            changes.pop(key, None)
    method = changes.pop("method", None)
    if method is not None:
        backend = changes.pop("backend", None)
        parts.append(f"method {method}{f' ({backend})' if backend else ''}")
    for before_key, after_key, label, write in _PAIRS:
        if before_key in changes and after_key in changes:
            parts.append(f"{label} {_change(changes.pop(before_key), changes.pop(after_key), write)}")
    accuracy = changes.pop("validationAccuracyAfter", None)
    parts += [free_text(key, value) for key, value in changes.items() if value is not None]
    if accuracy is not None:
        parts.append(f"validation accuracy after it {number(accuracy)}")
    return "; ".join(parts) if parts else "-"


def stage_budget(stage: Mapping[str, Any]) -> str:
    """How the stage fared against the accuracy budget, and against the latency check."""
    budget = stage.get("budget") or {}
    if not budget:
        return "-"
    outcome = str(budget.get("outcome", ""))
    attempts = budget.get("attempts") or []
    last = attempts[-1] if attempts else {}
    drop = last.get("drop")
    tried = f" after {len(attempts)} attempts" if len(attempts) > 1 else ""
    lost = f"; {points_text(drop)} on validation" if isinstance(drop, int | float) else ""
    latency = budget.get("latencyCheck")
    speed = f"; {latency_words(latency)}" if isinstance(latency, Mapping) and latency_words(latency) else ""
    return f"{outcome}{tried}{lost}{speed}"


def latency_words(check: Mapping[str, Any]) -> str:
    """A stage's latency check in words: "speed 1.3x at batch 1, 2.1x at batch 32 (ONNX Runtime)"
    (after over before), "slower: ..." when it was skipped for it."""
    batches = [
        (key, value) for key, value in check.items() if key.startswith("batch") and isinstance(value, Mapping)
    ]
    ratios = [f"{number(value.get('speedup'))}x at batch {key[len('batch') :]}" for key, value in batches]
    runtimes = dict.fromkeys(str(value.get("runtimeAfter")) for _, value in batches)
    if not ratios:
        return ""
    where = ", ".join(RUNTIMES.get(r, r) for r in runtimes)
    return f"{'slower' if check.get('slower') else 'speed'} {', '.join(ratios)} ({where})"


def points_text(drop: float) -> str:
    if drop <= 0:
        return f"{-drop:.2g} points gained" if drop < 0 else "no points lost"
    return f"{drop:.2g} points lost"
