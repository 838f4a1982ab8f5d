"""Free TCP ports on 127.0.0.1 for the control plane's listeners."""

from __future__ import annotations

import socket
from dataclasses import dataclass, fields

LOOPBACK = "127.0.0.1"


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """Returns `count` distinct ports that were free on `host` a moment ago.

    All sockets stay open until every port is picked, so the kernel never hands out the same
    port twice; the small race between closing them and the servers binding is accepted, as
    controller-runtime's envtest does.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


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
