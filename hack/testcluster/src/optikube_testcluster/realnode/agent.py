"""The real nodes' agent: what runs for them on the host, next to the real kubelets.

- the **service proxy** of each node (the process node's userspace proxy, unchanged): a listener
  on every ClusterIP:port inside the node's network namespace, fed by Services and EndpointSlices,
  except the DNS Service, whose address CoreDNS binds itself (UDP and TCP);
- the **apiserver forwarder**: the node netns's own 127.0.0.1:<apiserver port> leads to the
  host's apiserver, so the kubelet and CoreDNS use the kubeconfig URL (and certificate SAN)
  everything else uses;
- the apiserver's **egress** socket (egress.py), dialling kubelets and pods from the nodes'
  namespaces.

It acts as system:kube-proxy (Kubernetes' bootstrap role system:node-proxier: list and watch
Services and EndpointSlices). `python -m optikube_testcluster.realnode agent ...` runs it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optikube_testcluster.processnode.informer import Informer
from optikube_testcluster.processnode.netns import NetnsWorker
from optikube_testcluster.processnode.proxy import ServiceProxy
from optikube_testcluster.processnode.rest import Credentials, RestClient
from optikube_testcluster.processnode.services import Backend, ProxyRule, proxy_rules
from optikube_testcluster.realnode.egress import EgressServer

log = logging.getLogger(__name__)
DNS_SERVICE = ("kube-system", "kube-dns")


@dataclass(frozen=True)
class AgentNode:
    name: str
    holder: int  # the pid holding the node's network namespace
    pod_cidr: str

    def to_arg(self) -> str:
        return f"{self.name},{self.holder},{self.pod_cidr}"

    @classmethod
    def from_arg(cls, text: str) -> AgentNode:
        name, holder, pod_cidr = text.split(",")
        return cls(name, int(holder), pod_cidr)


def forwarder_rule(apiserver_port: int) -> ProxyRule:
    return ProxyRule(
        "the apiserver", "127.0.0.1", apiserver_port, (Backend("127.0.0.1", apiserver_port, True),)
    )


def node_rules(
    services: Sequence[dict[str, Any]], slices: Sequence[dict[str, Any]], apiserver_port: int
) -> list[ProxyRule]:
    """A real node's listeners: the apiserver forwarder and every TCP Service but the DNS one."""
    served = [s for s in services if (s["metadata"]["namespace"], s["metadata"]["name"]) != DNS_SERVICE]
    return [forwarder_rule(apiserver_port), *proxy_rules(served, slices, apiserver_port)]


class RealNodeAgent:
    def __init__(self, credentials: Credentials, nodes: Sequence[AgentNode], egress_socket: Path) -> None:
        self.rest = RestClient(credentials)
        self.nodes = list(nodes)
        self.egress_socket = egress_socket
        self.changed = threading.Event()
        self.informers = {
            name: Informer(self.rest, path, self.changed.set)
            for name, path in (
                ("services", "/api/v1/services"),
                ("slices", "/apis/discovery.k8s.io/v1/endpointslices"),
            )
        }

    def run(self, stop: threading.Event) -> None:
        workers = {node.name: NetnsWorker(f"/proc/{node.holder}/ns/net") for node in self.nodes}
        proxies = {name: ServiceProxy(worker) for name, worker in workers.items()}
        try:
            port = self.rest.port
            # the forwarder first: the kubelet and CoreDNS dial it as soon as they start
            for proxy in proxies.values():
                proxy.update([forwarder_rule(port)])
            egress = EgressServer({n.name: (n.pod_cidr, workers[n.name]) for n in self.nodes})
            loop = next(iter(proxies.values())).loop
            asyncio.run_coroutine_threadsafe(egress.serve(self.egress_socket), loop).result(timeout=10)
            for informer in self.informers.values():
                informer.start()
            log.info(
                "real nodes %s: forwarder on 127.0.0.1:%s, egress on %s",
                list(proxies),
                port,
                self.egress_socket,
            )
            current: list[ProxyRule] = []
            while not stop.is_set():
                self.changed.wait(1.0)
                self.changed.clear()
                rules = node_rules(self.informers["services"].items(), self.informers["slices"].items(), port)
                if rules != current:
                    for proxy in proxies.values():
                        proxy.update(rules)
                    current = rules
                    log.info("service proxy: %d listeners", len(rules))
        finally:
            for informer in self.informers.values():
                informer.stop()
            for proxy in proxies.values():
                proxy.stop()
            for worker in workers.values():
                worker.stop()
