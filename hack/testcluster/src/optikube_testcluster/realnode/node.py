"""Starting and stopping the real nodes of one control plane (see docs/development.md, "The real
node"). The control plane calls, in its start-up order:

1. `prepare(specs)` before its deadline starts: builds or finds the kubelet, CoreDNS, the pause image
   and the nodes' images, and fills the image store (minutes on a fresh machine, nothing after);
2. `start_namespaces()` once the apiserver serves: files, certificates, cgroups, each node's
   namespace holder with its bridge and mounts, its containerd root copied from the image store;
3. the agent (`agent_argv`), which the control plane runs as one of its components;
4. `start_daemons()`: containerd, the DNS Service and CoreDNS, the kubelet, per node;
5. `ready()` in its wait: CoreDNS answers (the Node's Ready condition the control plane checks).

`stop()` (and `teardown`, which needs no object, for `make cluster-down`) kills everything in the
nodes' cgroup subtrees and removes them; the kernel takes the namespaces, bridges and mounts.
"""

from __future__ import annotations

import functools
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from optikube_testcluster import pki, processes
from optikube_testcluster.kubeconfig import render_kubeconfig, write_kubeconfig
from optikube_testcluster.layout import REAL_NODE_AGENT, Layout
from optikube_testcluster.pki import ClientIdentity
from optikube_testcluster.processnode.netns import in_netns
from optikube_testcluster.realnode import cgroups, holder
from optikube_testcluster.realnode.agent import AgentNode
from optikube_testcluster.realnode.artifacts import NodeArtifacts, node_artifacts
from optikube_testcluster.realnode.configs import (
    CNI_CONFLIST,
    COREDNS_READY_PORT,
    COREDNS_USER,
    cluster_objects,
    cni_conflist,
    containerd_config,
    corefile,
)
from optikube_testcluster.realnode.imagestore import CTR_NAMESPACE, ImageStore
from optikube_testcluster.realnode.kubeletconfig import SERVING_CERT, kubelet_argv, kubelet_config
from optikube_testcluster.realnode.paths import NodePaths, node_cgroup
from optikube_testcluster.realnode.spec import RealNodeSpec, with_real_subnets

AGENT_MODULE = "optikube_testcluster.realnode"
COREDNS = ClientIdentity("coredns", COREDNS_USER)


@dataclass
class RunningNode:
    spec: RealNodeSpec
    paths: NodePaths
    cgroup: str
    holder: int = 0
    daemons: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)


def teardown(cgroup: str, node_dir: Path | None = None) -> list[str]:
    """Kills every process of a node's cgroup subtree and removes it; returns what was left (cgroups
    that would not go, mounts under the node's directory, which the private namespace rules out)."""
    cgroups.kill_all(cgroup)
    problems = cgroups.remove(cgroup)
    if node_dir is not None:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
        problems += [f"mount left on the host: {line}" for line in mounts if str(node_dir) in line]
    return problems


def sweep_stale() -> list[str]:
    """Tears down the nodes a killed run left (their holder gone, shims and containers running)."""
    stale = cgroups.stale_nodes()
    for cgroup in stale:
        teardown(cgroup)
    return stale


def prepare(specs: Sequence[RealNodeSpec], store: ImageStore | None = None) -> NodeArtifacts:
    """Builds or finds what the nodes run and fills the image store with the pause image and the
    nodes' images: minutes on a fresh machine, a fraction of a second once everything is cached."""
    artifacts = node_artifacts()
    images = {str(artifacts.pause_archive), *(image for spec in specs for image in spec.images)}
    store = store or ImageStore()
    store.ensure([Path(image) for image in sorted(images)], store.root / "import.log")
    return artifacts


class RealNodes:
    def __init__(
        self,
        specs: Sequence[RealNodeSpec],
        layout: Layout,
        server: str,
        artifacts: NodeArtifacts,
        *,
        detached: bool,
    ) -> None:
        self.specs = with_real_subnets(list(specs))
        self.layout = layout
        self.server = server
        self.artifacts = artifacts
        self.detached = detached
        self.store = ImageStore()
        self.nodes: list[RunningNode] = []
        self.timings: dict[str, float] = {}

    # ---- 2. namespaces --------------------------------------------------------------------------

    def start_namespaces(self) -> None:
        sweep_stale()
        for spec in self.specs:
            began = time.monotonic()
            paths = NodePaths.of(self.layout.root, spec.name)
            paths.check_socket_length()
            node = RunningNode(spec, paths, node_cgroup(self.layout.root, spec.name))
            self.nodes.append(node)
            self._write_files(node)
            self.store.copy_to(paths.containerd_root)
            self.timings[f"{spec.name} image store copy"] = time.monotonic() - began
            cgroups.make(f"{node.cgroup}/{cgroups.HOLDER}")
            cgroups.make(f"{node.cgroup}/{cgroups.SYSTEM}")
            node.holder = holder.start_holder(paths, node.cgroup, detached=self.detached)
            assert spec.pod_cidr is not None
            holder.set_up_network(node.holder, spec.node_ip, int(spec.pod_cidr.rsplit("/", 1)[1]))
            holder.set_up_mounts(node.holder, paths)

    def _write_files(self, node: RunningNode) -> None:
        paths, spec = node.paths, node.spec
        for directory in paths.directories():
            directory.mkdir(parents=True, exist_ok=True)
        paths.pki.chmod(0o700)
        ca = pki.load_keypair(self.layout.pki, "ca")
        for identity, kubeconfig in (
            (pki.kubelet_identity(spec.name), paths.kubelet_kubeconfig),
            (COREDNS, paths.coredns_kubeconfig),
        ):
            pair = pki.make_client_cert(ca, identity)
            document = render_kubeconfig(self.server, ca.cert_pem, pair.cert_pem, pair.key_pem, identity.user)
            write_kubeconfig(kubeconfig, document)
        pki.write_keypair(paths.pki, SERVING_CERT, pki.make_kubelet_serving_cert(ca, spec.name, spec.node_ip))
        artifacts = self.artifacts
        paths.containerd_config.parent.mkdir(parents=True, exist_ok=True)
        paths.containerd_config.write_text(
            containerd_config(paths, artifacts.pause_image, str(artifacts.runc), str(artifacts.cni_bin_dir))
        )
        assert spec.pod_cidr is not None
        conflist = cni_conflist(paths, spec.pod_cidr, spec.node_ip)
        (paths.cni_conf_dir / CNI_CONFLIST).write_text(json.dumps(conflist, indent=2))
        config = kubelet_config(paths, spec, self.layout.ca_cert, node.cgroup)
        paths.kubelet_config.write_text(json.dumps(config, indent=2))
        paths.corefile.write_text(corefile(paths))

    # ---- 3. the agent ---------------------------------------------------------------------------

    def agent_argv(self) -> list[str]:
        layout = self.layout
        return [
            sys.executable,
            "-m",
            AGENT_MODULE,
            "agent",
            f"--server={self.server}",
            f"--ca-file={layout.ca_cert}",
            f"--cert-file={layout.client_cert(REAL_NODE_AGENT)}",
            f"--key-file={layout.client_key(REAL_NODE_AGENT)}",
            f"--egress-socket={layout.egress_socket}",
            *(
                f"--node={AgentNode(n.spec.name, n.holder, n.spec.pod_cidr or '').to_arg()}"
                for n in self.nodes
            ),
        ]

    # ---- 4. the daemons -------------------------------------------------------------------------

    def start_daemons(self, kubectl: Sequence[str], deadline: float) -> None:
        port = int(self.server.rsplit(":", 1)[1])
        objects = json.dumps({"apiVersion": "v1", "kind": "List", "items": cluster_objects()})
        subprocess.run(
            [*kubectl, "apply", "-f", "-"], input=objects, text=True, check=True, capture_output=True
        )
        for node in self.nodes:
            began = time.monotonic()
            paths = node.paths
            ctr = ["ctr", "--address", str(paths.containerd_socket), "--namespace", CTR_NAMESPACE]
            self._spawn(node, "containerd", ["containerd", "--config", str(paths.containerd_config)])
            _wait("containerd", functools.partial(_answers, ctr), deadline, node)
            _wait(
                "the agent's apiserver forwarder",
                functools.partial(_netns_connects, node.holder, port),
                deadline,
                node,
            )
            # CoreDNS needs no mount of the node's: only its network namespace
            self._spawn(
                node, "coredns", [str(self.artifacts.coredns), "-conf", str(paths.corefile)], mount=False
            )
            self._spawn(node, "kubelet", kubelet_argv(self.artifacts.kubelet, paths, node.spec))
            self.timings[f"{node.spec.name} daemons"] = time.monotonic() - began

    def _spawn(self, node: RunningNode, name: str, argv: list[str], *, mount: bool = True) -> None:
        wrapped = cgroups.entering_argv(
            f"{node.cgroup}/{cgroups.SYSTEM}", [*holder.ns_argv(node.holder, mount=mount), *argv]
        )
        node.daemons[name] = processes.spawn(wrapped, node.paths.log(name), detached=self.detached)

    # ---- 5. ready, alive ------------------------------------------------------------------------

    def ready(self) -> bool:
        return all(_netns_http_ok(node.holder, COREDNS_READY_PORT, "/ready") for node in self.nodes)

    def check_alive(self) -> None:
        for node in self.nodes:
            for name, process in node.daemons.items():
                if process.poll() is not None:
                    tail = "\n".join(node.paths.log(name).read_text(errors="replace").splitlines()[-20:])
                    raise RuntimeError(
                        f"{node.spec.name}: {name} exited with code {process.returncode}:\n{tail}"
                    )

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.specs]

    @property
    def cgroups(self) -> list[str]:
        return [node.cgroup for node in self.nodes]

    def stop(self) -> list[str]:
        problems: list[str] = []
        for node in self.nodes:
            problems += teardown(node.cgroup, node.paths.root)
            for process in node.daemons.values():
                process.poll()
        self.nodes = []
        return problems


def _wait(what: str, condition: Callable[[], bool], deadline: float, node: RunningNode) -> None:
    while not condition():
        for name, process in node.daemons.items():
            if process.poll() is not None:
                raise RuntimeError(f"{node.spec.name}: {name} exited with code {process.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{node.spec.name}: timed out waiting for {what}")
        time.sleep(0.1)


def _answers(ctr: list[str]) -> bool:
    return subprocess.run([*ctr, "version"], capture_output=True, check=False).returncode == 0


def _netns_connects(holder_pid: int, port: int) -> bool:
    def connect() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError:
            return False
        return True

    return in_netns(f"/proc/{holder_pid}/ns/net", connect)


def _netns_http_ok(holder_pid: int, port: int, path: str) -> bool:
    def get() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    return in_netns(f"/proc/{holder_pid}/ns/net", get)
