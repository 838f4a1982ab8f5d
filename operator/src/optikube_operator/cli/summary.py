"""What `optikube run` prints once the job is done: the pipeline's outcome in the terminal, with
the same words and tables as the pipeline's HTML report (`pipeline_text`), so that the answer to
"how much smaller and faster, at what accuracy?" does not need a browser."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from optikube_operator.reports.job_text import params_phrase, values_phrase
from optikube_operator.reports.pipeline_text import (
    COMPARISON_HEADER,
    comparison_rows,
    runtime_table,
    summary_sentences,
)


def _table(
    title: str, header: Sequence[str], rows: list[list[str]], chosen: int | None = None, *, words: int = 1
) -> Table:
    """A table whose first `words` columns are text, the others numbers. On a narrow terminal
    (or in a log, 80 columns) long cells wrap rather than end in an ellipsis."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for index, name in enumerate(header):
        table.add_column(name, justify="left" if index < words else "right", overflow="fold")
    for index, row in enumerate(rows):
        table.add_row(*row, style="bold green" if index == chosen else None)
    return table


def best_trial_line(results: Mapping[str, Any]) -> str | None:
    best = results.get("bestTrial") or {}
    if not best:
        return None
    objectives = [str(o.get("metric")) for o in (results.get("search") or {}).get("objectives") or []]
    values = values_phrase(best.get("values") or {}, objectives)
    return f"best trial {best.get('number')}: {values}, with {params_phrase(best.get('params') or {})}"


def print_pipeline_summary(console: Console, results: Mapping[str, Any]) -> None:
    """The baseline-vs-optimized table, the runtimes tried (the shipped one in bold) and the
    report's opening sentences: what ran, what ships, the test comparison and the budget."""
    rows = comparison_rows(results.get("baseline") or {}, results.get("optimized") or {})
    if rows:
        console.print(_table("Baseline vs optimized", COMPARISON_HEADER, rows))
    header, runtimes, chosen = runtime_table(results.get("runtime") or {})
    # the baseline's own latency per runtime stays in the HTML report: the terminal has 80 columns
    kept = [index for index, name in enumerate(header) if not name.startswith("baseline")]
    header, runtimes = [header[i] for i in kept], [[row[i] for i in kept] for row in runtimes]
    if runtimes:
        title = "Runtimes tried (the shipped one in bold)"
        console.print(_table(title, header, runtimes, chosen, words=2))
    for sentence in summary_sentences(results):
        console.print(sentence, highlight=False, markup=False)
