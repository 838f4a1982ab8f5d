"""Writing (or, with `--check`, verifying) the files the API generators produce."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

import click


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
