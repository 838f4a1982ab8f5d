"""Cluster DNS as a hosts file per pod: pure builders of /etc/hosts, /etc/resolv.conf, /etc/hostname.

There is no DNS server; glibc reads /etc/hosts on every lookup, and a hosts file matches names
exactly (no search domains), so each record is written under every form a pod may ask for.
One line per address with the fully qualified name first: that makes the canonical name of a
pod's own hostname its FQDN, as with cluster DNS, which is what torchrun's c10d rendezvous
compares to tell whether it hosts the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

CLUSTER_DOMAIN = "cluster.local"
HEADER = "# Kubernetes-managed hosts file (optikube process node).\n"
LOCAL = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


def pod_hostname(pod: dict[str, Any]) -> str:
    return str(pod.get("spec", {}).get("hostname") or pod["metadata"]["name"])[:63]


def selects(selector: Mapping[str, str] | None, labels: Mapping[str, str] | None) -> bool:
    if not selector:
        return False  # a Service without selector has no pods of its own
    labels = labels or {}
    return all(labels.get(key) == value for key, value in selector.items())


def _live(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def _service_names(name: str, namespace: str, own_namespace: str) -> list[str]:
    names = [f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}", f"{name}.{namespace}.svc", f"{name}.{namespace}"]
    return [*names, name] if namespace == own_namespace else names


def _pod_names(hostname: str, subdomain: str, namespace: str, own_namespace: str) -> list[str]:
    base = f"{hostname}.{subdomain}"
    names = [f"{base}.{namespace}.svc.{CLUSTER_DOMAIN}", f"{base}.{namespace}.svc", f"{base}.{namespace}"]
    return [*names, base] if namespace == own_namespace else names


def hosts_entries(
    pod: dict[str, Any],
    pod_ip: str,
    pods: Sequence[dict[str, Any]],
    services: Sequence[dict[str, Any]],
    known_ips: Mapping[str, str] | None = None,
) -> dict[str, list[str]]:
    """Address -> names for one pod. known_ips (pod uid -> IP) fills in addresses the API has
    not been told yet (peers on this node that just started)."""
    namespace = pod["metadata"]["namespace"]
    entries: dict[str, list[str]] = {}

    def add(ip: str, names: list[str]) -> None:
        bucket = entries.setdefault(ip, [])
        bucket.extend(name for name in names if name not in bucket)

    hostname = pod_hostname(pod)
    subdomain = pod.get("spec", {}).get("subdomain")
    own = [f"{hostname}.{subdomain}.{namespace}.svc.{CLUSTER_DOMAIN}"] if subdomain else []
    add(pod_ip, own)
    headless = {}
    for service in services:
        metadata, spec = service["metadata"], service.get("spec", {})
        ip = spec.get("clusterIP")
        if ip == "None":
            headless[(metadata["namespace"], metadata["name"])] = spec.get("selector")
        elif ip:
            add(ip, _service_names(metadata["name"], metadata["namespace"], namespace))
    ips = dict(known_ips or {})
    for peer in pods:
        metadata, spec = peer["metadata"], peer.get("spec", {})
        ip = ips.get(metadata.get("uid", "")) or (peer.get("status") or {}).get("podIP")
        if not ip or not _live(peer):
            continue
        for (ns, name), selector in headless.items():
            if ns != metadata["namespace"] or not selects(selector, metadata.get("labels")):
                continue
            if spec.get("subdomain") == name and spec.get("hostname"):
                add(ip, _pod_names(spec["hostname"], name, ns, namespace))
            add(ip, _service_names(name, ns, namespace))
    add(pod_ip, [hostname])
    for alias in pod.get("spec", {}).get("hostAliases") or []:
        add(alias["ip"], list(alias.get("hostnames") or []))
    return entries


def render_hosts(entries: Mapping[str, list[str]]) -> str:
    lines = [f"{ip}\t{' '.join(names)}\n" for ip, names in entries.items() if names]
    return HEADER + LOCAL + "".join(lines)


def render_resolv_conf(namespace: str) -> str:
    # No nameserver: lookups that the hosts file does not answer fail at once on the pod's loopback.
    search = f"{namespace}.svc.{CLUSTER_DOMAIN} svc.{CLUSTER_DOMAIN} {CLUSTER_DOMAIN}"
    return f"search {search}\nnameserver 127.0.0.1\noptions ndots:5 attempts:1 timeout:1\n"
