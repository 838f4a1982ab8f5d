"""Kubernetes Events about OptimizationJobs: one for every transition a user cares about.

Posted through the operator's own client (core/v1 Events, deduplicated by name so that a repeated
reconcile after a restart bumps a count instead of piling up copies).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from optikube_operator.kube.client import ApiError, KubeClient, resource_path

log = logging.getLogger(__name__)
MAX_NOTE = 1024


def build_event(
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


class EventRecorder:
    def __init__(self, client: KubeClient, component: str = "optikube-operator") -> None:
        self._client = client
        self._component = component

    async def post(
        self, regarding: Mapping[str, Any], reason: str, message: str, *, warning: bool = False
    ) -> None:
        event = build_event(
            regarding, reason, message, warning=warning, component=self._component, now=datetime.now(UTC)
        )
        path = resource_path("v1", "events", event["metadata"]["namespace"])
        try:
            await self._client.create(path, event)
        except ApiError as error:
            if error.already_exists:
                return  # the same transition announced again after a restart
            log.warning("could not post event %s on %s: %s", reason, regarding["metadata"]["name"], error)
