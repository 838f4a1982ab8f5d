"""Which spec changes a running job takes: a few fields may change, any other change is refused.

Pure: (the spec now, the spec the job was accepted with) -> the spec to run with, and the first
refused field, if any.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Fields that may change after a job started (docs/operator.md "Changing a running job").
MUTABLE_FIELDS = ("suspend", "tuning.maxTrials", "tuning.parallelTrials", "tuning.maxDuration", "cleanup")


@dataclass(frozen=True)
class SpecDecision:
    spec: dict[str, Any]
    refused_field: str | None = None


def _without(spec: Mapping[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    result = copy.deepcopy(dict(spec))
    for path in paths:
        *parents, leaf = path.split(".")
        node: Any = result
        for segment in parents:
            node = node.get(segment) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return result


def _copy_fields(target: dict[str, Any], source: Mapping[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    result = copy.deepcopy(target)
    for path in paths:
        *parents, leaf = path.split(".")
        src: Any = source
        dst: Any = result
        for segment in parents:
            src = src.get(segment) if isinstance(src, Mapping) else None
            dst = dst.get(segment) if isinstance(dst, dict) else None
        if not isinstance(dst, dict):
            continue
        if isinstance(src, Mapping) and leaf in src:
            dst[leaf] = copy.deepcopy(src[leaf])
        else:
            dst.pop(leaf, None)
    return result


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """The dotted path of the first place two camelCase documents differ."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in sorted(set(a) | set(b)):
            found = first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
        return None
    return None if a == b else (path or "spec")


def accept_spec(current: Mapping[str, Any], accepted: Mapping[str, Any] | None) -> SpecDecision:
    """The spec to run with: ``current`` while it differs from ``accepted`` only in mutable fields;
    otherwise ``accepted`` with ``current``'s mutable fields, and the first refused field."""
    if accepted is None:
        return SpecDecision(dict(current))
    refused = first_difference(_without(accepted, MUTABLE_FIELDS), _without(current, MUTABLE_FIELDS))
    if refused is None:
        return SpecDecision(dict(current))
    return SpecDecision(_copy_fields(dict(accepted), current, MUTABLE_FIELDS), f"spec.{refused}")
