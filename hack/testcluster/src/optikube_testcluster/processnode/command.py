"""The process-node agent's command line, as the control plane starts it: a pure function."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from optikube_testcluster.layout import PROCESS_NODE, Layout
from optikube_testcluster.processnode.spec import ProcessNodeSpec

AGENT_MODULE = "optikube_testcluster.processnode"


def agent_argv(
    layout: Layout,
    server: str,
    nodes: Sequence[ProcessNodeSpec],
    python: str = sys.executable,
    path_prefix: Path | None = None,
    state_dir: Path | None = None,
) -> list[str]:
    """path_prefix: the bin directory put first on containers' PATH (default: this venv's);
    state_dir: the agent's files (default: the control plane's process-nodes/)."""
    argv = [
        python,
        "-m",
        AGENT_MODULE,
        f"--server={server}",
        f"--ca-file={layout.ca_cert}",
        f"--cert-file={layout.client_cert(PROCESS_NODE)}",
        f"--key-file={layout.client_key(PROCESS_NODE)}",
        f"--state-dir={state_dir or layout.process_nodes}",
        f"--path-prefix={path_prefix or Path(sys.prefix) / 'bin'}",
    ]
    return argv + [f"--node={node.to_json()}" for node in nodes]
