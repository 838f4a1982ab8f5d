"""Nothing of a process node outlives its agent: no process, network namespace, mount or veth,
whether the agent is stopped (SIGTERM), killed (SIGKILL), or the whole cluster goes down."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from optikube_testcluster import GPU_PRESENT_LABEL, GPU_RESOURCE, ControlPlane, ProcessNodeSpec
from optikube_testcluster.processes import pid_alive, spawn
from optikube_testcluster.processnode.command import agent_argv
from optikube_testcluster.processnode.testing import process_pod, processes_with, wait_for_pod

pytestmark = pytest.mark.cluster


def descendants(root: int) -> list[int]:
    """Every process below root, found through /proc/*/status PPid."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(status.split("PPid:")[1].split()[0])
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def namespace_ids(pids: list[int], kind: str) -> set[str]:
    ids = set()
    for pid in pids:
        try:
            ids.add(str(Path(f"/proc/{pid}/ns/{kind}").readlink()))
        except OSError:
            continue
    return ids - {str(Path(f"/proc/self/ns/{kind}").readlink())}


def holders(ids: set[str], kind: str) -> list[int]:
    """Processes that are in one of the namespaces ids (of kind net or mnt)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str((entry / "ns" / kind).readlink()) in ids:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@dataclass
class Footprint:
    pids: list[int]
    netns: set[str]
    mntns: set[str]
    state_dir: Path


def footprint(agent_pid: int, state_dir: Path) -> Footprint:
    pids = descendants(agent_pid)
    return Footprint(pids, namespace_ids(pids, "net"), namespace_ids(pids, "mnt"), state_dir)


def assert_nothing_left(trace: Footprint, markers: list[str], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(pid_alive(p) for p in trace.pids):
        time.sleep(0.1)
    assert [p for p in trace.pids if pid_alive(p)] == []
    assert all(processes_with(marker) == [] for marker in markers)
    assert holders(trace.netns, "net") == [] and holders(trace.mntns, "mnt") == []
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(trace.state_dir) not in mounts and "nsfs" not in mounts
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert "okbr0" not in links and " vp" not in links


def running_pod(core: Any, namespace: str, node: str, marker: str) -> None:
    """A pod on node with a memory-backed emptyDir and two processes, one ignoring SIGTERM."""
    stubborn = (
        f"import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)  # {marker}"
    )
    containers: list[dict[str, Any]] = [
        {
            "name": "stubborn",
            "command": ["python", "-c", stubborn],
            "volumeMounts": [{"name": "m", "mountPath": "/m"}],
        },
        {"name": "plain", "command": ["sh", "-c", f"sleep 600; echo {marker}"]},
    ]
    pod = process_pod(
        "resident",
        containers,
        nodeSelector={"kubernetes.io/hostname": node},
        volumes=[{"name": "m", "emptyDir": {"medium": "Memory"}}],
    )
    core.create_namespaced_pod(namespace, pod)
    wait_for_pod(core, namespace, "resident", phases=("Running",), timeout=60)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_stopped_or_killed_agent_leaves_nothing_behind(
    control_plane: ControlPlane, core: Any, tmp_path: Path, how: signal.Signals
) -> None:
    # A second agent, with a node of its own, next to the session's one.
    node = f"process-cleanup-{how.name.lower()}"
    spec = ProcessNodeSpec(node, gpus=2, pod_cidr="10.244.250.0/24", labels={"purpose": "cleanup-test"})
    state_dir = tmp_path / "state"
    argv = agent_argv(control_plane.layout, control_plane.server, [spec], state_dir=state_dir)
    agent = spawn(argv, tmp_path / "agent.log")
    namespace = control_plane.create_namespace(f"pnc-{uuid.uuid4().hex[:8]}")
    marker = f"resident-{uuid.uuid4().hex}"
    try:
        deadline = time.monotonic() + 60
        while not _ready(core, node) and time.monotonic() < deadline:
            assert agent.poll() is None, (tmp_path / "agent.log").read_text()
            time.sleep(0.2)
        registered = core.read_node(node)
        assert registered.status.allocatable[GPU_RESOURCE] == "2"
        assert registered.metadata.labels[GPU_PRESENT_LABEL] == "true"
        assert registered.metadata.labels["nvidia.com/gpu.count"] == "2"
        running_pod(core, namespace, node, marker)
        trace = footprint(agent.pid, state_dir)
        assert len(processes_with(marker)) == 2
        assert trace.netns and trace.mntns, "the pod's and the node's namespaces"

        agent.send_signal(how)
        agent.wait(timeout=20)
        if how == signal.SIGTERM:
            assert agent.returncode == 0, (tmp_path / "agent.log").read_text()
        assert_nothing_left(trace, [marker])
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        core.delete_node(node)


def _ready(core: Any, node: str) -> bool:
    try:
        found = core.read_node(node)
    except client.exceptions.ApiException:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in found.status.conditions or [])


@pytest.mark.slow
def test_cluster_down_stops_the_process_node_and_leaves_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "OPTIKUBE_ENVTEST_STATE_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "optikube_testcluster"]
    subprocess.run([*command, "up"], env=env, capture_output=True, text=True, timeout=300, check=True)
    state = json.loads((tmp_path / "cluster.json").read_text())
    root = Path(state["root"])
    marker = f"resident-{uuid.uuid4().hex}"
    try:
        [agent] = [p["pid"] for p in state["processes"] if p["name"] == "process-node"]
        api = config.new_client_from_config(state["kubeconfig"])
        core: Any = client.CoreV1Api(api)
        while True:
            try:
                core.read_namespaced_service_account("default", "default")
                break
            except client.exceptions.ApiException:
                time.sleep(0.2)
        running_pod(core, "default", "process-0", marker)
        trace = footprint(agent, root / "process-nodes")
        assert trace.pids and trace.netns and trace.mntns
        api.close()
    finally:
        subprocess.run([*command, "down"], env=env, capture_output=True, text=True, timeout=120, check=True)
    assert_nothing_left(trace, [marker])
    assert not root.exists()
    shutil.rmtree(tmp_path, ignore_errors=True)
