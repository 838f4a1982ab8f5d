"""The benchmarks' terminal tables: one row per thing measured, its name first."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table


def named_rows(title: str, columns: Sequence[str]) -> Table:
    """A table whose first column names each row (left-aligned) and whose others are measurements."""
    table = Table(title=title)
    for index, column in enumerate(columns):
        table.add_column(column, justify="right" if index else "left")
    return table


def add_failed_row(table: Table, name: str, error: str) -> None:
    """A row of a run that failed: its name and the start of its error, the other cells empty."""
    table.add_row(name, f"[red]{error}", *[""] * (len(table.columns) - 2))
