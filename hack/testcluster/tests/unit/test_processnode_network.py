"""The process node's cluster DNS (hosts files), service proxy rules, subnets and addresses."""

from __future__ import annotations

from typing import Any

import pytest

from optikube_testcluster.processnode.hosts import (
    hosts_entries,
    pod_hostname,
    render_hosts,
    render_resolv_conf,
)
from optikube_testcluster.processnode.ipam import AddressPool
from optikube_testcluster.processnode.services import Backend, ProxyRule, host_port, proxy_rules
from optikube_testcluster.processnode.spec import (
    HOST_PORT_ANNOTATION,
    PROCESS_POD_RANGE,
    ProcessNodeSpec,
    gateway,
    node_subnet,
    with_subnets,
)


def pod(
    name: str, ns: str = "ns", ip: str | None = None, labels: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}", "labels": labels or {}},
        "spec": spec,
        "status": {"phase": "Running", **({"podIP": ip} if ip else {})},
    }


def service(
    name: str, ns: str, ip: str, selector: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    spec = {"clusterIP": ip, "ports": [{"port": 29500}], **({"selector": selector} if selector else {})}
    return {"metadata": {"name": name, "namespace": ns, **extra}, "spec": spec}


def test_a_trial_pod_resolves_its_peers_its_services_and_itself_fqdn_first() -> None:
    me = pod("trial-1-abc", ip=None, labels={"trial": "t"}, hostname="trial-1", subdomain="workers")
    peer = pod(
        "trial-0-xyz", ip="10.244.128.3", labels={"trial": "t"}, hostname="trial-0", subdomain="workers"
    )
    finished = pod("old", ip="10.244.128.9", labels={"trial": "t"}, hostname="old", subdomain="workers")
    finished["status"]["phase"] = "Succeeded"
    services = [
        service("workers", "ns", "None", {"trial": "t"}),
        service("report", "ns", "10.96.5.5"),
        service("kubernetes", "default", "10.96.0.1"),
    ]
    entries = hosts_entries(
        me, "10.244.128.4", [me, peer, finished], services, {"uid-trial-1-abc": "10.244.128.4"}
    )
    assert entries["10.244.128.4"][0] == "trial-1.workers.ns.svc.cluster.local"
    assert entries["10.244.128.4"][-1] == "trial-1"
    assert entries["10.244.128.3"][:4] == [
        "trial-0.workers.ns.svc.cluster.local",
        "trial-0.workers.ns.svc",
        "trial-0.workers.ns",
        "trial-0.workers",
    ]
    assert "workers.ns.svc.cluster.local" in entries["10.244.128.3"]  # the headless Service's records
    assert entries["10.96.5.5"] == ["report.ns.svc.cluster.local", "report.ns.svc", "report.ns", "report"]
    assert entries["10.96.0.1"] == [
        "kubernetes.default.svc.cluster.local",
        "kubernetes.default.svc",
        "kubernetes.default",
    ]
    assert "10.244.128.9" not in entries  # a finished pod has no record
    text = render_hosts(entries)
    assert text.splitlines()[1] == "127.0.0.1\tlocalhost"
    assert "10.244.128.3\ttrial-0.workers.ns.svc.cluster.local trial-0.workers.ns.svc" in text


def test_records_need_a_selecting_headless_service() -> None:
    unselected = pod("a", ip="10.244.128.3", labels={"app": "other"}, hostname="a", subdomain="workers")
    me = pod("me")
    entries = hosts_entries(
        me, "10.244.128.4", [unselected], [service("workers", "ns", "None", {"trial": "t"})]
    )
    assert "10.244.128.3" not in entries
    assert entries == {"10.244.128.4": ["me"]}
    aliased = pod("me", hostAliases=[{"ip": "10.1.2.3", "hostnames": ["db", "db.local"]}])
    assert hosts_entries(aliased, "10.244.128.4", [], [])["10.1.2.3"] == ["db", "db.local"]
    assert pod_hostname(pod("x" * 70)) == "x" * 63


def test_resolv_conf_searches_the_pods_namespace() -> None:
    assert (
        render_resolv_conf("ns").splitlines()[0]
        == "search ns.svc.cluster.local svc.cluster.local cluster.local"
    )


def slice_(
    name: str, ns: str, port: int, addresses: list[tuple[str, bool | None]], port_name: str = ""
) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{name}-x", "namespace": ns, "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4",
        "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": [ip], **({"conditions": {"ready": ready}} if ready is not None else {})}
            for ip, ready in addresses
        ],
    }


def test_proxy_rules_from_slices_the_apiserver_and_host_backed_services() -> None:
    web = {
        "metadata": {"name": "web", "namespace": "ns"},
        "spec": {
            "clusterIP": "10.96.1.1",
            "ports": [
                {"name": "http", "port": 80, "targetPort": "http"},
                {"name": "udp", "port": 53, "protocol": "UDP"},
            ],
        },
    }
    report = service("report", "ns", "10.96.2.2", annotations={HOST_PORT_ANNOTATION: "41234"})
    kubernetes = {
        "metadata": {"name": "kubernetes", "namespace": "default"},
        "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443}]},
    }
    slices = [
        slice_(
            "web",
            "ns",
            8080,
            [("10.244.128.5", True), ("10.244.128.6", False), ("10.244.128.7", None)],
            "http",
        ),
        slice_("web", "other", 9999, [("10.244.128.8", True)], "http"),
    ]
    rules = proxy_rules(
        [web, report, kubernetes, service("headless", "ns", "None")], slices, apiserver_port=6443
    )
    assert rules == [
        ProxyRule(
            "ns/web:80",
            "10.96.1.1",
            80,
            (Backend("10.244.128.5", 8080, False), Backend("10.244.128.7", 8080, False)),
        ),
        ProxyRule("ns/report:29500", "10.96.2.2", 29500, (Backend("127.0.0.1", 41234, True),)),
        ProxyRule("default/kubernetes:443", "10.96.0.1", 443, (Backend("127.0.0.1", 6443, True),)),
    ]
    assert host_port(service("x", "ns", "1.2.3.4", annotations={HOST_PORT_ANNOTATION: "nope"})) is None
    assert host_port(service("x", "ns", "1.2.3.4", annotations={HOST_PORT_ANNOTATION: "70000"})) is None


def test_subnets_gateways_and_address_pools() -> None:
    assert PROCESS_POD_RANGE == "10.244.128.0/17"
    assert node_subnet(0) == "10.244.128.0/24" and node_subnet(3) == "10.244.131.0/24"
    specs = with_subnets(
        [ProcessNodeSpec("a"), ProcessNodeSpec("b", pod_cidr="10.244.128.0/24"), ProcessNodeSpec("c")]
    )
    assert [s.pod_cidr for s in specs] == ["10.244.129.0/24", "10.244.128.0/24", "10.244.130.0/24"]
    with pytest.raises(ValueError, match="unique"):
        with_subnets([ProcessNodeSpec("a"), ProcessNodeSpec("a")])
    assert gateway("10.244.128.0/24") == "10.244.128.1"
    pool = AddressPool("10.244.128.0/30")
    assert pool.gateway == "10.244.128.1"
    first = pool.allocate("pod-a")
    assert first == "10.244.128.2" and pool.allocate("pod-a") == first
    with pytest.raises(RuntimeError, match="no free"):
        pool.allocate("pod-b")
    pool.release(first)
    assert pool.allocate("pod-b") == first
    round_trip = ProcessNodeSpec("n", gpus=2, labels={"x": "y"})
    assert ProcessNodeSpec.from_json(round_trip.to_json()) == round_trip
