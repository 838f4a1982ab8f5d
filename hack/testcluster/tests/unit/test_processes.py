from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from optikube_testcluster import daemon, processes
from optikube_testcluster.assets import ASSETS_ENV, BINARIES, AssetsError, find_assets, find_project_root
from optikube_testcluster.controlplane import Component, stop_tiers
from optikube_testcluster.ports import LOWEST, Ports, ephemeral_start, free_ports
from optikube_testcluster.sockets import decode_address, listening_sockets, parse_listeners


def test_free_ports_are_distinct_and_bindable_on_loopback() -> None:
    ports = free_ports(6)
    assert len(set(ports)) == 6
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
    assert len(set(Ports.allocate().all())) == 6


def test_free_ports_are_below_the_range_outgoing_connections_take_theirs_from() -> None:
    start = ephemeral_start()
    assert start > LOWEST
    assert all(LOWEST <= port < start for port in free_ports(20))


def test_the_ephemeral_range_is_read_from_the_kernel_and_defaults_when_unreadable(tmp_path: Path) -> None:
    configured = tmp_path / "ip_local_port_range"
    configured.write_text("40000\t60999\n")
    assert ephemeral_start(configured) == 40000
    assert ephemeral_start(tmp_path / "missing") == 32768


def test_decode_proc_net_addresses() -> None:
    assert decode_address("0100007F:1F90") == ("127.0.0.1", 8080)
    assert decode_address("00000000:0016") == ("0.0.0.0", 22)
    assert decode_address("00000000000000000000000001000000:0050") == ("::1", 80)
    table = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 111 1\n"
        "   1: 0100007F:1F91 0100007F:9999 01 00000000:00000000 00:00000000 00000000 0 0 222 1\n"
    )
    listeners = parse_listeners(table)
    assert [(s.address, s.port, s.inode) for s in listeners] == [("127.0.0.1", 8080, 111)]


def test_listening_sockets_sees_a_real_listener() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert ("127.0.0.1", port) in {(s.address, s.port) for s in listening_sockets(os.getpid())}


def test_terminate_all_kills_the_whole_process_group(tmp_path: Path) -> None:
    # The shell's background child is a grandchild of ours: only a group kill reaches it.
    log = tmp_path / "log"
    child = processes.spawn(["sh", "-c", "sleep 60 & echo $!; wait"], log)
    deadline = time.monotonic() + 5
    while not log.read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.02)
    grandchild = int(log.read_text().split()[0])
    assert processes.pid_alive(grandchild)
    processes.terminate_all([child.pid], grace_seconds=5, reap=child.poll)
    child.wait(timeout=5)
    deadline = time.monotonic() + 5
    while processes.pid_alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not processes.pid_alive(grandchild)


def test_spawned_child_dies_with_its_parent(tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from optikube_testcluster import processes;"
        "p = processes.spawn(['sleep', '60'], Path(sys.argv[1])); print(p.pid, flush=True);"
        "import time; time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "log")], stdout=subprocess.PIPE)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert processes.pid_alive(child)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 5
    while processes.pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not processes.pid_alive(child)


def test_pid_runs_checks_the_executable() -> None:
    assert processes.pid_runs(os.getpid(), Path(sys.executable))
    assert not processes.pid_runs(os.getpid(), Path("/bin/sh"))


def test_stop_order_is_clients_then_apiserver_then_etcd() -> None:
    names = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]
    components = [Component(name, Path(name), i) for i, name in enumerate(names)]
    tiers = [[c.name for c in tier] for tier in stop_tiers(components)]
    assert tiers == [["kube-controller-manager", "kube-scheduler", "kwok"], ["kube-apiserver"], ["etcd"]]


def test_assets_from_the_environment(tmp_path: Path) -> None:
    for name in BINARIES[:-1]:
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    with pytest.raises(AssetsError, match=BINARIES[-1]):
        find_assets({ASSETS_ENV: str(tmp_path)})
    (tmp_path / BINARIES[-1]).write_text("#!/bin/sh\n")
    (tmp_path / BINARIES[-1]).chmod(0o755)
    assert find_assets({ASSETS_ENV: str(tmp_path)}) == tmp_path.resolve()


def test_project_root_is_found_from_a_subdirectory() -> None:
    here = Path(__file__).resolve()
    root = find_project_root(here.parent)
    assert root is not None and (root / "hack" / "build-controlplane.sh").is_file()


def test_state_round_trip_and_location(tmp_path: Path) -> None:
    state = daemon.ClusterState(
        root="/r",
        kubeconfig="/r/kubeconfig",
        server="https://127.0.0.1:1",
        processes=[daemon.ProcessRecord("etcd", 123, "/bin/etcd")],
    )
    assert daemon.ClusterState.from_json(state.to_json()) == state
    assert json.loads(state.to_json())["processes"][0]["pid"] == 123
    assert daemon.state_dir({daemon.STATE_DIR_ENV: str(tmp_path)}) == tmp_path
    assert daemon.state_dir({"XDG_STATE_HOME": "/s"}) == Path("/s/optikube/testcluster")
    assert daemon.export_line("/k") == "export KUBECONFIG=/k"
    assert daemon.down(tmp_path) is None
