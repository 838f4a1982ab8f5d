"""Writing (or, with `--check`, verifying) the files the API generators produce."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

Command = TypeVar("Command", bound=Callable[..., Any])


def output_option(
    flag: str, name: str, default: Path, help: str, *, folder: bool
) -> Callable[[Command], Command]:
    """A generator's option naming where it writes: a folder or a file, ``default`` unless given."""
    kind = click.Path(file_okay=not folder, dir_okay=folder, path_type=Path)
    return click.option(flag, name, type=kind, default=default, show_default=True, help=help)


def check_option(what: str) -> Callable[[Command], Command]:
    """`--check`, which verifies ``what`` (the generated files as committed) instead of writing it."""
    return click.option("--check", is_flag=True, help=f"Exit 1 if {what} differs instead of writing.")


def write_or_check(files: Mapping[Path, str], *, check: bool, command: str) -> None:
    """Write each path's text; with `check`, write nothing and exit 1 naming every stale file
    so that CI tells which generator (`command`) to rerun."""
    stale = []
    for path, text in files.items():
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        click.echo(f"wrote {path}")
    if stale:
        click.echo(f"out of date: {', '.join(stale)}; run {command}", err=True)
        sys.exit(1)
