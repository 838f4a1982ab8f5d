"""What every pod worker shares with the agent: its clients, its children, its network, and
read access to the agent's caches."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optikube_testcluster.processnode.netns import NodeNetwork
from optikube_testcluster.processnode.paths import StateLayout
from optikube_testcluster.processnode.rest import RestClient
from optikube_testcluster.processnode.spawner import Spawner
from optikube_testcluster.processnode.spec import ProcessNodeSpec


@dataclass(frozen=True)
class AgentContext:
    rest: RestClient
    spawner: Spawner
    network: NodeNetwork
    layout: StateLayout
    nodes: dict[str, ProcessNodeSpec]
    # The project's venv bin directory, first on every container's PATH.
    path_prefix: str
    services: Callable[[], list[dict[str, Any]]]
    # (namespace, claim) -> the host directory of its bound volume, None while unbound
    claim_path: Callable[[str, str], Path | None]
    # (pod, pod IP) -> the pod's hosts file
    hosts_for: Callable[[dict[str, Any], str], str]
    probes: ThreadPoolExecutor
    restart_backoff: float = 10.0
    # Where the venv and its interpreter really are: non-root containers must reach them.
    image_paths: tuple[str, ...] = ()
