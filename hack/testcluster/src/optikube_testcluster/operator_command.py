"""The command line of `optikube operator` run against a test cluster from this Python."""

from __future__ import annotations

import sys
from pathlib import Path


def operator_argv(kubeconfig: Path, progress_port: int, metrics_port: int, *flags: str) -> list[str]:
    """The operator with this kubeconfig, its progress endpoint and /metrics on 127.0.0.1, and
    ``flags`` (`--namespace=...`, `--trainer-defaults=...`, ...)."""
    return [
        sys.executable,
        "-m",
        "optikube_operator",
        "operator",
        f"--kubeconfig={kubeconfig}",
        f"--progress-bind=127.0.0.1:{progress_port}",
        f"--metrics-bind=127.0.0.1:{metrics_port}",
        *flags,
    ]
