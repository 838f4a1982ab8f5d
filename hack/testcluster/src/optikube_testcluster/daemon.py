"""A control plane that outlives the command that started it (`make cluster-up`/`cluster-down`).

Its processes run in their own sessions; a per-user state file records their pids, binaries and
the kubeconfig, so `down` can stop exactly those processes and remove their files.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from optikube_testcluster import processes
from optikube_testcluster.controlplane import Component, ControlPlane, stop_tiers
from optikube_testcluster.processnode.spec import ProcessNodeSpec
from optikube_testcluster.realnode.node import teardown
from optikube_testcluster.realnode.spec import RealNodeSpec

STATE_DIR_ENV = "OPTIKUBE_ENVTEST_STATE_DIR"
# The cluster's process node: tainted like the test fixture's, so only pods that ask run for real.
DAEMON_PROCESS_NODES = (ProcessNodeSpec("process-0", taint=True),)
# `up` with a real node (OPTIKUBE_REAL_NODE=1, or `make node-demo`): real-0, tainted as well
REAL_NODE_ENV = "OPTIKUBE_REAL_NODE"
DAEMON_REAL_NODE = "real-0"


def state_dir(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get(STATE_DIR_ENV):
        return Path(env[STATE_DIR_ENV])
    base = Path(env["XDG_STATE_HOME"]) if env.get("XDG_STATE_HOME") else Path.home() / ".local" / "state"
    return base / "optikube" / "testcluster"


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int
    binary: str


@dataclass(frozen=True)
class RealNodeRecord:
    name: str
    cgroup: str  # its subtree, what `down` sweeps
    directory: str


@dataclass(frozen=True)
class ClusterState:
    root: str
    kubeconfig: str
    server: str
    processes: list[ProcessRecord]
    real_nodes: list[RealNodeRecord] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ClusterState:
        data = json.loads(text)
        return cls(
            root=data["root"],
            kubeconfig=data["kubeconfig"],
            server=data["server"],
            processes=[ProcessRecord(**record) for record in data["processes"]],
            real_nodes=[RealNodeRecord(**record) for record in data.get("real_nodes", [])],
        )

    def alive(self) -> list[ProcessRecord]:
        return [r for r in self.processes if processes.pid_runs(r.pid, Path(r.binary))]


def state_file(directory: Path) -> Path:
    return directory / "cluster.json"


def load_state(directory: Path) -> ClusterState | None:
    path = state_file(directory)
    return ClusterState.from_json(path.read_text()) if path.exists() else None


def export_line(kubeconfig: str) -> str:
    return f"export KUBECONFIG={kubeconfig}"


def wants_real_node(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get(REAL_NODE_ENV, "") not in ("", "0")


class ClusterMismatchError(RuntimeError):
    """A cluster without the real node asked for is running."""


def up(directory: Path, real_nodes: Sequence[RealNodeSpec] = ()) -> ClusterState:
    """Starts a detached control plane, or returns the one already running (which must have the
    real nodes asked for: a running cluster is never replaced behind its user's back)."""
    existing = load_state(directory)
    if existing is not None:
        if len(existing.alive()) == len(existing.processes):
            have = {node.name for node in existing.real_nodes}
            if not {spec.name for spec in real_nodes} <= have:
                raise ClusterMismatchError(
                    f"the running cluster ({existing.server}) has no real node {real_nodes[0].name}:"
                    " stop it first (make cluster-down)"
                )
            return existing
        down(directory)  # a half-dead leftover: clear it before starting afresh
    plane = ControlPlane(detached=True, process_nodes=DAEMON_PROCESS_NODES, real_nodes=real_nodes).start()
    state = ClusterState(
        root=str(plane.layout.root),
        kubeconfig=str(plane.kubeconfig),
        server=plane.server,
        processes=[ProcessRecord(c.name, c.pid, str(c.binary)) for c in plane.components],
        real_nodes=[
            RealNodeRecord(spec.name, cgroup, str(plane.real_node_paths(spec.name).root))
            for spec, cgroup in zip(
                plane.real_node_specs, plane.real_nodes.cgroups if plane.real_nodes else [], strict=True
            )
        ],
    )
    directory.mkdir(parents=True, exist_ok=True)
    state_file(directory).write_text(state.to_json())
    return state


def attach(directory: Path, name: str, argv: list[str], log: Path) -> int:
    """Start ``argv`` detached, as one more process of the running cluster: `down` stops it first
    (before the apiserver) with the other clients. Returns its pid."""
    state = load_state(directory)
    if state is None:
        raise RuntimeError("no cluster is running: start one with make cluster-up")
    process = processes.spawn(argv, log, detached=True)
    record = ProcessRecord(name, process.pid, str(Path(argv[0]).resolve()))
    attached = ClusterState(
        state.root, state.kubeconfig, state.server, [*state.processes, record], state.real_nodes
    )
    state_file(directory).write_text(attached.to_json())
    return process.pid


def down(directory: Path) -> ClusterState | None:
    """Stops the recorded processes (only if they still run the recorded binaries) and removes
    the cluster's files; returns what was stopped, or None when nothing was recorded."""
    state = load_state(directory)
    if state is None:
        return None
    for node in state.real_nodes:  # first: their processes are found by cgroup, not by pid
        teardown(node.cgroup, Path(node.directory))
    running = state.alive()
    components = [Component(r.name, Path(r.binary), r.pid) for r in running]
    for tier in stop_tiers(components):
        processes.terminate_all([c.pid for c in tier], grace_seconds=5.0)
    shutil.rmtree(state.root, ignore_errors=True)
    state_file(directory).unlink(missing_ok=True)
    return state
