"""A TCP proxy in front of the apiserver that can make every open connection go silent.

`freeze()` is the failure behind kopf's silent watch stalls: a load balancer or NAT forgets the
connections it carried, so nothing arrives on them any more and nothing tells the client; new
connections work. The proxy keeps the frozen sockets open and drops what comes in on them.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class _Pair:
    client: socket.socket
    upstream: socket.socket
    frozen: threading.Event = field(default_factory=threading.Event)

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.close()


class StallingProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._pairs: list[_Pair] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        threading.Thread(target=self._accept, name="stall-proxy", daemon=True).start()

    def freeze(self) -> int:
        """Silence every connection open now; returns how many."""
        with self._lock:
            live = [pair for pair in self._pairs if not pair.frozen.is_set()]
            for pair in live:
                pair.frozen.set()
        return len(live)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            for pair in self._pairs:
                pair.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                continue
            upstream.settimeout(None)
            pair = _Pair(client, upstream)
            with self._lock:
                self._pairs.append(pair)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(pair, source, sink), daemon=True).start()

    def _pump(self, pair: _Pair, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if not pair.frozen.is_set():
                    sink.sendall(data)
        except OSError:
            pass
        if not pair.frozen.is_set():  # a frozen connection never closes: that is the stall
            pair.close()
