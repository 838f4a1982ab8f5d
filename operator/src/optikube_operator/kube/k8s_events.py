"""Kubernetes Events about OptimizationJobs: one for every transition a user cares about.

Posted through the operator's own client (core/v1 Events, deduplicated by name so that a repeated
reconcile after a restart bumps a count instead of piling up copies).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from optikube_operator.kube import detached
from optikube_operator.kube.client import ApiError, KubeClient, resource_path

log = logging.getLogger(__name__)
MAX_NOTE = 1024


def build_k8s_event(
    regarding: Mapping[str, Any], reason: str, message: str, *, warning: bool, component: str, now: datetime
) -> dict[str, Any]:
    """A core/v1 Event about ``regarding``; its name depends only on (object, reason, message)."""
    meta = regarding["metadata"]
    digest = hashlib.sha256(f"{meta.get('uid')}/{reason}/{message}".encode()).hexdigest()[:16]
    stamp = now.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{digest}", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": regarding["apiVersion"],
            "kind": regarding["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
        },
        "reason": reason,
        "message": message[:MAX_NOTE],
        "type": "Warning" if warning else "Normal",
        "source": {"component": component},
        "reportingComponent": component,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class K8sEventWriter:
    """Posts Events in the background: announcing a transition never delays acting on it."""

    def __init__(self, client: KubeClient, component: str = "optikube-operator", backlog: int = 1000) -> None:
        self._client = client
        self._component = component
        self._pending: set[asyncio.Task[None]] = set()
        self._backlog = backlog

    async def post(
        self, regarding: Mapping[str, Any], reason: str, message: str, *, warning: bool = False
    ) -> None:
        event = build_k8s_event(
            regarding, reason, message, warning=warning, component=self._component, now=datetime.now(UTC)
        )
        if len(self._pending) >= self._backlog:
            log.warning(
                "dropped event %s on %s: %d events wait to be posted",
                reason,
                event["metadata"]["name"],
                self._backlog,
            )
            return
        task = detached.task(self._send(event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def flush(self) -> None:
        """Wait for the Events posted so far (before stopping)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def _send(self, event: dict[str, Any]) -> None:
        path = resource_path("v1", "events", event["metadata"]["namespace"])
        try:
            await self._client.create(path, event)
        except ApiError as error:
            if error.already_exists:
                return  # the same transition announced again after a restart
            log.warning("could not post event %s: %s", event["metadata"]["name"], error)
        except Exception as error:  # a busy apiserver must not lose the operator its task
            log.warning("could not post event %s: %s", event["metadata"]["name"], error)
