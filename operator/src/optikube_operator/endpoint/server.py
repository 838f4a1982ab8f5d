"""The progress endpoint's HTTP side: authenticate, parse and authorize a progress message, then hand it on.

Every request ends in one outcome (counted by the optional `on_outcome` hook for metrics): a
request that is not a valid, authenticated progress for the caller's own run is refused with a 4xx
before anything is recorded. A client cannot hold the endpoint: its body must arrive within the read
timeout (else 408), an oversized one is refused unread (413), and both connections are closed.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from optikube_operator.api.progress import MAX_PROGRESS_BYTES, AnyProgress
from optikube_operator.endpoint.auth import Authenticator, RunKey
from optikube_operator.endpoint.body import decode_progress

log = logging.getLogger(__name__)

PROGRESS_PATH = "/v1/progress"
# A slow client must not hold a connection open forever: a progress message is a few KiB, sent at once.
READ_TIMEOUT_SECONDS = 10.0
# A connection that sends no complete request (idle, or headers trickled byte by byte) is closed
# after this long; trainers open a connection per progress, so nothing waits on a kept-alive one.
IDLE_TIMEOUT_SECONDS = 15.0
# Bodies above this are decoded off the progress loop, so one 1 MiB body does not stall the others.
INLINE_DECODE_BYTES = 16 * 1024
# Answers after which the rest of the connection is not worth reading. Such a connection is closed
# after at most LINGER_SECONDS more of discarding what the client still sends (so that a client
# busy sending still reads its 4xx instead of a reset), not aiohttp's default 10 s.
_CLOSING = frozenset({408, 413})
LINGER_SECONDS = 1.0


class ProgressRejectedError(Exception):
    """Raised by a handler for progress it will not record (finished or unknown trial...)."""

    def __init__(self, status: int, message: str, outcome: str) -> None:
        super().__init__(message)
        self.status = status
        self.outcome = outcome


Handler = Callable[[RunKey, AnyProgress], Awaitable[dict[str, Any]]]
OutcomeHook = Callable[[str], None]


def _refusal(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class ProgressEndpoint:
    def __init__(
        self,
        handler: Handler,
        authenticator: Authenticator,
        *,
        on_outcome: OutcomeHook | None = None,
        max_body_bytes: int = MAX_PROGRESS_BYTES,
        read_timeout: float = READ_TIMEOUT_SECONDS,
        idle_timeout: float = IDLE_TIMEOUT_SECONDS,
    ) -> None:
        self._handler = handler
        self._authenticator = authenticator
        self._on_outcome = on_outcome or (lambda outcome: None)
        self._max_body = max_body_bytes
        self._read_timeout = read_timeout
        self._idle_timeout = idle_timeout
        self._runner: web.AppRunner | None = None
        self.url = ""

    def application(self) -> web.Application:
        app = web.Application(client_max_size=self._max_body)
        app.router.add_post(PROGRESS_PATH, self._report)
        return app

    async def _report(self, request: web.Request) -> web.Response:
        status, outcome, body = await self._answer(request)
        self._on_outcome(outcome)
        response = web.json_response(body, status=status)
        if status in _CLOSING:
            response.force_close()
        return response

    async def _answer(self, request: web.Request) -> tuple[int, str, dict[str, Any]]:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        if not token:
            return 401, "unauthenticated", {"error": "a bearer token is required"}
        try:
            caller = await self._authenticator.authenticate(token)
        except Exception:  # the cluster cannot verify the token now: the trainer retries on 5xx
            log.exception("cannot authenticate a report")
            return 503, "unavailable", {"error": "the token cannot be verified now; retry"}
        if caller is None:
            return 401, "unauthenticated", {"error": "unknown, expired or foreign token"}
        if request.content_length is not None and request.content_length > self._max_body:
            return 413, "tooLarge", {"error": f"a progress message is at most {self._max_body} bytes"}
        try:
            raw = await asyncio.wait_for(request.read(), self._read_timeout)
        except web.HTTPRequestEntityTooLarge:
            return 413, "tooLarge", {"error": f"a progress message is at most {self._max_body} bytes"}
        except TimeoutError:
            return 408, "timeout", {"error": "the request body was not sent in time"}
        try:
            if len(raw) > INLINE_DECODE_BYTES:
                progress = await asyncio.to_thread(decode_progress, raw)
            else:
                progress = decode_progress(raw)
        except ValueError as error:  # BodyError, ProgressError: both name the problem
            return 400, "invalid", {"error": str(error)}
        if progress.trial != caller.run.trial:
            which = "the pipeline" if caller.run.trial is None else f"trial {caller.run.trial}"
            return 403, "forbidden", {"error": f"this token sends progress for {which} only"}
        try:
            reply = await self._handler(caller.run, progress)
        except ProgressRejectedError as rejected:
            return rejected.status, rejected.outcome, {"error": str(rejected)}
        except Exception:  # nothing was recorded (the write failed): the trainer retries on 5xx
            log.exception("cannot record a %s progress of %s", progress.type, caller.run)
            return 503, "unavailable", {"error": "the progress cannot be recorded now; retry"}
        return 200, "accepted", reply

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (port 0 picks a free one); returns the progress URL."""
        self._runner = web.AppRunner(
            self.application(),
            access_log=None,
            keepalive_timeout=self._idle_timeout,
            lingering_time=LINGER_SECONDS,
        )
        await self._runner.setup()
        listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        bound = listener.getsockname()[1]
        await web.SockSite(self._runner, listener).start()
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{bound}{PROGRESS_PATH}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
