"""Pod addresses: each node hands out the hosts of its /24, the first one being its own."""

from __future__ import annotations

import ipaddress
import threading


class AddressPool:
    def __init__(self, cidr: str) -> None:
        network = ipaddress.ip_network(cidr)
        hosts = [str(host) for host in network.hosts()]
        self.cidr = cidr
        self.prefix_length = network.prefixlen
        self.gateway = hosts[0]
        self._free = hosts[1:]
        self._taken: dict[str, str] = {}  # ip -> owner (pod uid)
        self._lock = threading.Lock()

    def allocate(self, owner: str) -> str:
        with self._lock:
            for ip, holder in self._taken.items():
                if holder == owner:
                    return ip
            if not self._free:
                raise RuntimeError(f"no free pod address left in {self.cidr}")
            ip = self._free.pop(0)
            self._taken[ip] = owner
            return ip

    def release(self, ip: str) -> None:
        with self._lock:
            if self._taken.pop(ip, None) is not None:
                # Reused last: a peer that still caches the old pod's address reaches nobody.
                self._free.append(ip)
