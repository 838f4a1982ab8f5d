"""A pod's sandbox (what a runtime's pause container is): the process holding the pod's network,
UTS, IPC, mount and PID namespaces, its address on the node's bridge, and the files the node
manages for it (/etc/hosts, /etc/hostname, /etc/resolv.conf)."""

from __future__ import annotations

import contextlib
import logging
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from optikube_testcluster.processnode.context import AgentContext
from optikube_testcluster.processnode.hosts import pod_hostname, render_resolv_conf
from optikube_testcluster.processnode.paths import PodDirs
from optikube_testcluster.processnode.rootplan import identity
from optikube_testcluster.processnode.spawner import read_ready
from optikube_testcluster.processnode.volumes import memory_volumes, tmpfs_options

log = logging.getLogger(__name__)


def write_in_place(path: Path, text: str) -> None:
    """Rewrites a bind-mounted file without replacing its inode (a rename would leave containers
    reading the old file): overwrite, then cut what is left of the old content."""
    data = text.encode()
    if not path.exists():
        path.write_bytes(b"")
    with path.open("r+b") as out:
        if out.read() == data:
            return
        out.seek(0)
        out.write(data)
        out.truncate()


class PodSandbox:
    def __init__(self, ctx: AgentContext, pod: dict[str, Any], dirs: PodDirs) -> None:
        self.ctx = ctx
        self.dirs = dirs
        self.node = pod["spec"]["nodeName"]
        self.host_network = bool(pod["spec"].get("hostNetwork"))
        self.process: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None  # the pod's PID 1, as the host sees it
        self.pod_ip: str | None = None
        self._hosts_lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self.process is not None

    def died(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    @property
    def netns(self) -> str:
        return f"/proc/{self.pid}/ns/net"

    def start(self, pod: dict[str, Any]) -> None:
        metadata = pod["metadata"]
        self.dirs.root.mkdir(parents=True, exist_ok=True)
        self.dirs.shm.mkdir(exist_ok=True)
        # Pod-level memory lives in the sandbox's mount namespace only: gone with the pod, never
        # part of the host's mount table.
        fs_group = identity(pod, {}).fs_group
        tmpfs = [{"path": str(self.dirs.shm), "options": "mode=1777"}]
        volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        for name in memory_volumes(pod):
            self.dirs.volume(name).mkdir(parents=True, exist_ok=True)
            tmpfs.append(
                {"path": str(self.dirs.volume(name)), "options": tmpfs_options(volumes[name], fs_group)}
            )
        spec = {
            "hostname": pod_hostname(pod),
            "tmpfs": tmpfs,
            "netns": self.ctx.network.path if self.host_network else None,
        }
        self.process = self.ctx.spawner.nsinit("sandbox", spec, self.dirs.sandbox_spec)
        self.pid = read_ready(self.process, f"the sandbox of {metadata['namespace']}/{metadata['name']}")
        if self.host_network:
            self.pod_ip = self.ctx.network.gateway(self.node)
        else:
            self.pod_ip = self.ctx.network.attach(self.node, metadata["uid"], self.pid)
        self.dirs.hostname.write_text(pod_hostname(pod) + "\n")
        self.dirs.resolv_conf.write_text(render_resolv_conf(metadata["namespace"]))
        self.refresh_hosts(pod)
        log.info(
            "pod %s/%s: sandbox %s, IP %s", metadata["namespace"], metadata["name"], self.pid, self.pod_ip
        )

    def refresh_hosts(self, pod: dict[str, Any]) -> None:
        if self.pod_ip is None or self.process is None:
            return
        with self._hosts_lock, contextlib.suppress(OSError):
            write_in_place(self.dirs.hosts, self.ctx.hosts_for(pod, self.pod_ip))

    def stop(self) -> None:
        """SIGKILLs the sandbox: its PID 1 dies by its parent-death signal, and with PID 1 the
        kernel kills every process of the pod; the namespaces (and veth) go with the last one."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait()
        deadline = time.monotonic() + 5
        while self.pid and Path(f"/proc/{self.pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.pod_ip and not self.host_network:
            self.ctx.network.release(self.node, self.pod_ip)
        self.process = None
