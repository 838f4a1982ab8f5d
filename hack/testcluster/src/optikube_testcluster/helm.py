"""Running the helm binary of the test cluster's tools against one of its clusters."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml


class HelmError(RuntimeError):
    """helm exited non-zero; the message has the command and its output."""


def run_helm(
    binary: Path,
    kubeconfig: str | Path,
    *args: str,
    values: dict[str, Any] | None = None,
    timeout: float = 900,
) -> str:
    """`helm --kubeconfig=K ARGS...` (values, when given, on stdin as `--values=-`); its stdout."""
    argv = [str(binary), f"--kubeconfig={kubeconfig}", *args]
    if values is not None:
        argv.append("--values=-")
    result = subprocess.run(
        argv,
        input=yaml.safe_dump(values) if values else None,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise HelmError(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout
