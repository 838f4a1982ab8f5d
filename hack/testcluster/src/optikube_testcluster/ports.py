"""Free TCP ports on 127.0.0.1 for the control plane's listeners."""

from __future__ import annotations

import random
import socket
from dataclasses import dataclass, fields
from pathlib import Path

LOOPBACK = "127.0.0.1"


LOWEST = 10_000  # clear of the well-known and registered ports most hosts run servers on
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_start(path: Path = EPHEMERAL_RANGE) -> int:
    """The first port the kernel hands out to outgoing connections (32768 unless configured)."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """Returns `count` distinct ports that were free on `host` a moment ago, below the kernel's
    ephemeral range.

    A server often binds its port seconds or minutes after it was picked (a host listener made
    once a Service exists); a port of the ephemeral range may by then be the local end of any
    outgoing connection (a watch lives for minutes), and the bind fails. Below the range only
    another listener can take it. All sockets stay open until every port is picked, so no port is
    given twice; the small race with other listeners is accepted, as controller-runtime's envtest
    does.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    generator = random.SystemRandom()
    top = ephemeral_start()
    sockets: list[socket.socket] = []
    try:
        for _ in range(count * 50 if top > LOWEST else 0):
            if len(sockets) == count:
                break
            if (sock := _bound(host, generator.randrange(LOWEST, top))) is not None:
                sockets.append(sock)
        while len(sockets) < count:  # a crowded range: whatever the kernel gives
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _bound(host: str, port: int) -> socket.socket | None:
    """A socket bound to host:port, or None where the port is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        return None
    return sock


@dataclass(frozen=True)
class Ports:
    """Every port the control plane listens on; all of them on 127.0.0.1."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int

    @classmethod
    def allocate(cls) -> Ports:
        return cls(*free_ports(len(fields(cls))))

    def all(self) -> list[int]:
        return [getattr(self, f.name) for f in fields(self)]
