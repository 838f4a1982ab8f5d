"""Checking model.params against what a builder accepts, with errors naming the field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def resolve_params(kind: str, given: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"model.params.{unknown[0]}: not a parameter of {kind} (known: {sorted(defaults)})")
    resolved = dict(defaults)
    for key, value in given.items():
        default = defaults[key]
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ValueError(f"model.params.{key}: expected true or false, got {value!r}")
        elif isinstance(default, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)  # search spaces may hand integers over as floats
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"model.params.{key}: expected a positive integer, got {value!r}")
        elif isinstance(default, float) and not isinstance(value, int | float):
            raise ValueError(f"model.params.{key}: expected a number, got {value!r}")
        resolved[key] = value
    return resolved
