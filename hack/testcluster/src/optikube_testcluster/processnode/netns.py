"""The node's network: a network namespace of its own (never the host's) holding a bridge, each
pod's veth, the nodes' gateway addresses and the Service range as a local route, plus helpers to
create sockets inside such a namespace from a thread of the agent.

Nothing here adds an interface, address or route to the host's network namespace, and the
namespaces are held only by processes (no bind mount under /run/netns): when the holders die,
the kernel removes the namespaces and every veth in them.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TypeVar

from optikube_testcluster.flags import SERVICE_CLUSTER_IP_RANGE
from optikube_testcluster.processnode import nssyscalls
from optikube_testcluster.processnode.ipam import AddressPool
from optikube_testcluster.processnode.spawner import Spawner, WorkThread, read_ready

BRIDGE = "okbr0"
T = TypeVar("T")


def ns_path(pid: int) -> str:
    return f"/proc/{pid}/ns/net"


def ip_batch(netns: str, commands: Sequence[str]) -> None:
    """Runs `ip` commands inside a network namespace (iproute2 and util-linux's nsenter)."""
    result = subprocess.run(
        ["nsenter", f"--net={netns}", "ip", "-batch", "-"],
        input="\n".join(commands) + "\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"ip in {netns} failed: {result.stderr.strip()}\ncommands: {list(commands)}")


def sysctl(netns: str, key: str, value: str) -> None:
    subprocess.run(
        ["nsenter", f"--net={netns}", "sysctl", "-q", "-w", f"{key}={value}"], check=True, timeout=30
    )


def in_netns(path: str, work: Callable[[], T]) -> T:
    """Runs work on a short-lived thread that has joined the network namespace at path: sockets it
    creates belong to that namespace for good (a socket's namespace is fixed at creation)."""
    future: Future[T] = Future()

    def run() -> None:
        try:
            nssyscalls.setns(path, nssyscalls.CLONE_NEWNET)
            future.set_result(work())
        except BaseException as error:
            future.set_exception(error)

    thread = threading.Thread(target=run, name="netns", daemon=True)
    thread.start()
    return future.result()


class NodeNetwork:
    """The namespace, the bridge and the address pools of the agent's nodes."""

    def __init__(self, spawner: Spawner, spec_path: Path, subnets: dict[str, str]) -> None:
        self.spawner = spawner
        self.spec_path = spec_path
        self.pools = {node: AddressPool(cidr) for node, cidr in subnets.items()}
        self.holder: subprocess.Popen[bytes] | None = None
        self._veths = 0
        self._lock = threading.Lock()

    @property
    def path(self) -> str:
        if self.holder is None:
            raise RuntimeError("the node network has not been started")
        return ns_path(self.holder.pid)

    def start(self) -> None:
        self.holder = self.spawner.nsinit("hold", {}, self.spec_path)
        read_ready(self.holder, "the node network holder")
        commands = ["link set lo up", f"link add {BRIDGE} type bridge", f"link set {BRIDGE} up"]
        for pool in self.pools.values():
            commands.append(f"addr add {pool.gateway}/{pool.prefix_length} dev {BRIDGE}")
        # Every ClusterIP is a local address of this namespace: the proxy binds them directly.
        commands.append(f"route add local {SERVICE_CLUSTER_IP_RANGE} dev lo")
        ip_batch(self.path, commands)
        sysctl(self.path, "net.ipv4.ip_forward", "1")  # pods of two nodes are on two subnets

    def attach(self, node: str, owner: str, sandbox_pid: int) -> str:
        """Gives the pod in sandbox_pid's namespace an address on node's subnet; returns it."""
        pool = self.pools[node]
        ip = pool.allocate(owner)
        with self._lock:
            self._veths += 1
            veth = f"vp{self._veths:x}"
        try:
            ip_batch(
                self.path,
                [
                    f"link add {veth} type veth peer name eth0 netns {sandbox_pid}",
                    f"link set {veth} master {BRIDGE} up",
                ],
            )
            ip_batch(
                ns_path(sandbox_pid),
                [
                    "link set lo up",
                    f"addr add {ip}/{pool.prefix_length} dev eth0",
                    "link set eth0 up",
                    f"route add default via {pool.gateway}",
                ],
            )
        except BaseException:
            pool.release(ip)
            raise
        return ip

    def release(self, node: str, ip: str) -> None:
        # The veth goes with the pod's namespace; only the address returns to the pool.
        self.pools[node].release(ip)

    def gateway(self, node: str) -> str:
        return self.pools[node].gateway

    def stop(self) -> None:
        if self.holder is not None and self.holder.poll() is None:
            self.holder.kill()
            self.holder.wait()


class NetnsWorker(WorkThread):
    """A thread that lives inside one network namespace and runs what it is given there."""

    def __init__(self, path: str) -> None:
        super().__init__("netns worker", lambda: nssyscalls.setns(path, nssyscalls.CLONE_NEWNET))
