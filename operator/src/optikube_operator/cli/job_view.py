"""How the client's commands show a job: the printer columns of `kubectl get optjob`, the trials,
the conditions, the runtimes, and the live view of `optikube watch`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from optikube_operator.client import JobSnapshot, TrialRecord
from optikube_operator.reports.job_text import STATE_STYLES, params_phrase, value_text

COLUMNS = ("NAME", "PHASE", "STAGE", "TRIALS", "BEST", "SIZE RATIO", "SPEEDUP", "RUNTIME", "AGE")


def table(header: Sequence[str], rows: Iterable[Sequence[str]], title: str | None = None) -> Table:
    shown = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False)
    for name in header:
        shown.add_column(name, overflow="fold")
    for row in rows:
        shown.add_row(*row)
    return shown


def columns(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Rows as kubectl prints them: padded columns, never wrapped or cut (a log may be wider)."""
    lines = [list(header), *(list(row) for row in rows)]
    widths = [max(len(line[index]) for line in lines) for index in range(len(header))]
    return "\n".join(
        "   ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _shown(value: Any) -> str:
    return "" if value is None else value_text(value)


def age(start: datetime | None, now: datetime | None = None) -> str:
    if start is None:
        return ""
    seconds = int(((now or datetime.now(UTC)) - start).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def printer_row(snapshot: JobSnapshot) -> list[str]:
    """The columns `kubectl get optjob` prints (the CRD's additionalPrinterColumns)."""
    status = snapshot.status
    results = status.results
    best = status.best_trial
    return [
        snapshot.name,
        snapshot.phase,
        snapshot.stage or "",
        str(status.trial_counts.completed),
        _shown(best.objective_value if best else None),
        _shown(results.size_ratio if results else None),
        _shown(results.speedup if results else None),
        (results.runtime or "") if results else "",
        age(status.start_time),
    ]


def objective_metrics(snapshot: JobSnapshot) -> list[str]:
    return [str(objective.get("metric")) for objective in snapshot.spec.get("objectives") or []]


def trials_table(
    trials: Sequence[TrialRecord], metrics: Sequence[str] = (), title: str | None = "Trials"
) -> Table:
    """One row per trial: its parameters, latest step and the objectives' values (every value
    when `metrics` is empty)."""
    params = sorted({name for trial in trials for name in trial.params})
    if not metrics:
        metrics = sorted({name for trial in trials for name in (*trial.values, *trial.latest_values)})
    header = ["#", "state", *(name.split(".")[-1] for name in params), "step", *metrics, "message"]
    rows = []
    for trial in trials:
        values = trial.values or trial.latest_values
        rows.append(
            [
                str(trial.number),
                trial.state,
                *(_shown(trial.params.get(name)) for name in params),
                _shown(trial.latest_step),
                *(_shown(values.get(name)) for name in metrics),
                trial.message,
            ]
        )
    return table(header, rows, title)


def best_line(trial: TrialRecord | None) -> str:
    if trial is None:
        return "best trial: none yet"
    values = ", ".join(f"{name} {value_text(value)}" for name, value in trial.values.items())
    return f"best trial {trial.number}: {values or 'no values'}, with {params_phrase(trial.params)}"


def runtime_rows(snapshot: JobSnapshot) -> list[list[str]]:
    results = snapshot.status.results
    rows = []
    for candidate in results.runtimes if results else []:
        latency = candidate.optimized
        # documents written before `shipped` mark the first of the chosen runtime
        marked = any(c.shipped for c in results.runtimes) if results else False
        shipped = candidate.shipped if marked else bool(results and candidate.runtime == results.runtime)
        rows.append(
            [
                candidate.runtime + (" (shipped)" if shipped else ""),
                candidate.quantization or "",
                _shown(latency.batch1_p50 if latency else None),
                _shown(latency.batch32_p50 if latency else None),
                _shown(candidate.accuracy),
                "" if candidate.within_budget is None else str(candidate.within_budget).lower(),
                candidate.error or "",
            ]
        )
    return rows


RUNTIME_HEADER = (
    "runtime",
    "quantization",
    "batch 1 (ms)",
    "batch 32 (ms)",
    "accuracy",
    "within budget",
    "error",
)


def budget_lines(snapshot: JobSnapshot) -> list[str]:
    """The search's budget and the accuracy budget, as the spec sets them and as they are used."""
    spec: Mapping[str, Any] = snapshot.spec
    tuning = spec.get("tuning") or {}
    counts = snapshot.status.trial_counts
    lines = []
    if tuning:
        lines.append(
            f"trials: {counts.completed} of {tuning.get('maxTrials')} finished, {counts.running} running"
            f" (at most {tuning.get('parallelTrials')} at once), {counts.failed} failed of"
            f" {tuning.get('maxFailedTrials')} allowed"
        )
        limits = [f"{key} {tuning[key]}" for key in ("maxDuration", "trialTimeout", "goal") if key in tuning]
        if limits:
            start, end = snapshot.status.start_time, snapshot.status.completion_time
            took = f"ran for {age(start, end)}" if end is not None else f"running for {age(start)}"
            lines.append("limits: " + ", ".join(limits) + f" ({took})")
    allowed = (spec.get("compression") or {}).get("maxAccuracyDrop")
    results = snapshot.status.results
    drop = results.accuracy_drop if results else None
    if allowed is not None or drop is not None:
        lines.append(
            f"accuracy budget: {_shown(drop) or 'not measured yet'} lost of {_shown(allowed) or '?'} allowed"
        )
    if results is not None and results.speedup is not None:
        line = f"speed at batch 1: {_shown(results.speedup)}x the baseline in PyTorch"
        if results.speedup_vs_onnx_runtime is not None:
            line += f", {_shown(results.speedup_vs_onnx_runtime)}x the baseline exported to ONNX Runtime"
        lines.append(line)
    for stage in results.skipped_stages if results is not None else []:
        why = "over the accuracy budget" if stage.check == "accuracyBudget" else "slower"
        lines.append(f"skipped {stage.name} ({why}){f': {stage.reason}' if stage.reason else ''}")
    return lines


def live_view(snapshot: JobSnapshot) -> Group:
    """What `optikube watch` redraws: the trials, the best so far, phase and stage."""
    heading = Text(f"{snapshot.name}  ", style="bold")
    heading.append(snapshot.phase, style=STATE_STYLES.get(snapshot.phase, "bold cyan"))
    if snapshot.stage:
        heading.append(f"  stage {snapshot.stage}")
    progress = snapshot.status.progress
    if progress is not None:
        heading.append(f"  {progress.percent:.0f}%")
    trials = trials_table(snapshot.trials[-20:], objective_metrics(snapshot), title=None)
    return Group(heading, trials, Text(best_line(snapshot.best_trial)))
