"""Launching real torchrun process groups from tests, on the loopback interface only."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def torchrun(
    args: Sequence[str],
    *,
    nproc: int,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``torchrun --nproc-per-node nproc <args>`` on 127.0.0.1 (gloo on the loopback device)."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=1",
        f"--nproc-per-node={nproc}",
        "--master-addr=127.0.0.1",
        f"--master-port={free_port()}",
        *args,
    ]
    full_env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "GLOO_SOCKET_IFNAME": "lo",
        "CUDA_VISIBLE_DEVICES": "",
        **(env or {}),
    }
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=cwd, check=False
    )


@dataclass
class ProgressEndpoint:
    """A progress endpoint like the operator's: records events, answers prune after N intermediate events."""

    url: str = ""
    prune_after: int | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]


@contextmanager
def report_endpoint(prune_after: int | None = None) -> Iterator[ProgressEndpoint]:
    state = ProgressEndpoint(prune_after=prune_after)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                state.events.append(event)
                state.authorizations.append(self.headers.get("Authorization", ""))
                seen = len(state.of_type("intermediate"))
            prune = event.get("type") == "intermediate" and prune_after is not None and seen >= prune_after
            body = json.dumps({"prune": prune}).encode()
            self.send_response(200)
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


def write_run_config(
    path: Path, spec: dict[str, Any], *, output_dir: Path, stage: str = "trial", trial: int | None = 0
) -> Path:
    config: dict[str, Any] = {
        "apiVersion": "optikube.io/v1alpha1",
        "kind": "RunConfig",
        "stage": stage,
        "job": {"name": "test", "namespace": "default", "uid": "uid-1"},
        "trial": {"number": trial, "params": {}} if stage == "trial" else None,
        "spec": spec,
        "outputDir": str(output_dir),
        "resumeFrom": None,
    }
    path.write_text(json.dumps(config))
    return path
