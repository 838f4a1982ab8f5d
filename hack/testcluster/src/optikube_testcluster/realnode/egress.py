"""The apiserver's "cluster" egress (its egress selector): what it sends to kubelets (logs, exec,
port-forward) and through the proxy subresource to pods and Services arrives here as HTTP CONNECT
on a unix socket, and each tunnel is dialled from inside the node's network namespace, which the
apiserver, on the host's 127.0.0.1, cannot route to. No TCP listener is opened anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Mapping
from pathlib import Path

from optikube_testcluster.processnode.netns import NetnsWorker
from optikube_testcluster.processnode.proxy import CONNECT_TIMEOUT, dial, pump
from optikube_testcluster.processnode.services import Backend

log = logging.getLogger(__name__)
MAX_HEADER_LINES = 100


def egress_selector_config(socket_path: Path) -> str:
    """The apiserver's --egress-selector-config-file: "cluster" traffic over our socket."""
    return f"""apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds:
        udsName: {socket_path}
"""


def parse_connect(request_line: str) -> tuple[str, int] | None:
    """(host, port) of `CONNECT host:port HTTP/1.1`; None for anything else."""
    parts = request_line.split()
    if len(parts) < 2 or parts[0] != "CONNECT":
        return None
    host, _, port = parts[1].rpartition(":")
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        return None


def route(host: str, subnets: Mapping[str, str]) -> str | None:
    """The node whose subnet holds host; None for the host's own loopback (dialled from here)."""
    address = ipaddress.ip_address(host)
    if address.is_loopback:
        return None
    for node, subnet in subnets.items():
        if address in ipaddress.ip_network(subnet):
            return node
    raise LookupError(f"{host} is in no real node's subnet")


class EgressServer:
    """Serves the socket on the running loop; `nodes` maps a node to (its subnet, its netns worker)."""

    def __init__(self, nodes: Mapping[str, tuple[str, NetnsWorker]]) -> None:
        self.nodes = dict(nodes)
        self.subnets = {name: subnet for name, (subnet, _) in self.nodes.items()}

    async def serve(self, path: Path) -> asyncio.AbstractServer:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return await asyncio.start_unix_server(self._handle, path=str(path))

    async def _open(self, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        node = route(host, self.subnets)
        backend = Backend(host, port, node is None)
        worker = self.nodes[node][1] if node is not None else next(iter(self.nodes.values()))[1]
        return await asyncio.wait_for(dial(backend, worker), CONNECT_TIMEOUT)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            target = parse_connect((await reader.readline()).decode(errors="replace"))
            for _ in range(MAX_HEADER_LINES):  # the request's headers, up to the blank line
                if await reader.readline() in (b"\r\n", b"\n", b""):
                    break
            if target is None:
                writer.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                return
            try:
                up_reader, up_writer = await self._open(*target)
            except (OSError, TimeoutError, ValueError, LookupError) as error:
                log.info("egress CONNECT %s:%s: %s", *target, error)
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
                return
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
            up_writer.close()
        except (ConnectionError, OSError) as error:
            log.debug("egress: %s", error)
        finally:
            writer.close()
