"""Registers the process nodes and keeps them Ready: a Lease renewed every few seconds (what the
node lifecycle controller watches) and the status conditions refreshed now and then."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Sequence
from typing import Any

from optikube_testcluster.processnode.nodes import (
    LEASE_NAMESPACE,
    lease_manifest,
    node_manifest,
    node_status,
)
from optikube_testcluster.processnode.rest import ApiError, RestClient
from optikube_testcluster.processnode.spec import ProcessNodeSpec

log = logging.getLogger(__name__)
LEASE_RENEW_SECONDS = 10.0
STATUS_EVERY_SECONDS = 60.0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Heartbeat:
    def __init__(self, rest: RestClient, specs: Sequence[ProcessNodeSpec]) -> None:
        self.rest = rest
        self.specs = list(specs)
        self.since = _now()
        self.kubelet_version = "v0.0.0"
        self._uids: dict[str, str] = {}
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="node heartbeat", daemon=True)

    def register(self) -> None:
        """Creates (or takes over) every Node and posts its first status and Lease."""
        self.kubelet_version = str(self.rest.get("/version").get("gitVersion", "v0.0.0"))
        for spec in self.specs:
            manifest = node_manifest(spec)
            try:
                node = self.rest.create("/api/v1/nodes", manifest)
            except ApiError as error:
                if error.status != 409:
                    raise
                # A node left by an earlier agent: take it over with our labels and taints.
                patch = {"metadata": {"labels": manifest["metadata"]["labels"]}, "spec": manifest["spec"]}
                node = self.rest.patch(f"/api/v1/nodes/{spec.name}", patch)
            self._uids[spec.name] = node["metadata"]["uid"]
            self._post_status(spec)
            self._renew(spec)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _post_status(self, spec: ProcessNodeSpec) -> None:
        status = node_status(spec, self.kubelet_version, _now(), self.since)
        self.rest.patch(f"/api/v1/nodes/{spec.name}/status", {"status": status})

    def _renew(self, spec: ProcessNodeSpec) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases"
        lease = lease_manifest(spec.name, self._uids[spec.name], _now())
        current: Any = self.rest.get_or_none(f"{path}/{spec.name}")
        if current is None:
            self.rest.create(path, lease)
        else:
            self.rest.patch(f"{path}/{spec.name}", {"spec": lease["spec"]})

    def _run(self) -> None:
        last_status = _now()
        while not self._stopped.wait(LEASE_RENEW_SECONDS):
            post_status = (_now() - last_status).total_seconds() >= STATUS_EVERY_SECONDS
            for spec in self.specs:
                try:
                    self._renew(spec)
                    if post_status:
                        self._post_status(spec)
                except Exception as error:  # the apiserver stopping under us: try again later
                    log.warning("heartbeat of %s: %s", spec.name, error)
            if post_status:
                last_status = _now()
