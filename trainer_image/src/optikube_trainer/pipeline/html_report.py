"""report.html: a self-contained page with the training curves, baseline vs optimized bars and
what each stage changed (matplotlib PNGs embedded as base64)."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

BAR_FIELDS = (
    ("accuracy", lambda m: m["metrics"].get("accuracy")),
    ("f1", lambda m: m["metrics"].get("f1")),
    ("parameters", lambda m: m.get("parameters")),
    ("sizeBytes", lambda m: m.get("sizeBytes")),
    ("macs", lambda m: m.get("macs")),
    ("latency batch 1 p50 (ms)", lambda m: m.get("latencyMs", {}).get("batch1P50")),
    ("latency batch 32 p50 (ms)", lambda m: m.get("latencyMs", {}).get("batch32P50")),
)


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def curves_figure(curves: dict[str, dict[str, list[float]]]) -> str:
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for axis, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for split in ("train", "validation"):
            values = curves.get(split, {}).get(metric, [])
            axis.plot(range(1, len(values) + 1), values, marker="o", label=split)
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.legend()
    return _png(figure)


def comparison_figure(baseline: dict[str, Any], optimized: dict[str, Any]) -> str:
    """One small panel per measure, since their scales differ by orders of magnitude."""
    fields = [
        (name, get) for name, get in BAR_FIELDS if get(baseline) is not None and get(optimized) is not None
    ]
    figure, axes = plt.subplots(1, max(1, len(fields)), figsize=(2.3 * max(1, len(fields)), 3))
    axes_list = list(axes) if len(fields) > 1 else [axes]
    for axis, (name, get) in zip(axes_list, fields, strict=False):
        axis.bar(["baseline", "optimized"], [get(baseline), get(optimized)], color=["#888", "#2a7"])
        axis.set_title(name, fontsize=9)
        axis.tick_params(labelsize=8)
    return _png(figure)


STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:4px 8px}"
)


def _image(alt: str, png_base64: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{png_base64}">'


def _table(rows: list[list[str]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def render_report(results: dict[str, Any], *, title: str = "optikube report") -> str:
    baseline, optimized = results["baseline"], results["optimized"]
    rows = [[name, _fmt(get(baseline)), _fmt(get(optimized))] for name, get in BAR_FIELDS]
    stage_rows = [
        [s["name"], _fmt(s.get("durationSeconds")), json.dumps(s.get("changes", {}), sort_keys=True)[:400]]
        for s in results.get("stages", [])
    ]
    diagnosis = results.get("diagnosis", {})
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        "<h2>Baseline vs optimized</h2>",
        _table(rows, ["measure", "baseline", "optimized"]),
        _image("baseline vs optimized", comparison_figure(baseline, optimized)),
    ]
    if results.get("curves"):
        parts += [
            "<h2>Training curves</h2>",
            f"<p>Diagnosis: <b>{html.escape(str(diagnosis.get('fit', '-')))}</b> "
            f"(gap {html.escape(_fmt(diagnosis.get('gap')))}; "
            f"{html.escape(str(diagnosis.get('trend', '')))})</p>",
            _image("training curves", curves_figure(results["curves"])),
        ]
    parts += ["<h2>Stages</h2>", _table(stage_rows, ["stage", "seconds", "changes"])]
    head = f"<meta charset='utf-8'><title>{html.escape(title)}</title><style>{STYLE}</style>"
    return f"<!doctype html><html><head>{head}</head><body>{''.join(parts)}</body></html>"


def write_report(results: dict[str, Any], path: Path, *, title: str = "optikube report") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(results, title=title))
    return path
