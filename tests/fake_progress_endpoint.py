"""A progress endpoint like the operator's, on 127.0.0.1, for the trainer's tests in and out of
torchrun: it records every event with its headers and answers with a prune decision and, when
asked to, the durable step an operator that writes behind its replies would name."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ProgressEndpoint:
    """What the endpoint received; it answers `status`, and prune from the `prune_after`-th
    intermediate event on; with `durable_lag`, `durableStep` that many steps behind the step
    it answers. Each may be changed while it serves."""

    url: str = ""
    prune_after: int | None = None
    status: int = 200
    durable_lag: int | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    @property
    def authorizations(self) -> list[str]:
        return [h.get("Authorization", "") for h in self.headers]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]


@contextmanager
def progress_endpoint(prune_after: int | None = None) -> Iterator[ProgressEndpoint]:
    state = ProgressEndpoint(prune_after=prune_after)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                state.events.append(event)
                state.headers.append(dict(self.headers))
                seen = len(state.of_type("intermediate"))
            limit = state.prune_after
            prune = event.get("type") == "intermediate" and limit is not None and seen >= limit
            reply: dict[str, Any] = {"prune": prune}
            lag = state.durable_lag
            if event.get("type") == "intermediate" and lag is not None and event["step"] - lag >= 0:
                reply["durableStep"] = event["step"] - lag
            body = json.dumps(reply).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1/progress"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
