"""A job's body as the operator keeps it: a plain copy of what a watch event delivered."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from optikube_operator.api import GROUP


def as_dict(
    body: Mapping[str, Any], before: Mapping[str, Any] | None = None, *, status: bool = True
) -> dict[str, Any]:
    """A plain, private copy of an OptimizationJob kopf hands over (its Body is a read-only view),
    without what the operator never reads (managedFields, kopf's own annotations).

    Most events of a job are the echoes of the operator's own status writes, so with hundreds of
    jobs every copy counts: a spec unchanged since ``before`` (same uid and generation; the
    apiserver moves the generation with every spec change) is that same object, not a new copy,
    and ``status=False`` leaves the status out (the operator's own last write is the newer one)."""
    kept = ("apiVersion", "kind", "metadata", "spec", *(("status",) if status else ()))
    plain = {key: _copied(body[key]) for key in body if key in kept and key != "spec"}
    if "spec" in body:
        unchanged = before is not None and _generation(before) == _generation(body)
        plain["spec"] = before["spec"] if unchanged and before is not None else _copied(body["spec"])
    meta = plain.get("metadata") or {}
    meta.pop("managedFields", None)
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith(f"{GROUP}/")}
    meta["annotations"] = annotations
    return plain


def _copied(value: Any) -> Any:
    """A copy of parsed JSON: every watch event of every job is copied, and copy.deepcopy's
    generality (memo, reductions) made it one of the operator's largest costs with hundreds of jobs."""
    if isinstance(value, Mapping):
        # the keys are interned: JSON decoding makes each document's own copy of every key, and
        # hundreds of kept jobs share the same few hundred
        return {sys.intern(key): _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    return value


def _generation(body: Mapping[str, Any]) -> tuple[Any, Any]:
    meta = body.get("metadata") or {}
    return meta.get("uid"), meta.get("generation")
