"""List-then-watch caches of API objects (what client-go calls an informer), as plain dicts."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from optikube_testcluster.processnode.rest import ApiError, RestClient

log = logging.getLogger(__name__)
Key = tuple[str, str]


def object_key(obj: dict[str, Any]) -> Key:
    metadata = obj.get("metadata", {})
    return metadata.get("namespace", ""), metadata.get("name", "")


class Informer:
    """Keeps every object of one collection path (e.g. /api/v1/pods) in memory.

    `on_change` runs (on the informer's thread) after each change; the agent only uses it to wake
    its reconcile loop, so it must be quick.
    """

    def __init__(
        self,
        rest: RestClient,
        path: str,
        on_change: Callable[[], None],
        params: dict[str, Any] | None = None,
    ) -> None:
        self.rest = rest
        self.path = path
        self.params = params or {}
        self.on_change = on_change
        self._objects: dict[Key, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._synced = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"informer {path}", daemon=True)

    def start(self) -> Informer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()

    def wait_synced(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    def items(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._objects.values())

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._objects.get((namespace, name))

    def _list(self) -> str:
        listing = self.rest.get(self.path, **self.params)
        with self._lock:
            self._objects = {object_key(item): item for item in listing.get("items", [])}
        self._synced.set()
        self.on_change()
        return str(listing["metadata"]["resourceVersion"])

    def _apply(self, event: dict[str, Any]) -> str | None:
        kind, obj = event.get("type"), event.get("object", {})
        if kind == "ERROR":
            raise ApiError(int(obj.get("code", 500)), "WATCH", self.path, str(obj.get("message")))
        version = obj.get("metadata", {}).get("resourceVersion")
        if kind == "BOOKMARK":
            return str(version) if version else None
        with self._lock:
            if kind == "DELETED":
                self._objects.pop(object_key(obj), None)
            else:
                self._objects[object_key(obj)] = obj
        self.on_change()
        return str(version) if version else None

    def _run(self) -> None:
        version: str | None = None
        while not self._stopped.is_set():
            try:
                if version is None:
                    version = self._list()
                for event in self.rest.watch(self.path, version):
                    version = self._apply(event) or version
                    if self._stopped.is_set():
                        return
            except ApiError as error:
                if error.status == 410:  # too old: list again
                    version = None
                    continue
                log.warning("watch %s: %s", self.path, error)
                version = None
                time.sleep(1.0)
            except Exception as error:  # the apiserver restarting or stopping
                if self._stopped.is_set():
                    return
                log.debug("watch %s: %s", self.path, error)
                time.sleep(0.5)
