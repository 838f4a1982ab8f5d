"""Progress of a local run with rich: a live trials table on a terminal, plain lines otherwise."""

from __future__ import annotations

import math
from datetime import datetime
from types import TracebackType
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from optikube_operator.core.settings import read_settings
from optikube_operator.local.state import RunState, TrialRecord

_COLORS = {
    "Succeeded": "green",
    "Running": "cyan",
    "Pending": "yellow",
    "Pruned": "magenta",
    "Failed": "red",
    "TimedOut": "red",
    "Stopped": "dim",
}
_SHOWN_ROWS = 20


def _seconds(start: str | None, end: str | None) -> float | None:
    if start is None or end is None:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def eta_seconds(state: RunState, max_trials: int, parallel: int) -> float | None:
    """Remaining tuning time: mean finished-trial duration times the remaining waves of trials."""
    durations = [d for t in state.trials.values() if (d := _seconds(t.start_time, t.end_time)) is not None]
    if not durations:
        return None
    finished = sum(1 for t in state.trials.values() if t.end_time is not None)
    waves = math.ceil(max(max_trials - finished, 0) / max(parallel, 1))
    return waves * sum(durations) / len(durations)


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class RichProgress:
    def __init__(self, spec: dict[str, Any], console: Console | None = None) -> None:
        self.console = console or Console()
        self.settings = read_settings(spec)
        self.live: Live | None = None
        self._last: dict[str, str] = {}

    def __enter__(self) -> RichProgress:
        if self.console.is_terminal:
            self.live = Live(console=self.console, refresh_per_second=4, transient=False)
            self.live.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.live is not None:
            self.live.stop()

    def update(self, state: RunState) -> None:
        if self.live is not None:
            self.live.update(self.render(state))
        else:
            self._print_changes(state)

    def _stage(self, state: RunState) -> str:
        if state.finished:
            return f"finished: {state.finished.get('reason')}"
        pipeline = state.pipeline
        if pipeline.state not in ("NotStarted",):
            return f"pipeline ({pipeline.state}{': ' + pipeline.stage if pipeline.stage else ''})"
        done = sum(1 for t in state.trials.values() if t.end_time is not None)
        eta = eta_seconds(state, self.settings.max_trials, self.settings.parallel_trials)
        eta_text = f", tuning ETA ~{eta:.0f}s" if eta is not None else ""
        return f"tuning: {done}/{self.settings.max_trials} trials finished{eta_text}"

    def render(self, state: RunState) -> Group:
        primary = self.settings.primary.metric
        names = [p.name for p in self.settings.search_space]
        metrics = [o.metric for o in self.settings.objectives]
        table = Table(title=f"optikube run {state.job_name}", expand=False)
        table.add_column("#", justify="right")
        table.add_column("state")
        for name in names:
            table.add_column(name.split(".")[-1], justify="right")
        table.add_column(f"{primary} (epoch)", justify="right")
        for metric in metrics:
            table.add_column(metric, justify="right")
        for number in sorted(state.trials)[-_SHOWN_ROWS:]:
            trial = state.trials[number]
            table.add_row(
                str(number),
                Text(trial.state, style=_COLORS.get(trial.state, "")),
                *[_format(trial.params.get(n, "")) for n in names],
                self._latest(trial, primary),
                *[_format(trial.values.get(m, "")) for m in metrics],
            )
        return Group(table, Text(self._stage(state), style="bold"))

    @staticmethod
    def _latest(trial: TrialRecord, metric: str) -> str:
        if not trial.intermediate:
            return ""
        step = max(trial.intermediate, key=int)
        value = trial.intermediate[step].get(metric)
        return f"{_format(value)} ({step})" if value is not None else ""

    def _print_changes(self, state: RunState) -> None:
        for number in sorted(state.trials):
            trial = state.trials[number]
            key = f"trial {number}"
            if self._last.get(key) != trial.state:
                self._last[key] = trial.state
                values = " ".join(f"{k}={_format(v)}" for k, v in trial.values.items())
                self.console.print(f"{key}: {trial.state} {values} {trial.message}".rstrip())
        stage = self._stage(state)
        if self._last.get("stage") != stage and not stage.startswith("tuning"):
            self._last["stage"] = stage
            self.console.print(stage)
