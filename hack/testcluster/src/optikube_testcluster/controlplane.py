"""`ControlPlane`: a real Kubernetes control plane on 127.0.0.1 for tests and local poking.

etcd, kube-apiserver (TLS, RBAC, service-account tokens), kube-controller-manager, kube-scheduler
and kwok, which plays the kubelet of a few fake nodes (2 CPU, 2 GPU by default); on request also
the process-node agent, whose nodes run pods as real local processes, and real nodes: a real
kubelet, containerd and CoreDNS running the pods' images in containers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from optikube_testcluster import flags, pki, processes
from optikube_testcluster.assets import find_assets
from optikube_testcluster.clusterclient import ClusterClient, has_default_service_account
from optikube_testcluster.kubeconfig import (
    render_kubeconfig,
    write_kubeconfig,
)
from optikube_testcluster.kwok import FakeNode, default_nodes, render_kwok_config
from optikube_testcluster.layout import ADMIN, CLIENT_IDENTITIES, Layout
from optikube_testcluster.ports import LOOPBACK, Ports
from optikube_testcluster.probes import (
    NotReadyError,
    client_tls,
    http_ok,
    self_signed_tls,
    wait_until,
)
from optikube_testcluster.processnode.command import agent_argv
from optikube_testcluster.processnode.paths import claim_path, container_log_path
from optikube_testcluster.processnode.spec import ProcessNodeSpec, with_subnets
from optikube_testcluster.realnode.artifacts import NodeArtifacts
from optikube_testcluster.realnode.egress import egress_selector_config
from optikube_testcluster.realnode.node import RealNodes, prepare
from optikube_testcluster.realnode.paths import NodePaths
from optikube_testcluster.realnode.spec import RealNodeSpec, with_real_subnets

NOT_READY_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


class ControlPlaneError(RuntimeError):
    pass


class PortTakenError(ControlPlaneError):
    """A component could not bind the port picked for it."""


START_ATTEMPTS = 3


@dataclass
class Component:
    name: str
    binary: Path
    pid: int
    process: subprocess.Popen[bytes] | None = None
    args: tuple[str, ...] = ()


_LAST_TO_STOP = ("kube-apiserver", "etcd")
PROCESS_NODE_AGENT = "process-node"
REAL_NODE_AGENT = "real-node-agent"


def stop_tiers(components: Sequence[Component]) -> list[list[Component]]:
    """Components grouped in the order they must be stopped: every client, the apiserver, etcd."""
    clients = [c for c in components if c.name not in _LAST_TO_STOP]
    tiers = [clients] + [[c for c in components if c.name == name] for name in _LAST_TO_STOP]
    return [tier for tier in tiers if tier]


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class ControlPlane(ClusterClient):
    """Start with `.start()` or `with ControlPlane() as cp:`; `.stop()` leaves no process behind."""

    def __init__(
        self,
        bin_dir: Path | None = None,
        root: Path | None = None,
        nodes: Sequence[FakeNode] | None = None,
        startup_timeout: float = 120.0,
        detached: bool = False,
        process_nodes: Sequence[ProcessNodeSpec] = (),
        real_nodes: Sequence[RealNodeSpec] = (),
    ) -> None:
        """process_nodes: nodes whose pods run as local processes (the agent runs as root);
        real_nodes: nodes of a real kubelet and containerd (root; see realnode/)."""
        self._bin_dir = bin_dir
        self._own_root = root is None
        self._root = root
        self.nodes: list[FakeNode] = list(default_nodes() if nodes is None else nodes)
        self.process_nodes: list[ProcessNodeSpec] = with_subnets(list(process_nodes))
        self.real_node_specs: list[RealNodeSpec] = with_real_subnets(list(real_nodes))
        self.real_nodes: RealNodes | None = None
        self._node_artifacts: NodeArtifacts | None = None
        self.startup_timeout = startup_timeout
        self.detached = detached
        self.components: list[Component] = []
        self.ports: Ports | None = None
        self._started = False

    # ---- public attributes ---------------------------------------------------------------------

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = find_assets()
        return self._bin_dir

    @property
    def layout(self) -> Layout:
        if self._root is None:
            raise ControlPlaneError("the control plane has not been started")
        return Layout(self._root)

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (group system:masters)."""
        return self.layout.kubeconfig(ADMIN)

    @property
    def server(self) -> str:
        if self.ports is None:
            raise ControlPlaneError("the control plane has not been started")
        return f"https://{LOOPBACK}:{self.ports.apiserver}"

    @property
    def pids(self) -> list[int]:
        return [component.pid for component in self.components]

    @property
    def process_node_dir(self) -> Path:
        """The process-node agent's state directory (logs/, claims/, pods/)."""
        return self.layout.process_nodes

    def container_log(self, namespace: str, pod: str, container: str) -> Path:
        """The log file (stdout and stderr) of a container that ran on a process node."""
        return container_log_path(self.process_node_dir, namespace, pod, container)

    def real_node_paths(self, node: str) -> NodePaths:
        """Where a real node keeps its files (its logs, its kubelet's and containerd's state)."""
        return NodePaths.of(self.layout.root, node)

    def claim_dir(self, namespace: str, claim: str) -> Path:
        """The host directory behind a PersistentVolumeClaim of class optikube-local."""
        return claim_path(self.process_node_dir, namespace, claim)

    # ---- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> ControlPlane:
        if self._started:
            return self
        # Resolve (and, on a first run, build) the binaries before creating anything.
        self._bin_dir = self.bin_dir
        if self.real_node_specs:  # and the real nodes' binaries and images, into the image store
            self._node_artifacts = prepare(self.real_node_specs)
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                self._start_once()
                break
            except PortTakenError:
                # Another process bound one of our free ports before its server did: new ports.
                if attempt == START_ATTEMPTS:
                    raise
        if self.detached:
            # It is meant to outlive this process: `python -m optikube_testcluster down` stops it.
            processes.unregister_cleanup(id(self))
        return self

    def _start_once(self) -> None:
        if self._own_root:
            self._root = Path(tempfile.mkdtemp(prefix="optikube-testcluster-"))
        layout = self.layout
        shutil.rmtree(layout.etcd_data, ignore_errors=True)  # a given root may hold an old attempt
        layout.make_dirs()
        self.components = []
        self.ports = ports = Ports.allocate()
        self._started = True
        processes.register_cleanup(id(self), self.stop)
        deadline = time.monotonic() + self.startup_timeout
        try:
            self._write_files(layout, ports)
            self._launch("etcd", flags.etcd_flags(layout, ports))
            wait_until(
                "etcd",
                lambda: http_ok(f"http://{LOOPBACK}:{ports.etcd_client}/health"),
                deadline,
                check_alive=self._check_alive,
            )
            real = bool(self.real_node_specs)
            self._launch("kube-apiserver", flags.apiserver_flags(layout, ports, real_nodes=real))
            admin_tls = client_tls(layout.ca_cert, layout.client_cert(ADMIN), layout.client_key(ADMIN))
            wait_until(
                "kube-apiserver /readyz",
                lambda: http_ok(f"{self.server}/readyz", admin_tls),
                deadline,
                check_alive=self._check_alive,
            )
            self._launch("kube-controller-manager", flags.controller_manager_flags(layout, ports))
            self._launch("kube-scheduler", flags.scheduler_flags(layout, ports))
            self._launch("kwok", flags.kwok_flags(layout, ports))
            if self.process_nodes:
                self._launch_process_nodes(layout)
            if self.real_node_specs:
                self._start_real_nodes(layout, deadline)
            self._wait_ready(ports, deadline)
        except BaseException as error:
            logs = "\n".join(
                f"--- {c.name} log ({layout.log(c.name)}):\n{_log_tail(layout.log(c.name))}"
                for c in self.components
            )
            self.stop()
            if isinstance(error, NotReadyError | ControlPlaneError):
                kind = PortTakenError if "address already in use" in logs else ControlPlaneError
                raise kind(f"control plane failed to start: {error}\n{logs}") from error
            raise

    def stop(self) -> None:
        """Stops every process (SIGTERM, then SIGKILL) and removes the temp dir it created."""
        processes.unregister_cleanup(id(self))
        # The real nodes' processes are found through their cgroups, not their pids: shims and
        # containers are nobody's children.
        if self.real_nodes is not None:
            self.real_nodes.stop()
            self.real_nodes = None
        # Clients first, then the apiserver, then etcd: an apiserver whose etcd is gone hangs on
        # SIGTERM, while in this order the whole plane stops in about a second.
        for tier in stop_tiers(self.components):
            processes.terminate_all([c.pid for c in tier], grace_seconds=5.0, reap=self._reap)
        self._reap()
        if self._own_root and self._root is not None and not os.environ.get("OPTIKUBE_ENVTEST_KEEP"):
            shutil.rmtree(self._root, ignore_errors=True)
        self._started = False

    def _reap(self) -> None:
        for component in self.components:
            if component.process is not None:
                component.process.poll()

    def _write_files(self, layout: Layout, ports: Ports) -> None:
        ca = pki.make_ca()
        pki.write_keypair(layout.pki, "ca", ca)
        serving = pki.make_serving_cert(ca, (LOOPBACK, flags.KUBERNETES_SERVICE_IP))
        pki.write_keypair(layout.pki, "apiserver", serving)
        pki.write_signing_key(layout.pki)
        for identity in CLIENT_IDENTITIES:
            pair = pki.make_client_cert(ca, identity)
            pki.write_keypair(layout.pki, identity.file_stem, pair)
            document = render_kubeconfig(
                f"https://{LOOPBACK}:{ports.apiserver}",
                ca.cert_pem,
                pair.cert_pem,
                pair.key_pem,
                identity.user,
            )
            write_kubeconfig(layout.kubeconfig(identity), document)
        layout.kwok_config.write_text(render_kwok_config())
        if self.real_node_specs:  # read by the apiserver at its start
            layout.egress_config.write_text(egress_selector_config(layout.egress_socket))

    def _launch(self, name: str, args: list[str]) -> None:
        binary = self.bin_dir / name
        process = processes.spawn([str(binary), *args], self.layout.log(name), detached=self.detached)
        self.components.append(Component(name, binary, process.pid, process, tuple(args)))

    def restart(self, name: str, *, kill: bool = True, down_seconds: float = 0.0) -> float:
        """Stop a component (SIGKILL, or SIGTERM with kill=False), keep it down for down_seconds,
        start it again with the same flags and ports (etcd keeps its data), and wait until it
        serves; returns the seconds it was unavailable. For fault-injection tests."""
        component = next(c for c in self.components if c.name == name)
        began = time.monotonic()
        if kill:
            processes.kill_group(component.pid)
        else:
            processes.terminate_all([component.pid], grace_seconds=10.0, reap=self._reap)
        if component.process is not None:
            component.process.wait(30)
        time.sleep(down_seconds)
        self.components.remove(component)
        self._launch(name, list(component.args))
        ports = self.ports
        assert ports is not None
        deadline = time.monotonic() + self.startup_timeout
        admin = client_tls(self.layout.ca_cert, self.layout.client_cert(ADMIN), self.layout.client_key(ADMIN))
        probes = {
            "etcd": (f"http://{LOOPBACK}:{ports.etcd_client}/health", None),
            "kube-apiserver": (f"{self.server}/readyz", admin),
        }
        url, context = probes.get(name, (f"{self.server}/readyz", admin))
        wait_until(
            f"{name} after a restart", lambda: http_ok(url, context), deadline, check_alive=self._check_alive
        )
        if name == "etcd":  # the apiserver serves again once it reconnected to etcd
            wait_until("kube-apiserver /readyz", lambda: http_ok(f"{self.server}/readyz", admin), deadline)
        return time.monotonic() - began

    def _launch_process_nodes(self, layout: Layout) -> None:
        argv = agent_argv(layout, self.server, self.process_nodes)
        log = layout.log(PROCESS_NODE_AGENT)
        process = processes.spawn(argv, log, detached=self.detached)
        self.components.append(Component(PROCESS_NODE_AGENT, Path(sys.executable), process.pid, process))

    def _start_real_nodes(self, layout: Layout, deadline: float) -> None:
        assert self._node_artifacts is not None
        nodes = self.real_nodes = RealNodes(
            self.real_node_specs, layout, self.server, self._node_artifacts, detached=self.detached
        )
        nodes.start_namespaces()
        process = processes.spawn(nodes.agent_argv(), layout.log(REAL_NODE_AGENT), detached=self.detached)
        self.components.append(Component(REAL_NODE_AGENT, Path(sys.executable), process.pid, process))
        kubectl = [str(self.bin_dir / "kubectl"), f"--kubeconfig={self.kubeconfig}"]
        try:
            nodes.start_daemons(kubectl, deadline)
        except (RuntimeError, TimeoutError) as error:
            raise ControlPlaneError(str(error)) from error

    def _check_alive(self) -> None:
        if self.real_nodes is not None:
            try:
                self.real_nodes.check_alive()
            except RuntimeError as error:
                raise ControlPlaneError(str(error)) from error
        for component in self.components:
            if component.process is not None and component.process.poll() is not None:
                raise ControlPlaneError(f"{component.name} exited with code {component.process.returncode}")

    def _wait_ready(self, ports: Ports, deadline: float) -> None:
        insecure = self_signed_tls()
        for name, url, context in (
            ("kube-controller-manager", f"https://{LOOPBACK}:{ports.controller_manager}/healthz", insecure),
            ("kube-scheduler", f"https://{LOOPBACK}:{ports.scheduler}/healthz", insecure),
            ("kwok", f"http://{LOOPBACK}:{ports.kwok}/healthz", None),
        ):
            wait_until(
                f"{name} /healthz",
                lambda u=url, c=context: http_ok(u, c),  # type: ignore[misc]
                deadline,
                check_alive=self._check_alive,
            )
        from kubernetes import client

        with self.api_client() as api:
            core: Any = client.CoreV1Api(api)
            for node in self.nodes:
                core.create_node(node.manifest())
            wait_until(
                "the fake nodes to be Ready",
                lambda: self._nodes_ready(core),
                deadline,
                interval=0.25,
                check_alive=self._check_alive,
            )
            wait_until(
                "the default ServiceAccount",
                lambda: has_default_service_account(core, "default"),
                deadline,
                interval=0.25,
                check_alive=self._check_alive,
            )
        if self.real_nodes is not None:
            nodes = self.real_nodes
            wait_until(
                "CoreDNS on the real nodes",
                nodes.ready,
                deadline,
                interval=0.2,
                check_alive=self._check_alive,
            )

    def _nodes_ready(self, core: Any) -> bool:
        wanted = {node.name for node in self.nodes} | {node.name for node in self.process_nodes}
        wanted |= {node.name for node in self.real_node_specs}
        ready = set()
        for node in core.list_node().items:
            conditions = {c.type: c.status for c in node.status.conditions or []}
            taints = {t.key for t in node.spec.taints or []}
            if conditions.get("Ready") == "True" and not taints.intersection(NOT_READY_TAINTS):
                ready.add(node.metadata.name)
        return wanted <= ready
