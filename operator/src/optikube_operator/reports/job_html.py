"""report.html: what the job did in sentences, baseline vs optimized, Optuna's study plots, the trials.

A failed job's report leads with why it failed and what to do. The plots are plotly figures that
load plotly's script from one shared `plotly.min.js` beside the report (written once per output
folder), so the page itself stays small and still opens offline.
"""

from __future__ import annotations

import html
import logging
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go
import plotly.offline
from plotly.subplots import make_subplots

from optikube_operator.reports.job_text import (
    MEASURES,
    chance_sentence,
    comparison_rows,
    comparison_sentence,
    data_sentence,
    number,
    outcome_lead,
    resolution_warning,
    value_text,
)

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

PLOTLY_JS = "plotly.min.js"
BARS_PER_ROW = 4
_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}tr.chosen{background:#eef8f0}
.lead{border-left:.35rem solid #888;padding:.4rem 1rem;margin:1rem 0;background:#f7f7f7}
.lead.good{border-color:#2a7}.lead.bad{border-color:#b00;background:#fdf2f2}.lead.pending{border-color:#c80}
.warn{border-left:.35rem solid #c80;background:#fff8e6;padding:.4rem 1rem}
pre{background:#222;color:#eee;padding:.6rem;overflow-x:auto;font-size:.8rem}
code{background:#eee;padding:0 .2rem}
"""
_SPEC_PATH = re.compile(r"(spec\.[A-Za-z0-9_.]+[A-Za-z0-9_]|`[^`]+`)")


def prose(text: str) -> str:
    """A sentence as HTML: escaped, with spec paths and commands set as code."""
    escaped = html.escape(text, quote=False)
    return _SPEC_PATH.sub(lambda m: f"<code>{m.group(0).strip('`')}</code>", escaped)


def _comparison_table(rows: list[tuple[str, float | None, float | None]]) -> str:
    writers = {label: write for label, _, write in MEASURES}
    body = []
    for name, before, after in rows:
        write = writers.get(name, number)
        ratio = f"{after / before:.3g}x" if before and after is not None else "-"
        body.append(
            f"<tr><td class=l>{html.escape(name)}</td><td>{write(before)}</td>"
            f"<td>{write(after)}</td><td>{ratio}</td></tr>"
        )
    head = "<tr><th class=l>measure</th><th>baseline</th><th>optimized</th><th>optimized / baseline</th></tr>"
    return f"<table>{head}{''.join(body)}</table>"


def _comparison_figure(rows: list[tuple[str, float | None, float | None]]) -> go.Figure | None:
    """One small panel per measure (their scales differ by orders of magnitude), four to a row."""
    usable = [row for row in rows if row[1] is not None and row[2] is not None]
    if not usable:
        return None
    columns = min(len(usable), BARS_PER_ROW)
    lines = math.ceil(len(usable) / columns)
    figure = make_subplots(rows=lines, cols=columns, subplot_titles=[row[0] for row in usable])
    for index, (_, before, after) in enumerate(usable):
        figure.add_trace(
            go.Bar(
                x=["baseline", "optimized"],
                y=[before, after],
                marker_color=["#999", "#2a7"],
                showlegend=False,
            ),
            row=index // columns + 1,
            col=index % columns + 1,
        )
    figure.update_layout(title="Baseline vs optimized", height=120 + 240 * lines)
    return figure


def _metric_order(trials: Sequence[Mapping[str, Any]], objectives: Sequence[str]) -> list[str]:
    seen = {name for trial in trials for name in trial.get("values", {})}
    return [m for m in objectives if m in seen] + sorted(seen - set(objectives))


def _trials_table(trials: Sequence[Mapping[str, Any]], objectives: Sequence[str], chosen: Any) -> str:
    names = sorted({name for trial in trials for name in trial.get("params", {})})
    metrics = _metric_order(trials, objectives)
    # a dotted path's last part names the column; the full path is its tooltip
    head = "".join(f'<th title="{html.escape(n)}">{html.escape(n.rsplit(".", 1)[-1])}</th>' for n in names)
    head += "".join(f"<th>{html.escape(m)}</th>" for m in metrics)
    rows = []
    for trial in trials:
        cells = [trial.get("params", {}).get(n) for n in names]
        cells += [trial.get("values", {}).get(m) for m in metrics]
        text = "".join(f"<td>{html.escape(value_text(c))}</td>" for c in cells)
        picked = trial.get("number") == chosen
        note = ("chosen for the final pipeline. " if picked else "") + str(trial.get("message", ""))
        rows.append(
            f"<tr{' class=chosen' if picked else ''}><td>{trial['number']}</td>"
            f"<td class=l>{html.escape(str(trial['state']))}</td>{text}"
            f"<td class=l>{html.escape(note.strip())}</td></tr>"
        )
    return (
        f"<table><tr><th>#</th><th class=l>state</th>{head}<th class=l>note</th></tr>{''.join(rows)}</table>"
    )


def study_figures(study: optuna.Study | None, metric_names: list[str]) -> list[go.Figure]:
    """Optuna's own plots, each skipped (and logged) when the trials cannot support it."""
    # imported here: the reports' wording and layout need no Optuna, only a study's plots do
    import optuna

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


def _lead(results: Mapping[str, Any]) -> str:
    lead = outcome_lead(results)
    parts = [f"<h2>{html.escape(lead.verdict)}</h2>"]
    parts += [f"<p>{prose(sentence)}</p>" for sentence in lead.sentences]
    if lead.advice:
        parts.append(f"<p><b>What to do:</b> {prose(lead.advice)}</p>")
    if lead.log_lines:
        tail = html.escape("\n".join(lead.log_lines[-30:]))
        parts.append(f"<p>{html.escape(lead.log_title)}:</p><pre>{tail}</pre>")
    return f"<div class='lead {lead.tone}'>{''.join(parts)}</div>"


def render_report(results: Mapping[str, Any], study: optuna.Study | None) -> str:
    search = results.get("search") or {}
    objectives = [str(o["metric"]) for o in search.get("objectives") or []]
    rows = comparison_rows(results)
    figures = study_figures(study, objectives or ["objective"])
    comparison = _comparison_figure(rows)
    if comparison is not None:
        figures.append(comparison)
    plots = [
        figure.to_html(full_html=False, include_plotlyjs=False, div_id=f"plot-{index}")
        for index, figure in enumerate(figures)
    ]
    parts = [_lead(results)]
    warning = resolution_warning(results)
    if warning:
        parts.append(
            f"<p class=warn><b>The validation split cannot rank these trials.</b> {prose(warning)}</p>"
        )
    data = data_sentence(results.get("data") or {})
    if data:
        parts.append(f"<p>{prose(data)}</p>")
    if rows:
        chance = chance_sentence((results.get("optimized") or {}).get("testComparison") or {})
        summary = " ".join(s for s in (comparison_sentence(rows), chance) if s)
        parts += ["<h2>Baseline vs optimized</h2>", f"<p>{prose(summary)}</p>" if summary else ""]
        parts.append(_comparison_table(rows))
    pipeline_report = (results.get("artifacts") or {}).get("pipelineReport")
    if pipeline_report:
        link = html.escape(str(pipeline_report))
        parts.append(
            "<p>The training curves, the fit diagnosis and what each compression stage changed are in the"
            f' final pipeline\'s report: <a href="{link}">{link}</a>.</p>'
        )
    if plots:
        parts += ["<h2>Plots</h2>", *plots]
    trials = list(results.get("trials") or [])
    if trials:
        parts += ["<h2>Trials</h2>", _trials_table(trials, objectives, search.get("chosenTrial"))]
    job = html.escape(str(results.get("job") or "job"))
    script = f'<script charset="utf-8" src="{PLOTLY_JS}"></script>' if plots else ""
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>optikube: {job}</title>"
        f"<style>{_STYLE}</style>{script}</head><body><h1>optikube run: {job}</h1>{''.join(parts)}"
        "</body></html>"
    )


def write_plotly_js(directory: Path) -> Path:
    """plotly's script beside the reports of ``directory``, rewritten only when plotly changed."""
    path = directory / PLOTLY_JS
    script = plotly.offline.get_plotlyjs()
    if path.exists() and path.read_text(encoding="utf-8") == script:
        return path
    temporary = path.with_name(f".{PLOTLY_JS}.tmp")
    temporary.write_text(script, encoding="utf-8")
    temporary.replace(path)  # a killed write leaves the old script or none, never half of one
    return path


def write_report(path: Path, results: Mapping[str, Any], study: optuna.Study | None) -> None:
    page = render_report(results, study)
    if f'src="{PLOTLY_JS}"' in page:
        write_plotly_js(path.parent)
    path.write_text(page, encoding="utf-8")
