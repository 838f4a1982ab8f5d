"""A small Kubernetes REST client returning plain JSON dicts.

The agent's builders work on dicts shaped like the API's JSON; the generated `kubernetes`
models would be converted back and forth on every watch event. One keep-alive connection per
thread (http.client connections are not thread-safe), client-certificate authentication.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


class ApiError(RuntimeError):
    def __init__(self, status: int, method: str, path: str, body: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class Credentials:
    server: str  # https://127.0.0.1:<port>
    ca_file: Path
    cert_file: Path
    key_file: Path


def url_path(path: str, params: dict[str, Any] | None = None) -> str:
    if not params:
        return path
    query = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in params.items() if v is not None}
    return f"{path}?{urllib.parse.urlencode(query)}"


class RestClient:
    def __init__(self, credentials: Credentials, timeout: float = 30.0) -> None:
        self.credentials = credentials
        parsed = urllib.parse.urlsplit(credentials.server)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 443
        self.timeout = timeout
        self._context = ssl.create_default_context(cafile=str(credentials.ca_file))
        self._context.load_cert_chain(str(credentials.cert_file), str(credentials.key_file))
        self._local = threading.local()

    def _connection(self, timeout: float | None = None) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            self.host, self.port, context=self._context, timeout=timeout or self.timeout
        )

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        target = url_path(path, params)
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if payload is not None:
            headers["Content-Type"] = content_type
        for attempt in (1, 2):
            connection = getattr(self._local, "connection", None)
            if connection is None:
                connection = self._local.connection = self._connection()
            try:
                connection.request(method, target, body=payload, headers=headers)
                response = connection.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, OSError):
                # A keep-alive connection the server closed: retry once on a fresh one.
                connection.close()
                self._local.connection = None
                if attempt == 2:
                    raise
        text = data.decode(errors="replace")
        if response.status >= 400:
            raise ApiError(response.status, method, target, text)
        return json.loads(text) if text else None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def create(self, path: str, body: Any, **params: Any) -> Any:
        return self.request("POST", path, body, params=params)

    def patch(self, path: str, body: Any, content_type: str = MERGE_PATCH) -> Any:
        return self.request("PATCH", path, body, content_type=content_type)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body)

    def delete(self, path: str, body: Any = None) -> Any:
        return self.request("DELETE", path, body)

    def get_or_none(self, path: str) -> Any:
        try:
            return self.get(path)
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def watch(self, path: str, resource_version: str, timeout_seconds: int = 240) -> Iterator[dict[str, Any]]:
        """Yields watch events ({"type", "object"}) until the server ends the watch."""
        params = {
            "watch": True,
            "resourceVersion": resource_version,
            "allowWatchBookmarks": True,
            "timeoutSeconds": timeout_seconds,
        }
        connection = self._connection(timeout=timeout_seconds + 30)
        try:
            connection.request("GET", url_path(path, params), headers={"Accept": "application/json"})
            response = connection.getresponse()
            if response.status >= 400:
                raise ApiError(response.status, "WATCH", path, response.read().decode(errors="replace"))
            while line := response.readline():
                if line.strip():
                    yield json.loads(line)
        finally:
            connection.close()


def pod_path(namespace: str, name: str = "") -> str:
    base = f"/api/v1/namespaces/{namespace}/pods"
    return f"{base}/{name}" if name else base
