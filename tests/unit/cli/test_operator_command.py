"""`optikube operator` as a process: what it loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# Runs the command with asyncio.run replaced, so that everything the operator imports is loaded and
# nothing connects anywhere; then says which of kopf and the kubernetes client the process holds.
PROBE = """
import asyncio, sys
asyncio.run = lambda coroutine: coroutine.close()
from optikube_operator.cli.operator import operator
operator.main(["--kubeconfig", sys.argv[1]], standalone_mode=False)
print("kopf" in sys.modules, sys.modules.get("kubernetes") is not None)
"""


def test_the_operator_process_never_loads_the_kubernetes_client(tmp_path: Path) -> None:
    """kopf imports the kubernetes client when it is installed (it is, for the test control plane and
    the tests) only to recognize its model classes and for logins the operator does not use: 9 MiB
    of the operator's memory (docs/benchmarks.md, "Operator at scale")."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    command = [sys.executable, "-c", PROBE, str(kubeconfig)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split() == ["True", "False"], done.stderr
