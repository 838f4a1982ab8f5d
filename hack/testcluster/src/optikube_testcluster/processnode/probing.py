"""Readiness, liveness and startup probes: httpGet and tcpSocket from inside the pod's own network
namespace, exec inside the container's namespaces; plus the pure bookkeeping of thresholds and
periods."""

from __future__ import annotations

import http.client
import socket
import ssl
import subprocess
import time
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any

from optikube_testcluster.processnode.netns import in_netns


def resolve_port(port: int | str, container: dict[str, Any]) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for declared in container.get("ports") or []:
        if declared.get("name") == port:
            return int(declared["containerPort"])
    raise ValueError(f"container {container.get('name')!r} has no port named {port!r}")


def _connected(netns: str, host: str, port: int, timeout: float) -> socket.socket:
    sock: socket.socket = in_netns(netns, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    sock.settimeout(timeout)
    try:
        sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


class _Connection(http.client.HTTPConnection):
    def __init__(self, sock: socket.socket, host: str, timeout: float) -> None:
        super().__init__(host, timeout=timeout)
        self.sock = sock

    def connect(self) -> None:  # already connected, inside the pod's namespace
        pass


@dataclass(frozen=True)
class ExecTarget:
    """Where an exec probe runs: inside the container's namespaces, as its user, with its env."""

    pid: int  # the container's main process, as the host sees it
    uid: int
    gid: int
    env: dict[str, str]


def exec_argv(target: ExecTarget, command: list[str]) -> list[str]:
    """nsenter into every namespace of the container's main process, its root and working dir."""
    return [
        "nsenter", f"--target={target.pid}", "--mount", "--uts", "--ipc", "--net", "--pid",
        "--root", "--wd", f"--setuid={target.uid}", f"--setgid={target.gid}", "--", *command,
    ]  # fmt: skip


def _exec(probe: dict[str, Any], target: ExecTarget | None, timeout: float) -> bool:
    command = [str(part) for part in probe["exec"].get("command") or []]
    if target is None or not command:
        return False
    try:
        done = subprocess.run(
            exec_argv(target, command), env=target.env, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def run_probe(
    probe: dict[str, Any],
    container: dict[str, Any],
    netns: str,
    pod_ip: str,
    target: ExecTarget | None = None,
) -> bool:
    timeout = float(probe.get("timeoutSeconds", 1))
    if "exec" in probe:
        return _exec(probe, target, timeout)
    try:
        if "tcpSocket" in probe:
            action = probe["tcpSocket"]
            host = action.get("host") or pod_ip
            _connected(netns, host, resolve_port(action["port"], container), timeout).close()
            return True
        if "httpGet" in probe:
            action = probe["httpGet"]
            host = action.get("host") or pod_ip
            sock = _connected(netns, host, resolve_port(action["port"], container), timeout)
            if str(action.get("scheme", "HTTP")).upper() == "HTTPS":
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE  # the kubelet does not verify probe targets
                sock = context.wrap_socket(sock, server_hostname=host)
            connection = _Connection(sock, host, timeout)
            headers = {h["name"]: h["value"] for h in action.get("httpHeaders") or []}
            headers.setdefault("User-Agent", "kube-probe/optikube-process-node")
            connection.request("GET", action.get("path") or "/", headers=headers)
            status = connection.getresponse().status
            connection.close()
            return 200 <= status < 400
    except (OSError, http.client.HTTPException, ValueError):
        return False
    return True  # grpc probes are not run: they count as passing


@dataclass
class ProbeTracker:
    """One probe of one running container: when it is due, and its verdict so far."""

    probe: dict[str, Any]
    started: float  # monotonic time the container started
    successes: int = 0
    failures: int = 0
    passed: bool = False
    next_due: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.next_due = self.started + float(self.probe.get("initialDelaySeconds", 0))

    def due(self, now: float) -> bool:
        return now >= self.next_due

    def record(self, ok: bool, now: float) -> None:
        self.next_due = now + float(self.probe.get("periodSeconds", 10))
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= int(self.probe.get("successThreshold", 1)):
                self.passed = True
        else:
            self.successes, self.failures = 0, self.failures + 1
            if self.failures >= int(self.probe.get("failureThreshold", 3)):
                self.passed = False

    def failed(self) -> bool:
        """The failure threshold is reached (liveness: restart the container)."""
        return self.failures >= int(self.probe.get("failureThreshold", 3))


def monotonic() -> float:
    return time.monotonic()


class ContainerProbes:
    """The probes of one run of a container: each runs on the executor when due (startup first,
    then readiness and liveness), and their verdicts say whether it is ready or must be killed."""

    def __init__(self, container: dict[str, Any], started: float, executor: Executor) -> None:
        self.container = container
        self.executor = executor
        self.trackers = {
            kind: ProbeTracker(container[f"{kind}Probe"], started)
            for kind in ("startup", "readiness", "liveness")
            if container.get(f"{kind}Probe")
        }
        self.pending: dict[str, Future[bool]] = {}

    def tick(self, now: float, netns: str, pod_ip: str, target: ExecTarget | None) -> None:
        startup = self.trackers.get("startup")
        for kind, tracker in self.trackers.items():
            if kind != "startup" and startup is not None and not startup.passed:
                continue
            pending = self.pending.get(kind)
            if pending is not None and pending.done():
                tracker.record(bool(pending.result()), now)
                del self.pending[kind]
                pending = None
            if pending is None and tracker.due(now):
                args = (tracker.probe, self.container, netns, pod_ip, target)
                self.pending[kind] = self.executor.submit(run_probe, *args)

    def ready(self) -> bool:
        startup, readiness = self.trackers.get("startup"), self.trackers.get("readiness")
        started = startup is None or startup.passed
        return started and (readiness is None or readiness.passed)

    def failing(self) -> ProbeTracker | None:
        """The liveness or startup probe that has failed for good, if any: kill the container."""
        for kind in ("startup", "liveness"):
            tracker = self.trackers.get(kind)
            if tracker is not None and tracker.failed():
                return tracker
        return None
