"""How a `JobHandle` shows itself in a notebook: phase, best trial and baseline vs optimized, with
the words and tables of the reports (`reports.pipeline_text`)."""

from __future__ import annotations

from html import escape
from typing import Any

from optikube_operator.client.records import JobSnapshot
from optikube_operator.reports.job_text import params_phrase, value_text
from optikube_operator.reports.pipeline_text import COMPARISON_HEADER, comparison_rows

_COLORS = {"Succeeded": "#1a7f37", "Failed": "#cf222e", "Suspended": "#6e7781"}


def _table(header: tuple[str, ...] | list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td style='padding:2px 8px'>{escape(cell)}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _dumped(model: Any) -> dict[str, Any]:
    return {} if model is None else dict(model.model_dump(mode="json", by_alias=True, exclude_none=True))


def job_html(snapshot: JobSnapshot) -> str:
    status = snapshot.status
    color = _COLORS.get(snapshot.phase, "#0969da")
    stage = f", stage {escape(snapshot.stage)}" if snapshot.stage else ""
    counts = status.trial_counts
    parts = [
        f"<div><b>{escape(snapshot.name)}</b> "
        f"<span style='color:{color};font-weight:bold'>{escape(snapshot.phase)}</span>{stage}"
        f" &middot; trials: {counts.completed} finished, {counts.running} running"
        f" &middot; <small>{escape(snapshot.where)}</small></div>"
    ]
    if status.message and snapshot.finished:
        parts.append(f"<div>{escape(status.message)}</div>")
    best = snapshot.best_trial
    if best is not None:
        values = ", ".join(f"{name} {value_text(value)}" for name, value in best.values.items())
        params = escape(params_phrase(best.params))
        parts.append(f"<div>best trial {best.number}: {escape(values)}, with {params}</div>")
    results = status.results
    if results is not None:
        rows = comparison_rows(_dumped(results.baseline), _dumped(results.optimized))
        if rows:
            parts.append("<div><b>Baseline vs optimized</b></div>" + _table(COMPARISON_HEADER, rows))
        if results.runtime:
            parts.append(f"<div>ships for the {escape(results.runtime)} runtime</div>")
    return "<div class='optikube-job'>" + "".join(parts) + "</div>"
