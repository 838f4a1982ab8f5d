"""A job's body as the operator keeps it: a plain copy of what a watch event delivered."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optikube_operator.api import GROUP


def as_dict(body: Mapping[str, Any]) -> dict[str, Any]:
    """A plain, private copy of an OptimizationJob kopf hands over (its Body is a read-only view),
    without what the operator never reads (managedFields, kopf's own annotations)."""
    plain = _copied(
        {key: body[key] for key in body if key in ("apiVersion", "kind", "metadata", "spec", "status")}
    )
    meta = plain.get("metadata") or {}
    meta.pop("managedFields", None)
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith(f"{GROUP}/")}
    meta["annotations"] = annotations
    return plain


def _copied(value: Any) -> Any:
    """A copy of parsed JSON: every watch event of every job is copied, and copy.deepcopy's
    generality (memo, reductions) made it one of the operator's largest costs with hundreds of jobs."""
    if isinstance(value, Mapping):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    return value
