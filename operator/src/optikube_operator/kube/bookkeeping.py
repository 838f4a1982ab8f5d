"""kopf's per-object bookkeeping, kept nowhere.

kopf builds every object's "essence" (a deep copy of the body, less its bookkeeping) on every watch
event for the change detection of `@kopf.on.create/update/resume` handlers, even when there are
none. The operator has only event handlers (`handlers`), so nothing reads it; with hundreds of
jobs, whose every status write comes back as an event, that copying was a quarter of the operator's
CPU. These storages make it free. A change handler added later needs kopf's own storages back.
"""

from __future__ import annotations

from typing import Any

import kopf


class NoDiffBase(kopf.DiffBaseStorage):
    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


class NoProgress(kopf.ProgressStorage):
    def fetch(self, *, key: Any, body: kopf.Body) -> kopf.ProgressRecord | None:
        return None

    def store(self, *, key: Any, record: kopf.ProgressRecord, body: kopf.Body, patch: kopf.Patch) -> None:
        return None

    def purge(self, *, key: Any, body: kopf.Body, patch: kopf.Patch) -> None:
        return None

    def touch(self, *, body: kopf.Body, patch: kopf.Patch, value: str | None) -> None:
        return None

    def clear(self, *, essence: kopf.BodyEssence) -> kopf.BodyEssence:
        return essence
