"""Durations as users write them in specs: ``90s``, ``10m``, ``1h30m``, ``2d`` or plain seconds."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: str | int | float | None, field_path: str = "duration") -> timedelta | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return timedelta(seconds=float(value))
    text = value.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return timedelta(seconds=float(text))
    position, seconds = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(text) or not text:
        raise ValueError(f"{field_path}: {value!r} is not a duration like 90s, 10m or 1h30m")
    return timedelta(seconds=seconds)
