"""Launching real torchrun process groups from tests, on the loopback interface only."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
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
