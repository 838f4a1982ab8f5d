"""A userspace service proxy (kube-proxy's original mode) for the process nodes.

Listeners sit on ClusterIP:port inside the node's network namespace, where the whole Service
range is a local route. Each connection goes to a ready endpoint: pod backends are dialled from
a socket created in the node's namespace, host backends (the apiserver, host-backed Services)
from a socket of the asyncio thread itself, which never leaves the host's namespace and only
ever connects to 127.0.0.1. Host listeners (Services annotated host-listen) are that thread's
sockets too, bound to the host's 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import threading
from collections.abc import Sequence

from optikube_testcluster.processnode.netns import NetnsWorker
from optikube_testcluster.processnode.services import Backend, ProxyRule

log = logging.getLogger(__name__)
Address = tuple[str, int]
CONNECT_TIMEOUT = 5.0


def _listener(address: Address) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _unconnected() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    return sock


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


async def dial(backend: Backend, node_ns: NetnsWorker) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to backend, on the running loop: a host backend from this thread's socket (the
    host's namespace), a pod backend from a socket node_ns's thread created in the node's."""
    if backend.host:
        return await asyncio.open_connection(backend.ip, backend.port)
    sock = await asyncio.wrap_future(node_ns.submit(_unconnected))
    try:
        await asyncio.get_running_loop().sock_connect(sock, (backend.ip, backend.port))
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)


class ServiceProxy:
    def __init__(self, node_ns: NetnsWorker) -> None:
        self.node_ns = node_ns
        self.loop = asyncio.new_event_loop()
        self._rules: dict[Address, ProxyRule] = {}
        self._servers: dict[Address, asyncio.base_events.Server] = {}
        self._turns: dict[Address, itertools.count[int]] = {}
        self._thread = threading.Thread(target=self.loop.run_forever, name="service proxy", daemon=True)
        self._thread.start()

    def update(self, rules: Sequence[ProxyRule]) -> None:
        """Makes the listeners match rules (thread-safe; returns once applied)."""
        asyncio.run_coroutine_threadsafe(self._apply(list(rules)), self.loop).result(timeout=30)

    def listening(self) -> set[Address]:
        return set(self._servers)

    async def _apply(self, rules: list[ProxyRule]) -> None:
        wanted = {(rule.cluster_ip, rule.port): rule for rule in rules}
        for address in set(self._servers) - set(wanted):
            self._servers.pop(address).close()
            self._rules.pop(address, None)
        self._rules.update(wanted)
        for address in set(wanted) - set(self._servers):
            try:
                if wanted[address].on_host:
                    # this thread is in the host's namespace; such rules only ever name 127.0.0.1
                    sock = _listener(("127.0.0.1", address[1]))
                else:
                    sock = await asyncio.wrap_future(self.node_ns.submit(lambda a=address: _listener(a)))  # type: ignore[misc]
            except OSError as error:
                log.warning("cannot listen on %s:%s for %s: %s", *address, wanted[address].service, error)
                continue
            handler = self._handler(address)
            self._servers[address] = await asyncio.start_server(handler, sock=sock)
            self._turns[address] = itertools.count()

    def _handler(self, address: Address):  # type: ignore[no-untyped-def]
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            rule = self._rules.get(address)
            backends = list(rule.backends) if rule else []
            if backends:
                start = next(self._turns[address]) % len(backends)
                backends = backends[start:] + backends[:start]
            if not backends:
                log.info("%s: no ready endpoint, connection closed", rule.service if rule else address)
            for backend in backends:
                try:
                    upstream = await asyncio.wait_for(dial(backend, self.node_ns), CONNECT_TIMEOUT)
                except (OSError, TimeoutError) as error:
                    log.info(
                        "%s: backend %s:%s refused: %s",
                        rule and rule.service,
                        backend.ip,
                        backend.port,
                        error,
                    )
                    continue
                up_reader, up_writer = upstream
                await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
                up_writer.close()
                break
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

        return handle

    def stop(self) -> None:
        async def close_all() -> None:
            for server in self._servers.values():
                server.close()
            self._servers.clear()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
