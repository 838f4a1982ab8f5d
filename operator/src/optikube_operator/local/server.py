"""The report endpoint of local mode (Contract 3): 127.0.0.1, a random port, bearer tokens.

Each run (trial or pipeline) gets its own random token, so a process can only report for the
run it was started for, as in Kubernetes where the token is bound to the trial's pod.
"""

from __future__ import annotations

import hmac
import json
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

REPORT_PATH = "/v1/report"


@dataclass(frozen=True)
class RunKey:
    """Which run a token belongs to: a trial number, or None for the final pipeline."""

    trial: int | None


Handler = Callable[[RunKey, dict[str, Any]], Awaitable[dict[str, Any]]]


class ReportServer:
    def __init__(self, handler: Handler, host: str = "127.0.0.1") -> None:
        self._handler = handler
        self._host = host
        self._tokens: dict[str, RunKey] = {}
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.requests = 0

    def issue_token(self, key: RunKey) -> str:
        token = secrets.token_urlsafe(32)
        self._tokens[token] = key
        return token

    def revoke(self, key: RunKey) -> None:
        for token in [token for token, owner in self._tokens.items() if owner == key]:
            del self._tokens[token]

    def _authenticate(self, request: web.Request) -> RunKey | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        presented = header.removeprefix("Bearer ").strip()
        for token, key in self._tokens.items():
            if hmac.compare_digest(token, presented):
                return key
        return None

    async def _report(self, request: web.Request) -> web.Response:
        self.requests += 1
        key = self._authenticate(request)
        if key is None:
            return web.json_response({"error": "missing or unknown bearer token"}, status=401)
        try:
            event = await request.json()
        except json.JSONDecodeError:
            return web.json_response({"error": "the body is not JSON"}, status=400)
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return web.json_response({"error": "an event is an object with a type"}, status=400)
        if event.get("trial") != key.trial:
            return web.json_response({"error": f"this token reports for trial {key.trial}"}, status=403)
        reply = await self._handler(key, event)
        return web.json_response(reply)

    async def start(self) -> str:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_post(REPORT_PATH, self._report)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind((self._host, 0))
        port = listener.getsockname()[1]
        await web.SockSite(self._runner, listener).start()
        self.url = f"http://{self._host}:{port}{REPORT_PATH}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
