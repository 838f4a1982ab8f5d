"""The process-node agent: the kubelet (and kube-proxy, and a storage provisioner) of one or more
nodes whose pods run as local processes. It wires the parts together and reconciles: one worker
per pod bound to its nodes, the service proxy's rules, every pod's hosts file, the claims."""

from __future__ import annotations

import importlib.util
import logging
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optikube_testcluster.processnode.context import AgentContext
from optikube_testcluster.processnode.heartbeat import Heartbeat
from optikube_testcluster.processnode.hosts import hosts_entries, render_hosts
from optikube_testcluster.processnode.informer import Informer
from optikube_testcluster.processnode.netns import NetnsWorker, NodeNetwork
from optikube_testcluster.processnode.paths import StateLayout
from optikube_testcluster.processnode.podworker import PodWorker
from optikube_testcluster.processnode.provisioner import Provisioner, bound_path
from optikube_testcluster.processnode.proxy import ServiceProxy
from optikube_testcluster.processnode.rest import Credentials, RestClient
from optikube_testcluster.processnode.services import ProxyRule, proxy_rules
from optikube_testcluster.processnode.spawner import Spawner
from optikube_testcluster.processnode.spec import ProcessNodeSpec, with_subnets

log = logging.getLogger(__name__)
SHUTDOWN_GRACE_SECONDS = 2.0


def image_paths(path_prefix: str) -> list[str]:
    """What stands in for the image: the real directories behind the PATH prefix (the venv's bin)
    and what its entries link to (the interpreter's installation), each with its installation root
    (a bin's parent: lib/ and site-packages), and the source folders of the editable install. A
    non-root container must be able to reach them, and a container's private /tmp must not hide
    them (a checkout under /tmp)."""
    found: list[str] = []

    def add(path: Path) -> None:
        if str(path) not in found:
            found.append(str(path))

    for entry in filter(None, path_prefix.split(":")):
        directory = Path(entry)
        candidates = (
            [directory, *(p for p in directory.glob("*") if p.is_symlink())] if directory.is_dir() else []
        )
        for candidate in candidates:
            real = candidate.resolve().parent if candidate.is_symlink() else candidate.resolve()
            add(real)
            if real.name == "bin":
                add(real.parent)
    for package in ("optikube_operator", "optikube_trainer"):
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.origin is not None:
            add(Path(spec.origin).resolve().parents[1])
    return found


@dataclass(frozen=True)
class AgentOptions:
    credentials: Credentials
    state_dir: Path
    nodes: list[ProcessNodeSpec]
    path_prefix: str
    restart_backoff: float = 10.0


class Agent:
    def __init__(self, options: AgentOptions) -> None:
        self.options = options
        self.nodes = {spec.name: spec for spec in with_subnets(options.nodes)}
        self.layout = StateLayout(options.state_dir)
        self.rest = RestClient(options.credentials)
        self.changed = threading.Event()
        self.workers: dict[str, PodWorker] = {}
        self._finished: set[str] = set()
        self._rules: list[ProxyRule] | None = None
        port = self.rest.port
        self.apiserver_port = port
        self.informers = {
            name: Informer(self.rest, path, self.changed.set)
            for name, path in (
                ("pods", "/api/v1/pods"),
                ("services", "/api/v1/services"),
                ("slices", "/apis/discovery.k8s.io/v1/endpointslices"),
                ("claims", "/api/v1/persistentvolumeclaims"),
                ("volumes", "/api/v1/persistentvolumes"),
            )
        }

    def run(self, stop: threading.Event) -> None:
        self.layout.root.mkdir(parents=True, exist_ok=True)
        # A previous agent's pods are gone with it (their processes died with it): only files
        # remain, and the pods are started afresh.
        shutil.rmtree(self.layout.pods, ignore_errors=True)
        spawner = Spawner()
        network = NodeNetwork(
            spawner, self.layout.hold_spec, {n: s.pod_cidr or "" for n, s in self.nodes.items()}
        )
        probes = ThreadPoolExecutor(max_workers=4, thread_name_prefix="probe")
        heartbeat = Heartbeat(self.rest, list(self.nodes.values()))
        proxy: ServiceProxy | None = None
        node_ns: NetnsWorker | None = None
        try:
            network.start()
            node_ns = NetnsWorker(network.path)
            proxy = ServiceProxy(node_ns)
            self.context = AgentContext(
                rest=self.rest,
                spawner=spawner,
                network=network,
                layout=self.layout,
                nodes=self.nodes,
                path_prefix=self.options.path_prefix,
                services=self.informers["services"].items,
                claim_path=self._claim_path,
                hosts_for=self._hosts_for,
                probes=probes,
                restart_backoff=self.options.restart_backoff,
                image_paths=tuple(image_paths(self.options.path_prefix)),
            )
            provisioner = Provisioner(self.rest, self.layout, list(self.nodes))
            provisioner.ensure_class()
            for informer in self.informers.values():
                informer.start()
            for name, informer in self.informers.items():
                if not informer.wait_synced(60):
                    raise RuntimeError(f"could not list {name}")
            heartbeat.register()
            heartbeat.start()
            log.info("process nodes %s ready; state in %s", sorted(self.nodes), self.layout.root)
            while not stop.is_set():
                self.changed.wait(1.0)
                self.changed.clear()
                if stop.is_set():
                    break
                time.sleep(0.02)  # let a burst of events land before reconciling once
                try:
                    self._reconcile(proxy, provisioner)
                except Exception:  # one bad object or a hiccup of the apiserver: next round
                    log.exception("reconcile")
        finally:
            self._shutdown_workers()
            heartbeat.stop()
            for informer in self.informers.values():
                informer.stop()
            if proxy is not None:
                proxy.stop()
            if node_ns is not None:
                node_ns.stop()
            network.stop()
            probes.shutdown(wait=False, cancel_futures=True)
            spawner.stop()

    def _reconcile(self, proxy: ServiceProxy, provisioner: Provisioner) -> None:
        pods = self.informers["pods"].items()
        mine = {p["metadata"]["uid"]: p for p in pods if (p.get("spec") or {}).get("nodeName") in self.nodes}
        for uid, pod in mine.items():
            worker = self.workers.get(uid)
            if worker is None and uid not in self._finished:
                worker = self.workers[uid] = PodWorker(self.context, pod)
                worker.start()
            if worker is not None:
                worker.notify(pod)
        for uid, worker in list(self.workers.items()):
            if uid not in mine:
                worker.notify(None)
            if worker.finished.is_set():
                del self.workers[uid]
                self._finished.add(uid)
        self._finished &= set(mine)
        rules = proxy_rules(
            self.informers["services"].items(), self.informers["slices"].items(), self.apiserver_port
        )
        if rules != self._rules:
            proxy.update(rules)
            self._rules = rules
        for worker in list(self.workers.values()):
            worker.refresh_hosts()
        try:
            provisioner.reconcile(self.informers["claims"].items(), self.informers["volumes"].items())
        except Exception as error:
            log.warning("provisioner: %s", error)

    def _claim_path(self, namespace: str, claim: str) -> Path | None:
        return bound_path(self.informers["claims"].get(namespace, claim), self.informers["volumes"].items())

    def _hosts_for(self, pod: dict[str, Any], pod_ip: str) -> str:
        known = {uid: w.pod_ip for uid, w in list(self.workers.items()) if w.pod_ip}
        entries = hosts_entries(
            pod, pod_ip, self.informers["pods"].items(), self.informers["services"].items(), known
        )
        return render_hosts(entries)

    def _shutdown_workers(self) -> None:
        workers = list(self.workers.values())
        for worker in workers:
            worker.shutdown(SHUTDOWN_GRACE_SECONDS)
        for worker in workers:
            worker.finished.wait(SHUTDOWN_GRACE_SECONDS + 5)
