"""Which ClusterIP:port goes where: pure rules for the node's userspace service proxy, from
Services and EndpointSlices (whose ports the EndpointSlice controller has already resolved from
named targetPorts to numbers, per pod); plus the host listeners of Services annotated
host-listen (127.0.0.1:<port> of the host, forwarded to the Service's endpoints)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from optikube_testcluster.processnode.spec import HOST_LISTEN_ANNOTATION, HOST_PORT_ANNOTATION

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True)
class Backend:
    ip: str
    port: int
    host: bool  # reached from the host's network namespace (127.0.0.1), not the node's


@dataclass(frozen=True)
class ProxyRule:
    service: str  # namespace/name:port, for logs
    cluster_ip: str
    port: int
    backends: tuple[Backend, ...]
    # listen in the host's network namespace (cluster_ip is then 127.0.0.1), not the node's
    on_host: bool = False


def host_port(service: dict[str, Any]) -> int | None:
    """The port of a host-backed Service (annotation testcluster.optikube.io/host-port), if valid."""
    value = (service["metadata"].get("annotations") or {}).get(HOST_PORT_ANNOTATION)
    if value is None:
        return None
    try:
        port = int(str(value).strip())
    except ValueError:
        return None
    return port if 0 < port < 65536 else None


def host_listens(service: dict[str, Any]) -> dict[int, int]:
    """host port -> service port, from the host-listen annotation ("P" means the first port;
    "P=S,..." names each); malformed entries are ignored, as a kube-proxy ignores what it cannot use."""
    value = (service["metadata"].get("annotations") or {}).get(HOST_LISTEN_ANNOTATION)
    ports = [int(p["port"]) for p in (service.get("spec") or {}).get("ports") or []]
    if value is None or not ports:
        return {}
    wanted: dict[int, int] = {}
    for entry in str(value).split(","):
        host, _, target = entry.strip().partition("=")
        try:
            listen_port, service_port = int(host), int(target) if target else ports[0]
        except ValueError:
            continue
        if 0 < listen_port < 65536 and service_port in ports:
            wanted[listen_port] = service_port
    return wanted


def _slice_backends(
    slices: Sequence[dict[str, Any]], namespace: str, name: str, port_name: str
) -> tuple[Backend, ...]:
    backends: list[Backend] = []
    for endpoint_slice in slices:
        metadata = endpoint_slice["metadata"]
        labels = metadata.get("labels") or {}
        if metadata.get("namespace") != namespace or labels.get(SERVICE_NAME_LABEL) != name:
            continue
        if endpoint_slice.get("addressType", "IPv4") != "IPv4":
            continue
        for port in endpoint_slice.get("ports") or []:
            if (port.get("name") or "") != port_name or port.get("protocol", "TCP") != "TCP":
                continue
            for endpoint in endpoint_slice.get("endpoints") or []:
                if (endpoint.get("conditions") or {}).get("ready") is False:
                    continue
                for address in endpoint.get("addresses") or []:
                    backend = Backend(address, int(port["port"]), address.startswith("127."))
                    if backend not in backends:
                        backends.append(backend)
    return tuple(backends)


def proxy_rules(
    services: Sequence[dict[str, Any]], slices: Sequence[dict[str, Any]], apiserver_port: int
) -> list[ProxyRule]:
    rules = []
    for service in services:
        metadata, spec = service["metadata"], service.get("spec", {})
        cluster_ip = spec.get("clusterIP")
        if not cluster_ip or cluster_ip == "None" or spec.get("type") == "ExternalName":
            continue
        namespace, name = metadata["namespace"], metadata["name"]
        forwarded = host_port(service)
        for port in spec.get("ports") or []:
            if port.get("protocol", "TCP") != "TCP":
                continue
            if namespace == "default" and name == "kubernetes":
                # The apiserver listens on the host's loopback only; its endpoint says the same.
                backends: tuple[Backend, ...] = (Backend("127.0.0.1", apiserver_port, True),)
            elif forwarded is not None:
                backends = (Backend("127.0.0.1", forwarded, True),)
            else:
                backends = _slice_backends(slices, namespace, name, port.get("name") or "")
            label = f"{namespace}/{name}:{port['port']}"
            rules.append(ProxyRule(label, cluster_ip, int(port["port"]), backends))
            for listen_port, service_port in host_listens(service).items():
                if service_port == int(port["port"]):
                    label = f"{namespace}/{name}:{service_port} from the host"
                    rules.append(ProxyRule(label, "127.0.0.1", listen_port, backends, on_host=True))
    return rules
