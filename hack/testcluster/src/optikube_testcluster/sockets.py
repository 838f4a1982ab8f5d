"""Which TCP ports a process listens on, read from /proc: lets tests prove that every server of
the control plane is bound to 127.0.0.1."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

TCP_LISTEN = "0A"
_SOCKET_LINK = re.compile(r"^socket:\[(\d+)\]$")


@dataclass(frozen=True)
class Listener:
    address: str
    port: int
    inode: int


def decode_address(hex_address: str) -> tuple[str, int]:
    """Decodes '0100007F:1F90' (or its 32-digit IPv6 form) as /proc/net/tcp* writes it."""
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    # The kernel prints each 32-bit word in host (little-endian) order.
    words = [raw[i : i + 4][::-1] for i in range(0, len(raw), 4)]
    return str(ipaddress.ip_address(b"".join(words))), int(port, 16)


def parse_listeners(table: str) -> list[Listener]:
    """The LISTEN entries of a /proc/<pid>/net/tcp or tcp6 table."""
    listeners = []
    for line in table.splitlines()[1:]:
        columns = line.split()
        if len(columns) < 10 or columns[3] != TCP_LISTEN:
            continue
        address, port = decode_address(columns[1])
        listeners.append(Listener(address, port, int(columns[9])))
    return listeners


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            match = _SOCKET_LINK.match(str(fd.readlink()))
        except OSError:  # closed while we looked
            continue
        if match:
            inodes.add(int(match.group(1)))
    return inodes


def listening_sockets(pid: int) -> list[Listener]:
    """The TCP sockets pid itself listens on (the net tables list its whole network namespace)."""
    owned = socket_inodes(pid)
    found = []
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if path.exists():
            found += [s for s in parse_listeners(path.read_text()) if s.inode in owned]
    return found
