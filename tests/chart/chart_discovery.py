"""Kubernetes service discovery for a Prometheus built without it (Debian's package leaves out the
`kubernetes_sd_configs` mechanism): the target groups that discovery would produce, written as
`file_sd_configs` files.

Only the discovery is done here, from the real API (pods and EndpointSlices): each target's
address and its `__meta_kubernetes_*` labels, as Prometheus's own `role: pod` and
`role: endpointslice` discovery name them. Selecting, relabelling and `honor_labels` stay
Prometheus's (the relabel rules in chart_prometheus, from the chart's monitors).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from optikube_testcluster import ControlPlane


def _name(label: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", label)


def _labels(prefix: str, labels: dict[str, str] | None) -> dict[str, str]:
    return {f"{prefix}{_name(k)}": v for k, v in (labels or {}).items()}


@dataclass(frozen=True)
class Discovery:
    role: str  # pod | endpointslice
    namespaces: tuple[str, ...]  # empty: all
    file: str  # where its target groups go, in the shared folder


def pod_targets(pods: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """`role: pod`: one target per declared container port of each pod that has an IP."""
    groups = []
    for pod in pods:
        meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
        ip = status.get("podIP")
        if not ip:
            continue
        common = {
            "__meta_kubernetes_namespace": meta["namespace"],
            "__meta_kubernetes_pod_name": meta["name"],
            "__meta_kubernetes_pod_ip": ip,
            "__meta_kubernetes_pod_phase": status.get("phase", ""),
            "__meta_kubernetes_pod_node_name": spec.get("nodeName", ""),
            **_labels("__meta_kubernetes_pod_label_", meta.get("labels")),
        }
        for container in spec.get("containers") or []:
            for port in container.get("ports") or []:
                labels = {
                    **common,
                    "__meta_kubernetes_pod_container_name": container["name"],
                    "__meta_kubernetes_pod_container_port_name": port.get("name", ""),
                    "__meta_kubernetes_pod_container_port_number": str(port["containerPort"]),
                }
                groups.append({"targets": [f"{ip}:{port['containerPort']}"], "labels": labels})
    return groups


def slice_targets(
    slices: Iterable[dict[str, Any]], services: Iterable[dict[str, Any]], pods: Iterable[dict[str, Any]]
) -> list[dict[str, Any]]:
    """`role: endpointslice`: one target per endpoint address and port, with its Service's labels
    and, for pod endpoints, the pod and the container declaring that port."""
    by_service = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in services}
    by_pod = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pods}
    groups = []
    for endpoint_slice in slices:
        meta = endpoint_slice["metadata"]
        namespace = meta["namespace"]
        service_name = (meta.get("labels") or {}).get("kubernetes.io/service-name", "")
        service = by_service.get((namespace, service_name))
        for port in endpoint_slice.get("ports") or []:
            for endpoint in endpoint_slice.get("endpoints") or []:
                ref = endpoint.get("targetRef") or {}
                labels = {
                    "__meta_kubernetes_namespace": namespace,
                    "__meta_kubernetes_endpointslice_name": meta["name"],
                    "__meta_kubernetes_endpointslice_port_name": port.get("name") or "",
                    "__meta_kubernetes_endpointslice_port": str(port["port"]),
                    "__meta_kubernetes_endpointslice_endpoint_conditions_ready": str(
                        (endpoint.get("conditions") or {}).get("ready", True)
                    ).lower(),
                    "__meta_kubernetes_service_name": service_name,
                }
                if service is not None:
                    labels.update(
                        _labels("__meta_kubernetes_service_label_", service["metadata"].get("labels"))
                    )
                pod = by_pod.get((namespace, ref.get("name", ""))) if ref.get("kind") == "Pod" else None
                if pod is not None:
                    labels["__meta_kubernetes_pod_name"] = pod["metadata"]["name"]
                    for container in pod["spec"].get("containers") or []:
                        if any(p["containerPort"] == port["port"] for p in container.get("ports") or []):
                            labels["__meta_kubernetes_pod_container_name"] = container["name"]
                for address in endpoint.get("addresses") or []:
                    groups.append({"targets": [f"{address}:{port['port']}"], "labels": dict(labels)})
    return groups


class DiscoveryWriter:
    """Rewrites each discovery's file from the API every `interval` seconds, in a thread."""

    def __init__(
        self, plane: ControlPlane, folder: Path, discoveries: list[Discovery], interval: float = 1.0
    ):
        self.plane, self.folder, self.discoveries, self.interval = plane, folder, discoveries, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prometheus discovery", daemon=True)

    def _list(self, api: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        def plain(items: Any) -> list[dict[str, Any]]:
            return [api.sanitize_for_serialization(item) for item in items]

        core, discovery = client.CoreV1Api(api), client.DiscoveryV1Api(api)
        return (
            plain(core.list_pod_for_all_namespaces().items),
            plain(core.list_service_for_all_namespaces().items),
            plain(discovery.list_endpoint_slice_for_all_namespaces().items),
        )

    def write_once(self) -> None:
        with self.plane.api_client() as api:
            pods, services, slices = self._list(api)
        for wanted in self.discoveries:

            def mine(items: list[dict[str, Any]], wanted: Discovery = wanted) -> list[dict[str, Any]]:
                return [
                    i
                    for i in items
                    if not wanted.namespaces or i["metadata"]["namespace"] in wanted.namespaces
                ]

            groups = (
                pod_targets(mine(pods))
                if wanted.role == "pod"
                else slice_targets(mine(slices), services, pods)
            )
            path = self.folder / wanted.file
            scratch = path.with_suffix(".tmp")
            scratch.write_text(json.dumps(groups, sort_keys=True))
            scratch.chmod(0o644)
            scratch.replace(path)  # Prometheus never reads a half-written file

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.write_once()
            except Exception as error:  # a hiccup of the apiserver: the next round retries
                print(f"discovery: {error}")

    def __enter__(self) -> DiscoveryWriter:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o755)
        self.write_once()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)
