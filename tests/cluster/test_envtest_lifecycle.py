"""The control plane's promises about itself: loopback only, and no process left behind."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from optikube_testcluster import ControlPlane, FakeNode
from optikube_testcluster.ports import Ports
from optikube_testcluster.processes import pid_alive
from optikube_testcluster.sockets import listening_sockets

pytestmark = pytest.mark.cluster


def wait_dead(pids: list[int], timeout: float = 10.0) -> list[int]:
    """Waits for pids to exit; returns those still alive after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if pid_alive(p)]


def test_every_listener_is_on_loopback(control_plane: ControlPlane) -> None:
    assert control_plane.ports is not None
    listeners = [s for pid in control_plane.pids for s in listening_sockets(pid)]
    assert {s.address for s in listeners} == {"127.0.0.1"}
    # Every port we allocated is really served, so the check above did look at all servers.
    assert set(control_plane.ports.all()) <= {s.port for s in listeners}


def test_stop_leaves_no_process_and_no_files(monkeypatch: pytest.MonkeyPatch) -> None:
    # The first ports handed out include one another process holds: etcd cannot bind it, and
    # the control plane must start over on fresh ports.
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    allocate = Ports.allocate
    handed_out: list[Ports] = []

    def allocate_once_taken() -> Ports:
        ports = allocate() if handed_out else dataclasses.replace(allocate(), etcd_client=taken)
        handed_out.append(ports)
        return ports

    monkeypatch.setattr(Ports, "allocate", staticmethod(allocate_once_taken))
    try:
        plane = ControlPlane(nodes=[FakeNode("solo-cpu"), FakeNode("solo-gpu", gpus=2)]).start()
    finally:
        squatter.close()
    assert len(handed_out) == 2 and plane.ports == handed_out[1]
    pids, root = plane.pids, plane.layout.root
    assert len(pids) == 5 and all(pid_alive(p) for p in pids)
    assert "solo-gpu" in plane.kubectl("get", "nodes", "-o", "name").stdout
    plane.stop()
    assert [p for p in pids if pid_alive(p)] == []
    assert not root.exists()


OWNER = textwrap.dedent(
    """
    import json, sys, time
    from optikube_testcluster import ControlPlane, FakeNode
    plane = ControlPlane(nodes=[FakeNode("owner-node")]).start()
    print(json.dumps({"pids": plane.pids, "root": str(plane.layout.root)}), flush=True)
    time.sleep(600)
    """
)


def test_children_die_when_their_owner_is_killed(tmp_path: Path) -> None:
    """SIGKILL leaves no chance to clean up: the kernel's parent-death signal must do it."""
    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        started = json.loads(owner.stdout.readline())
        assert all(pid_alive(p) for p in started["pids"])
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)
        assert wait_dead(started["pids"]) == []
    finally:
        owner.kill()
        owner.wait()
        if "started" in locals():
            shutil.rmtree(started["root"], ignore_errors=True)


def test_sigterm_to_the_owner_stops_the_control_plane() -> None:
    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        started = json.loads(owner.stdout.readline())
        owner.send_signal(signal.SIGTERM)
        assert owner.wait(timeout=30) == -signal.SIGTERM
        assert wait_dead(started["pids"], timeout=1) == []
        # The handler stopped it cleanly, so the temp dir is gone too.
        assert not Path(started["root"]).exists()
    finally:
        owner.kill()
        owner.wait()


def test_cluster_up_outlives_the_command_and_down_stops_it(tmp_path: Path) -> None:
    env = {**os.environ, "OPTIKUBE_ENVTEST_STATE_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "optikube_testcluster"]
    up = subprocess.run([*command, "up"], env=env, capture_output=True, text=True, timeout=300, check=True)
    last = up.stdout.strip().splitlines()[-1]
    assert last.startswith("export KUBECONFIG=/")
    kubeconfig = Path(last.removeprefix("export KUBECONFIG="))
    state = json.loads((tmp_path / "cluster.json").read_text())
    pids = [record["pid"] for record in state["processes"]]
    try:
        assert kubeconfig.is_file() and all(pid_alive(p) for p in pids)
        kubectl = Path(state["processes"][0]["binary"]).with_name("kubectl")
        nodes = subprocess.run(
            [str(kubectl), f"--kubeconfig={kubeconfig}", "get", "nodes", "-o", "name"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        assert "node/kwok-gpu-1" in nodes
        # A second `up` finds the running cluster instead of starting another.
        again = subprocess.run([*command, "up"], env=env, capture_output=True, text=True, check=True)
        assert again.stdout.strip().splitlines()[-1] == last
    finally:
        subprocess.run([*command, "down"], env=env, capture_output=True, text=True, check=True, timeout=60)
    assert wait_dead(pids, timeout=1) == []
    assert not kubeconfig.parent.exists()
    assert not (tmp_path / "cluster.json").exists()
