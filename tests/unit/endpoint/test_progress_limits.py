"""The progress endpoint against clients that hold it: slow bodies, trickled headers, oversized and
chunked bodies. Each is cut off with a 4xx (or the connection closed), records nothing, and a valid
report sent meanwhile is answered at once."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

from optikube_operator.api.progress import AnyProgress
from optikube_operator.endpoint import BearerTokens, ProgressEndpoint, RunKey

EVENT = {"type": "intermediate", "trial": 3, "epoch": 0, "step": 0, "values": {"accuracy": 0.2}}
READ_TIMEOUT = 1.0
IDLE_TIMEOUT = 2.0


def _address(url: str) -> tuple[str, int]:
    host, port = url.split("//")[1].split("/")[0].rsplit(":", 1)
    return host, int(port)


def _head(token: str, extra: str) -> bytes:
    return f"POST /v1/progress HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n{extra}\r\n".encode()


def _answer(sock: socket.socket, within: float) -> tuple[bytes, float]:
    """The first bytes the server sends (b"" when it closed the connection) and when they came."""
    started = time.monotonic()
    sock.settimeout(within)
    try:
        data = sock.recv(200)
    except (ConnectionResetError, BrokenPipeError):
        data = b""
    return data, time.monotonic() - started


def _closed(sock: socket.socket, within: float) -> bool:
    """Whether the server closes the connection (after the rest of its answer) within ``within``."""
    sock.settimeout(within)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except OSError:
        pass
    return True


def _trickle(sock: socket.socket, seconds: float) -> bytes:
    """Send one byte every 0.1 s until the server answers or closes; returns what it sent."""
    sock.settimeout(0.1)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            sock.sendall(b" ")
        except OSError:
            return b""
        try:
            return sock.recv(200)
        except TimeoutError:
            continue
        except OSError:
            return b""
    raise AssertionError("the server neither answered nor closed the connection")


def _valid(url: str, token: str, step: int) -> float:
    body = json.dumps({**EVENT, "step": step, "epoch": step}).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    started = time.monotonic()
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
    return time.monotonic() - started


def _serve(scenario: Callable[[str, str], Any]) -> tuple[Any, list[AnyProgress], list[str]]:
    received: list[AnyProgress] = []
    outcomes: list[str] = []

    async def handler(key: RunKey, event: AnyProgress) -> dict[str, Any]:
        received.append(event)
        return {}

    async def main() -> Any:
        tokens = BearerTokens()
        endpoint = ProgressEndpoint(
            handler,
            tokens,
            on_outcome=outcomes.append,
            max_body_bytes=4096,
            read_timeout=READ_TIMEOUT,
            idle_timeout=IDLE_TIMEOUT,
        )
        url = await endpoint.start("127.0.0.1", 0)
        try:
            run: Awaitable[Any] = asyncio.to_thread(scenario, url, tokens.issue(RunKey(3)))
            return await run
        finally:
            await endpoint.stop()

    return asyncio.run(main()), received, outcomes


def test_a_trickled_body_gets_408_and_its_connection_closed_while_others_are_served() -> None:
    def scenario(url: str, token: str) -> tuple[bytes, float, bool, list[float]]:
        slow = [socket.create_connection(_address(url)) for _ in range(8)]
        for sock in slow:
            sock.sendall(_head(token, "Content-Length: 2000\r\nContent-Type: application/json\r\n"))
        started = time.monotonic()
        latencies = [_valid(url, token, step) for step in range(5)]  # while the 8 hang
        replies = [_trickle(sock, READ_TIMEOUT + 5) for sock in slow]
        elapsed = time.monotonic() - started
        closed = all(_closed(sock, 2) for sock in slow)  # after a 408, the server hangs up
        for sock in slow:
            sock.close()
        return replies[0], elapsed, closed, latencies

    (reply, elapsed, after, latencies), received, outcomes = _serve(scenario)
    assert reply.startswith(b"HTTP/1.1 408"), reply
    assert READ_TIMEOUT <= elapsed < READ_TIMEOUT + 3
    assert after
    assert max(latencies) < READ_TIMEOUT / 2, latencies  # nobody waited for the slow ones
    assert len(received) == 5 and outcomes.count("timeout") == 8


def test_headers_trickled_byte_by_byte_are_cut_off_after_the_idle_timeout() -> None:
    def scenario(url: str, token: str) -> tuple[bytes, float]:
        with socket.create_connection(_address(url)) as sock:
            sock.sendall(b"POST /v1/progress HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            started = time.monotonic()
            sock.settimeout(0.2)
            while time.monotonic() - started < IDLE_TIMEOUT + 5:
                try:
                    sock.sendall(b"a")
                    data = sock.recv(200)
                except TimeoutError:
                    continue
                except OSError:
                    data = b""
                return data, time.monotonic() - started
        raise AssertionError("the connection stayed open")

    (data, elapsed), received, outcomes = _serve(scenario)
    assert not data.startswith(b"HTTP/1.1 2"), data
    assert elapsed < IDLE_TIMEOUT + 2
    assert received == [] and outcomes == []


def test_oversized_bodies_get_413_unread_declared_or_chunked() -> None:
    def scenario(url: str, token: str) -> list[bytes]:
        replies = []
        with socket.create_connection(_address(url)) as sock:  # declared: refused before any byte
            sock.sendall(_head(token, "Content-Length: 100000000\r\n"))
            replies.append(_answer(sock, 5)[0])
        with socket.create_connection(_address(url)) as sock:  # chunked: refused once past the limit
            sock.sendall(_head(token, "Transfer-Encoding: chunked\r\n"))
            chunk = b"{" * 1024
            try:
                for _ in range(64):
                    sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:
                pass  # the server may close before the last chunk
            replies.append(_answer(sock, 5)[0])
        return replies

    replies, received, outcomes = _serve(scenario)
    assert all(reply.startswith(b"HTTP/1.1 413") for reply in replies), replies
    assert received == [] and outcomes == ["tooLarge", "tooLarge"]
