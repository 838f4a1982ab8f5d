"""report.html of the final pipeline: what it did in sentences, baseline vs optimized, the training
curves with the fit diagnosis, what each stage changed and every runtime measured.

The plots are small static PNGs (matplotlib) embedded in the page: no script, tens of kB, and the
page opens anywhere, offline.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from optikube_operator.reports.pipeline_sentences import data_sentences, diagnosis_sentence, summary_sentences
from optikube_operator.reports.pipeline_text import (
    COMPARISON_HEADER,
    MEASURES,
    STAGES,
    comparison_rows,
    dig,
    number,
    runtime_table,
    stage_budget,
    stage_changes,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222;line-height:1.45}"
    "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;"
    "text-align:right;vertical-align:top}th{background:#f3f3f3}td.l,th.l{text-align:left}"
    "tr.chosen{background:#eef8f0}.lead{border-left:.35rem solid #2a7;padding:.4rem 1rem;background:#f7f7f7}"
)


def _pyplot() -> ModuleType:
    """matplotlib, drawing off-screen. Imported on first use: it is the trainer's dependency (the
    pipeline writes this report), not the operator's, which imports this package for the wording."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    _pyplot().close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def curves_figure(curves: Mapping[str, Mapping[str, Sequence[float]]]) -> str:
    figure, axes = _pyplot().subplots(1, 2, figsize=(10, 3.5))
    for axis, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for split in ("train", "validation"):
            values = list(curves.get(split, {}).get(metric, []))
            axis.plot(range(1, len(values) + 1), values, marker="o", label=split)
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.legend()
    return _png(figure)


def _paired(baseline: Mapping[str, Any], optimized: Mapping[str, Any]) -> list[tuple[str, float, float]]:
    rows = [(label, dig(baseline, path), dig(optimized, path)) for label, path, _ in MEASURES]
    return [
        (label, before, after) for label, before, after in rows if before is not None and after is not None
    ]


def comparison_figure(baseline: Mapping[str, Any], optimized: Mapping[str, Any]) -> str | None:
    """One small panel per measure, since their scales differ by orders of magnitude."""
    rows = _paired(baseline, optimized)
    if not rows:
        return None
    figure, axes = _pyplot().subplots(1, len(rows), figsize=(2.3 * len(rows), 3))
    for axis, (label, before, after) in zip([axes] if len(rows) == 1 else list(axes), rows, strict=True):
        axis.bar(["baseline", "optimized"], [before, after], color=["#888", "#2a7"])
        axis.set_title(label.split(" (")[0], fontsize=9)
        axis.tick_params(labelsize=8)
    return _png(figure)


def _image(alt: str, png_base64: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{png_base64}">'


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], chosen: int | None = None) -> str:
    """Plain-text cells; the first column reads as words (left-aligned), the rest as numbers."""
    head = "".join(f"<th{' class=l' if i == 0 else ''}>{html.escape(h)}</th>" for i, h in enumerate(header))
    body = []
    for index, row in enumerate(rows):
        cells = "".join(
            f"<td{' class=l' if i == 0 or len(c) > 24 else ''}>{html.escape(c)}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr{' class=chosen' if index == chosen else ''}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _stage_rows(stages: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    return [
        [
            STAGES.get(str(stage.get("name")), str(stage.get("name"))),
            f"{number(stage.get('durationSeconds'))} s",
            stage_changes(stage),
            stage_budget(stage),
        ]
        for stage in stages
    ]


def _runtime_table(runtime: Mapping[str, Any]) -> str:
    header, rows, chosen = runtime_table(runtime)
    return "<h2>Runtimes</h2>" + _table(header, rows, chosen) if rows else ""


def _paragraphs(sentences: Sequence[str]) -> str:
    return "".join(f"<p>{html.escape(sentence)}</p>" for sentence in sentences)


def render_report(results: Mapping[str, Any], *, title: str = "optikube report") -> str:
    baseline, optimized = results.get("baseline") or {}, results.get("optimized") or {}
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<div class=lead>{_paragraphs(summary_sentences(results))}</div>",
    ]
    data = data_sentences(results.get("data") or {})
    if data:
        parts += ["<h2>Data</h2>", _paragraphs(data)]
    parts += [
        "<h2>Baseline vs optimized</h2>",
        _table(
            list(COMPARISON_HEADER),
            comparison_rows(baseline, optimized),
        ),
    ]
    bars = comparison_figure(baseline, optimized)
    if bars is not None:
        parts.append(_image("baseline vs optimized", bars))
    if results.get("curves"):
        diagnosis = diagnosis_sentence(results.get("diagnosis") or {})
        parts += ["<h2>Training curves</h2>", _paragraphs([diagnosis] if diagnosis else [])]
        parts.append(_image("training curves", curves_figure(results["curves"])))
    stages = list(results.get("stages") or [])
    if stages:
        parts += [
            "<h2>Stages</h2>",
            _table(["stage", "took", "what it did", "accuracy budget"], _stage_rows(stages)),
        ]
    parts.append(_runtime_table(results.get("runtime") or {}))
    head = f"<meta charset='utf-8'><title>{html.escape(title)}</title><style>{STYLE}</style>"
    return f"<!doctype html><html><head>{head}</head><body>{''.join(parts)}</body></html>"


def write_report(results: Mapping[str, Any], path: Path, *, title: str = "optikube report") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(results, title=title), encoding="utf-8")
    return path
