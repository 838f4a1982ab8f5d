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
from optikube_operator.reports.pipeline_sentences import summary_sentences
from optikube_operator.reports.pipeline_text import (
    COMPARISON_HEADER,
    comparison_rows,
    runtime_legend,
    runtime_table,
)


def _table(
    title: str, header: Sequence[str], rows: list[list[str]], chosen: int | None = None, *, words: int = 1
) -> Table:
    """A table whose first `words` columns are text, the others numbers. On a narrow terminal
    (or in a log, 80 columns) a long cell wraps between its words rather than ending in an
    ellipsis; the tables printed here are made to fit 80 columns with short labels."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for index, name in enumerate(header):
        table.add_column(name, justify="left" if index < words else "right", overflow="fold", no_wrap=False)
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
    # short labels and a legend: the terminal (or a log) has 80 columns, and "torch.compile" or a
    # quantization's name folded inside a cell is no longer readable; the HTML report spells them out
    runtime = results.get("runtime") or {}
    header, runtimes, chosen = runtime_table(runtime, short=True)
    if runtimes:
        title = "Runtimes tried (the shipped one in bold)"
        console.print(_table(title, header, runtimes, chosen, words=2))
        for line in runtime_legend(runtime):
            console.print(line, highlight=False, markup=False)
    for sentence in summary_sentences(results):
        console.print(sentence, highlight=False, markup=False)
