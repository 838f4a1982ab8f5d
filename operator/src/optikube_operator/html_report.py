"""report.html: optimization history, parameter importances, Pareto front, baseline vs optimized.

Self-contained (plotly's script is embedded once), so it opens offline.
"""

from __future__ import annotations

import html
import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
import plotly.graph_objects as go
from plotly.subplots import make_subplots

log = logging.getLogger(__name__)

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.bad{color:#b00}.good{color:#070}
"""
# Rows of the comparison table: (label, how to read it from a Contract 4 block)
_MEASURES: list[tuple[str, tuple[str, ...]]] = [
    ("parameters", ("parameters",)),
    ("size (bytes)", ("sizeBytes",)),
    ("MACs", ("macs",)),
    ("latency batch 1 p50 (ms)", ("latencyMs", "batch1P50")),
    ("latency batch 32 p50 (ms)", ("latencyMs", "batch32P50")),
]


def _dig(block: Mapping[str, Any], path: tuple[str, ...]) -> float | None:
    node: Any = block
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return float(node) if isinstance(node, int | float) and not isinstance(node, bool) else None


def comparison_rows(results: Mapping[str, Any]) -> list[tuple[str, float | None, float | None]]:
    baseline = results.get("baseline") or {}
    optimized = results.get("optimized") or {}
    metrics = sorted(set(baseline.get("metrics") or {}) | set(optimized.get("metrics") or {}))
    rows = [(name, _dig(baseline, ("metrics", name)), _dig(optimized, ("metrics", name))) for name in metrics]
    rows += [(label, _dig(baseline, path), _dig(optimized, path)) for label, path in _MEASURES]
    return [row for row in rows if row[1] is not None or row[2] is not None]


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _comparison_table(rows: list[tuple[str, float | None, float | None]]) -> str:
    body = []
    for name, before, after in rows:
        ratio = f"{after / before:.3g}x" if before and after is not None else "-"
        body.append(
            f"<tr><td class=l>{html.escape(name)}</td><td>{_number(before)}</td>"
            f"<td>{_number(after)}</td><td>{ratio}</td></tr>"
        )
    head = "<tr><th class=l>measure</th><th>baseline</th><th>optimized</th><th>optimized / baseline</th></tr>"
    return f"<table>{head}{''.join(body)}</table>"


def _comparison_figure(rows: list[tuple[str, float | None, float | None]]) -> go.Figure | None:
    usable = [row for row in rows if row[1] is not None and row[2] is not None]
    if not usable:
        return None
    figure = make_subplots(rows=1, cols=len(usable), subplot_titles=[row[0] for row in usable])
    for column, (_, before, after) in enumerate(usable, start=1):
        figure.add_trace(
            go.Bar(
                x=["baseline", "optimized"],
                y=[before, after],
                marker_color=["#999", "#2a7"],
                showlegend=False,
            ),
            row=1,
            col=column,
        )
    figure.update_layout(title="Baseline vs optimized", height=320)
    return figure


def _trials_table(trials: list[Mapping[str, Any]]) -> str:
    names = sorted({name for trial in trials for name in trial.get("params", {})})
    metrics = sorted({name for trial in trials for name in trial.get("values", {})})
    head = "".join(f"<th>{html.escape(n)}</th>" for n in [*names, *metrics])
    rows = []
    for trial in trials:
        cells = [trial.get("params", {}).get(n) for n in names] + [
            trial.get("values", {}).get(m) for m in metrics
        ]
        text = "".join(
            f"<td>{_number(c) if isinstance(c, int | float) else html.escape(str(c or '-'))}</td>"
            for c in cells
        )
        note = html.escape(str(trial.get("message", "")))
        rows.append(
            f"<tr><td>{trial['number']}</td><td class=l>{trial['state']}</td>{text}"
            f"<td class=l>{note}</td></tr>"
        )
    return (
        f"<table><tr><th>#</th><th class=l>state</th>{head}<th class=l>note</th></tr>{''.join(rows)}</table>"
    )


def study_figures(study: optuna.Study | None, metric_names: list[str]) -> list[go.Figure]:
    """Optuna's own plots, each skipped (and logged) when the trials cannot support it."""
    if study is None or not study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        return []
    multi = len(study.directions) > 1
    target = (lambda t: t.values[0]) if multi else None
    # Importance evaluators look for what makes the target small: orient a maximized objective.
    sign = -1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else 1.0
    oriented = (lambda t: sign * t.values[0]) if multi else None
    plots: list[tuple[str, Any]] = [
        (
            "optimization history",
            lambda: optuna.visualization.plot_optimization_history(
                study, target=target, target_name=metric_names[0]
            ),
        ),
        (
            "parameter importances",
            lambda: optuna.visualization.plot_param_importances(
                study, target=oriented, target_name=metric_names[0]
            ),
        ),
    ]
    if multi:
        plots.append(
            ("Pareto front", lambda: optuna.visualization.plot_pareto_front(study, target_names=metric_names))
        )
    else:
        plots.append(("intermediate values", lambda: optuna.visualization.plot_intermediate_values(study)))
    figures = []
    for name, build in plots:
        try:
            with warnings.catch_warnings():
                # PED-ANOVA warns whenever a target is given; ours is already oriented.
                warnings.filterwarnings("ignore", message="PedAnovaImportanceEvaluator")
                figures.append(build())
        except (ValueError, RuntimeError, ZeroDivisionError, ImportError) as error:
            log.info("report: no %s plot: %s", name, error)
    return figures


def render_report(results: Mapping[str, Any], study: optuna.Study | None) -> str:
    objectives = (results.get("search") or {}).get("objectives") or []
    metric_names = [o["metric"] for o in objectives] or ["objective"]
    rows = comparison_rows(results)
    figures = study_figures(study, metric_names)
    comparison = _comparison_figure(rows)
    if comparison is not None:
        figures.append(comparison)
    parts = [fig.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, fig in enumerate(figures)]
    outcome = results.get("outcome") or {}
    css = "good" if outcome.get("succeeded") else "bad"
    search = results.get("search") or {}
    best = results.get("bestTrial") or {}
    summary = (
        f"<p class={css}>Outcome: <b>{html.escape(str(outcome.get('reason', 'running')))}</b> "
        f"{html.escape(str(outcome.get('message', '')))}</p>"
        f"<p>Search ended: {html.escape(str(search.get('endedBecause')))}; final pipeline used trial "
        f"{search.get('chosenTrial')} with {html.escape(str(search.get('chosenParams')))}; "
        f"best trial {best.get('number')} {html.escape(str(best.get('values')))}.</p>"
    )
    pipeline_report = (results.get("artifacts") or {}).get("pipelineReport")
    if pipeline_report:
        summary += (
            f"<p>Training curves and the stage-by-stage report of the final pipeline: "
            f'<a href="{html.escape(str(pipeline_report))}">{html.escape(str(pipeline_report))}</a></p>'
        )
    job = html.escape(str(results.get("job")))
    table = _comparison_table(rows) if rows else "<p>no pipeline results</p>"
    trials = _trials_table(list(results.get("trials") or []))
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>optikube: {job}</title>"
        f"<style>{_STYLE}</style></head><body><h1>optikube run: {job}</h1>{summary}"
        f"<h2>Baseline vs optimized</h2>{table}<h2>Plots</h2>{''.join(parts)}"
        f"<h2>Trials</h2>{trials}</body></html>"
    )


def write_report(path: Path, results: Mapping[str, Any], study: optuna.Study | None) -> None:
    path.write_text(render_report(results, study))
