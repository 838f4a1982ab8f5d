"""A small async Kubernetes API client on aiohttp, with the same credentials kopf logs in with.

The operator writes few kinds of objects (create, merge-patch, delete, list by label, TokenReview);
kopf does all the watching. Every request is counted by verb, resource and code for the
`optikube_apiserver_requests_total` metric, so a hot loop shows up on the dashboard.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import ssl
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import kopf

log = logging.getLogger(__name__)
RequestHook = Callable[[str, str, int], None]
RETRIES = 5
CONNECTIONS = 16
Relogin = Callable[[], Awaitable[kopf.ConnectionInfo]]


class ApiError(Exception):
    def __init__(
        self, status: int, reason: str, message: str, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.details = dict(details or {})

    @property
    def already_exists(self) -> bool:
        return self.status == 409 and self.reason == "AlreadyExists"

    @property
    def not_found(self) -> bool:
        return self.status == 404


def resource_path(
    api_version: str,
    plural: str,
    namespace: str | None = None,
    name: str | None = None,
    sub: str | None = None,
) -> str:
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    parts = [base]
    if namespace is not None:
        parts.append(f"namespaces/{namespace}")
    parts.append(plural)
    if name is not None:
        parts.append(name)
    if sub is not None:
        parts.append(sub)
    return "/".join(parts)


def _pem(data: str | bytes) -> bytes:
    """PEM bytes from kubeconfig data: base64 of PEM, or PEM itself."""
    raw = base64.b64decode(data) if isinstance(data, str) and "-----" not in data else data
    return raw if isinstance(raw, bytes) else raw.encode()


def _load_cert_chain(context: ssl.SSLContext, info: kopf.ConnectionInfo) -> None:
    """The client certificate and key, from their paths or from inline data (ssl reads only
    paths: inline data is given one that no other process can read and that is not left behind)."""
    if not (info.certificate_path or info.certificate_data):
        return
    with contextlib.ExitStack() as stack:
        certificate = _path(info.certificate_path) or stack.enter_context(
            _pem_file("client.crt", info.certificate_data or b"")
        )
        key = _path(info.private_key_path)
        if key is None and info.private_key_data:
            key = stack.enter_context(_pem_file("client.key", info.private_key_data))
        context.load_cert_chain(certificate, key)


def _path(path: str | bytes | os.PathLike[str] | os.PathLike[bytes] | None) -> str | None:
    return os.fsdecode(path) if path else None


@contextlib.contextmanager
def _pem_file(name: str, data: str | bytes) -> Iterator[str]:
    """A path that reads as the PEM data: on Linux an anonymous file in memory, gone with the
    process even on SIGKILL; elsewhere a private temporary directory, removed once read."""
    pem = _pem(data)
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None:
        descriptor = memfd_create(name, os.MFD_CLOEXEC)
        try:
            with os.fdopen(os.dup(descriptor), "wb") as handle:
                handle.write(pem)
            yield f"/proc/self/fd/{descriptor}"
        finally:
            os.close(descriptor)
        return
    with tempfile.TemporaryDirectory(prefix="optikube-") as private:  # created 0700
        path = Path(private, name)
        path.write_bytes(pem)
        yield str(path)


def ssl_context(info: kopf.ConnectionInfo) -> ssl.SSLContext | bool:
    if info.insecure:
        return False
    context = ssl.create_default_context(cafile=_path(info.ca_path))
    if info.ca_data:
        context.load_verify_locations(cadata=_pem(info.ca_data).decode())
    _load_cert_chain(context, info)
    return context


class KubeClient:
    def __init__(
        self,
        info: kopf.ConnectionInfo,
        *,
        relogin: Relogin | None = None,
        on_request: RequestHook | None = None,
        timeout_seconds: float = 30.0,
    ) -> None:
        self._info = info
        self._relogin = relogin
        self._on_request = on_request or (lambda verb, resource, code: None)
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()

    async def _ensure(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # a few connections keep up with the apiserver; each more costs memory (TLS buffers)
            connector = aiohttp.TCPConnector(ssl=ssl_context(self._info), limit=CONNECTIONS)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        if self._info.token:
            headers["Authorization"] = f"Bearer {self._info.token}"
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str | None = "application/json",
    ) -> Any:
        resource = _resource_of(path)
        relogged = False
        for attempt in range(1, RETRIES + 1):
            session = await self._ensure()
            data = None if body is None else json.dumps(body)
            started = time.monotonic()
            async with session.request(
                method,
                self._info.server.rstrip("/") + path,
                data=data,
                params=dict(params or {}),
                headers=self._headers(content_type if body is not None else None),
            ) as response:
                text = await response.text()
                self._on_request(method, resource, response.status)
                log.debug("%s %s: %d in %.3fs", method, path, response.status, time.monotonic() - started)
                if response.status == 401 and not relogged and self._relogin is not None:
                    # a projected service-account token rotates: log in again once
                    relogged = True
                    async with self._lock:
                        self._info = await self._relogin()
                    continue
                payload = _json(text)
                if response.status in (429, 503) and attempt < RETRIES:
                    # the apiserver is busy or starting up: it says when to come back
                    delay = float((payload.get("details") or {}).get("retryAfterSeconds") or attempt)
                    await asyncio.sleep(min(delay, 5.0))
                    continue
                if response.status >= 400:
                    raise ApiError(
                        response.status,
                        str(payload.get("reason", response.reason)),
                        str(payload.get("message", text[:500])),
                        payload.get("details"),
                    )
                return payload
        raise AssertionError("unreachable")

    async def create(self, path: str, body: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        params = {"dryRun": "All"} if dry_run else None
        result: dict[str, Any] = await self.request("POST", path, body=body, params=params)
        return result

    async def get(self, path: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self.request("GET", path)
        except ApiError as error:
            if error.not_found:
                return None
            raise
        return result

    async def list(self, path: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        params = {"labelSelector": label_selector} if label_selector else None
        result = await self.request("GET", path, params=params)
        items: list[dict[str, Any]] = result.get("items", [])
        return items

    async def merge_patch(self, path: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.request(
            "PATCH", path, body=patch, content_type="application/merge-patch+json"
        )
        return result

    async def delete(self, path: str, *, propagation: str = "Background") -> bool:
        """Delete; False when it was already gone."""
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        try:
            await self.request("DELETE", path, body=body)
        except ApiError as error:
            if error.not_found:
                return False
            raise
        return True


def _json(text: str) -> dict[str, Any]:
    try:
        payload = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {"message": text[:500]}
    return payload if isinstance(payload, dict) else {"items": payload}


def _resource_of(path: str) -> str:
    """The resource (plural, with subresource) a path addresses: a bounded metric label."""
    parts = [part for part in path.split("/") if part]
    if parts and parts[0] == "api":
        parts = parts[2:]
    elif parts and parts[0] == "apis":
        parts = parts[3:]
    if parts[:1] == ["namespaces"] and len(parts) > 2:
        parts = parts[2:]
    plural = parts[0] if parts else ""
    sub = parts[2] if len(parts) > 2 else ""
    return f"{plural}/{sub}" if sub else plural
