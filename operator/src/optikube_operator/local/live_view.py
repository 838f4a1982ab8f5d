"""Progress of a local run with rich: a live trials table on a terminal, plain lines otherwise."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from optikube_operator.core import JobSettings, ObservedTrial, PipelineState
from optikube_operator.core.summary import search_eta_seconds
from optikube_operator.local.state import RunState
from optikube_operator.reports.job_text import STATE_STYLES

_SHOWN_ROWS = 20


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class LiveView:
    def __init__(self, settings: JobSettings, console: Console | None = None) -> None:
        self.console = console or Console()
        self.settings = settings
        self.live: Live | None = None
        self._last: dict[str, str] = {}

    def __enter__(self) -> LiveView:
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
        if pipeline.state is not PipelineState.NOT_STARTED:
            return f"pipeline ({pipeline.state.value}{': ' + pipeline.stage if pipeline.stage else ''})"
        trials = state.observed().trials
        done = sum(1 for trial in trials if trial.state.finished)
        eta = search_eta_seconds(self.settings, trials)
        eta_text = f", tuning ETA ~{eta:.0f}s" if eta is not None else ""
        return f"tuning: {done}/{self.settings.max_trials} trials finished{eta_text}"

    def render(self, state: RunState) -> Group:
        primary = self.settings.primary.metric
        names = list(self.settings.search_space)
        metrics = [o.metric for o in self.settings.objectives]
        table = Table(title=f"optikube run {state.job_name}", expand=False)
        table.add_column("#", justify="right")
        table.add_column("state")
        for name in names:
            table.add_column(name.split(".")[-1], justify="right")
        table.add_column(f"{primary} (step)", justify="right")
        for metric in metrics:
            table.add_column(metric, justify="right")
        for number in sorted(state.trials)[-_SHOWN_ROWS:]:
            trial = state.trials[number].record
            table.add_row(
                str(number),
                Text(trial.state.value, style=STATE_STYLES.get(trial.state.value, "")),
                *[_format(trial.params.get(n, "")) for n in names],
                self._latest(trial, primary),
                *[_format(trial.values.get(m, "")) for m in metrics],
            )
        return Group(table, Text(self._stage(state), style="bold"))

    @staticmethod
    def _latest(trial: ObservedTrial, metric: str) -> str:
        value = trial.latest_values.get(metric)
        return f"{_format(value)} ({trial.latest_step})" if value is not None else ""

    def _print_changes(self, state: RunState) -> None:
        for number in sorted(state.trials):
            trial = state.trials[number].record
            key = f"trial {number}"
            if self._last.get(key) != trial.state.value:
                self._last[key] = trial.state.value
                values = " ".join(f"{k}={_format(v)}" for k, v in trial.values.items())
                self.console.print(f"{key}: {trial.state.value} {values} {trial.message}".rstrip())
        stage = self._stage(state)
        if self._last.get("stage") != stage and not stage.startswith("tuning"):
            self._last["stage"] = stage
            self.console.print(stage)
