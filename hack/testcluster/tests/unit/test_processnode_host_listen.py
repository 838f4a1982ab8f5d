"""Host listeners of the process node's proxy (the host-listen annotation): pure rules."""

from __future__ import annotations

from typing import Any

from optikube_testcluster.processnode.services import Backend, ProxyRule, host_listens, proxy_rules
from optikube_testcluster.processnode.spec import HOST_LISTEN_ANNOTATION


def _service(annotation: str | None, ports: list[int]) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "prom", "namespace": "mon"}
    if annotation is not None:
        metadata["annotations"] = {HOST_LISTEN_ANNOTATION: annotation}
    spec = {"clusterIP": "10.96.3.3", "ports": [{"name": f"p{p}", "port": p} for p in ports]}
    return {"metadata": metadata, "spec": spec}


def _slice(port: int, name: str) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "mon", "labels": {"kubernetes.io/service-name": "prom"}},
        "ports": [{"name": name, "port": port}],
        "endpoints": [{"addresses": ["10.244.128.9"], "conditions": {"ready": True}}],
    }


def test_a_bare_port_forwards_the_first_service_port_and_pairs_name_each() -> None:
    assert host_listens(_service("41000", [9090, 8080])) == {41000: 9090}
    assert host_listens(_service("41000=8080, 41001=9090", [9090, 8080])) == {41000: 8080, 41001: 9090}
    # what cannot be used is ignored: not a number, out of range, a port the Service lacks
    assert host_listens(_service("x,70000,41002=1234,41003=9090", [9090])) == {41003: 9090}
    assert host_listens(_service(None, [9090])) == {}


def test_host_rules_listen_on_the_hosts_loopback_and_go_to_the_services_pods() -> None:
    rules = proxy_rules([_service("41000", [9090])], [_slice(19090, "p9090")], apiserver_port=6443)
    pod = (Backend("10.244.128.9", 19090, False),)
    assert rules == [
        ProxyRule("mon/prom:9090", "10.96.3.3", 9090, pod),
        ProxyRule("mon/prom:9090 from the host", "127.0.0.1", 41000, pod, on_host=True),
    ]
