"""Health probes of the control plane's endpoints, and the deadline-bound wait loops of its start-up
and of the tests that use it."""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any


class NotReadyError(RuntimeError):
    pass


def http_ok(url: str, context: ssl.SSLContext | None = None, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, ssl.SSLError, OSError):
        return False


def client_tls(ca: Path, cert: Path, key: Path) -> ssl.SSLContext:
    """Verifies the apiserver against our CA and authenticates with a client certificate."""
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(cert), str(key))
    return context


def self_signed_tls() -> ssl.SSLContext:
    # The controllers' health ports serve certificates they generate themselves at startup;
    # the probe only asks "are you up", over loopback.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def wait_until(
    what: str,
    condition: Callable[[], bool],
    deadline: float,
    interval: float = 0.1,
    check_alive: Callable[[], None] | None = None,
) -> None:
    """Polls condition until it holds; deadline is a time.monotonic() value.

    check_alive raises when a process the condition depends on has died, so a crash is reported
    at once with its cause instead of as a timeout.
    """
    while True:
        if check_alive is not None:
            check_alive()
        if condition():
            return
        if time.monotonic() > deadline:
            raise NotReadyError(f"timed out waiting for {what}")
        time.sleep(interval)


def wait_for(what: str, condition: Callable[[], Any], timeout: float = 60.0, interval: float = 0.2) -> Any:
    """Polls condition until it returns something truthy, and returns that; a test's wait, so the
    timeout is an AssertionError that says what did not happen."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
