"""Pure parts of the process node's kubelet: pod phases and statuses, Node and Lease objects,
the provisioner's PersistentVolumes, probe bookkeeping, the namespace runtime's path helpers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from optikube_testcluster.layout import Layout
from optikube_testcluster.processnode.command import agent_argv
from optikube_testcluster.processnode.nodes import lease_manifest, node_manifest, node_status
from optikube_testcluster.processnode.nsinit import host_submounts, resolve_in_root
from optikube_testcluster.processnode.podstatus import (
    RUNNING,
    TERMINATED,
    WAITING,
    ContainerState,
    PodFacts,
    pod_phase,
    pod_status,
    termination_message,
)
from optikube_testcluster.processnode.probing import ExecTarget, ProbeTracker, exec_argv, resolve_port
from optikube_testcluster.processnode.provisioner import (
    SELECTED_NODE,
    bound_path,
    persistent_volume,
    storage_class,
    wants_volume,
)
from optikube_testcluster.processnode.spec import PROCESS_NODE_TAINT, ProcessNodeSpec

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def state(kind: str, exit_code: int | None = None, ready: bool = False, **extra: Any) -> ContainerState:
    c = ContainerState("c", "img", state=kind, exit_code=exit_code, ready=ready, **extra)
    if kind != WAITING:
        c.started_at = NOW
    return c


@pytest.mark.parametrize(
    ("policy", "init", "containers", "phase"),
    [
        ("Never", [], [state(WAITING)], "Pending"),
        ("Never", [state(RUNNING)], [state(WAITING)], "Pending"),
        ("Never", [state(TERMINATED, 1)], [state(WAITING)], "Failed"),
        ("OnFailure", [state(TERMINATED, 1)], [state(WAITING)], "Pending"),
        ("Never", [state(TERMINATED, 0)], [state(RUNNING), state(TERMINATED, 0)], "Running"),
        ("Never", [], [state(TERMINATED, 0), state(TERMINATED, 0)], "Succeeded"),
        ("Never", [], [state(TERMINATED, 0), state(TERMINATED, 137)], "Failed"),
        ("OnFailure", [], [state(TERMINATED, 2)], "Running"),
        ("OnFailure", [], [state(TERMINATED, 0)], "Succeeded"),
        ("Always", [], [state(TERMINATED, 0)], "Running"),
        ("Always", [], [state(WAITING, last_state={"terminated": {"exitCode": 1}})], "Running"),
    ],
)
def test_pod_phase(
    policy: str, init: list[ContainerState], containers: list[ContainerState], phase: str
) -> None:
    assert pod_phase(policy, init, containers) == phase


def test_pod_status_conditions_keep_their_transition_times() -> None:
    pod = {
        "metadata": {"uid": "u"},
        "spec": {"restartPolicy": "Never"},
        "status": {
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": "t0"},
                {"type": "Ready", "status": "True", "lastTransitionTime": "t1"},
            ]
        },
    }
    facts = PodFacts("10.244.128.2", "10.244.128.1", NOW, sandbox_ready=True)
    running = pod_status(pod, facts, [], [state(RUNNING, ready=True)], NOW)
    conditions = {c["type"]: c for c in running["conditions"]}
    assert running["phase"] == "Running" and running["podIP"] == "10.244.128.2"
    assert conditions["PodScheduled"]["lastTransitionTime"] == "t0"
    assert conditions["Ready"] == {
        "type": "Ready",
        "status": "True",
        "lastProbeTime": None,
        "lastTransitionTime": "t1",
    }
    assert running["containerStatuses"][0]["state"] == {"running": {"startedAt": "2030-01-01T00:00:00Z"}}
    unready = pod_status(pod, facts, [], [state(RUNNING, ready=False)], NOW)
    ready = {c["type"]: c for c in unready["conditions"]}["Ready"]
    assert ready["status"] == "False" and ready["message"] == "containers with unready status: [c]"
    done = state(TERMINATED, 3, reason="Error", message='{"x": 1}', finished_at=NOW)
    failed = pod_status(pod, facts, [], [done], NOW)
    assert failed["phase"] == "Failed"
    assert failed["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
    assert failed["containerStatuses"][0]["state"]["terminated"]["message"] == '{"x": 1}'
    assert {c["type"]: c for c in failed["conditions"]}["Ready"]["reason"] == "PodCompleted"


def test_termination_message_policy() -> None:
    assert termination_message('{"a": 1}', "log", "File", 1) == '{"a": 1}'
    assert termination_message("", "one\ntwo\n", "File", 1) == ""
    assert termination_message("", "one\ntwo\n", "FallbackToLogsOnError", 1) == "one\ntwo"
    assert termination_message("", "one\n", "FallbackToLogsOnError", 0) == ""
    lines = "".join(f"line {i}\n" for i in range(200))
    assert termination_message("", lines, "FallbackToLogsOnError", 2).splitlines()[0] == "line 120"
    assert len(termination_message("x" * 5000, "", "File", 0)) == 4096


def test_node_lease_and_status() -> None:
    spec = ProcessNodeSpec("process-0", gpus=2, pod_cidr="10.244.128.0/24")
    node = node_manifest(spec)
    labels = node["metadata"]["labels"]
    assert labels["optikube.io/process-node"] == "true" and labels["nvidia.com/gpu.present"] == "true"
    assert "annotations" not in node["metadata"]  # kwok must not manage it
    assert node["spec"]["taints"] == [PROCESS_NODE_TAINT] and node["spec"]["podCIDR"] == "10.244.128.0/24"
    assert (
        "taints" not in node_manifest(ProcessNodeSpec("p", taint=False, pod_cidr="10.244.129.0/24"))["spec"]
    )
    status = node_status(spec, "v1.36.3", NOW, NOW)
    assert status["allocatable"]["nvidia.com/gpu"] == "2"
    assert {"type": "InternalIP", "address": "10.244.128.1"} in status["addresses"]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
    lease = lease_manifest("process-0", "uid-1", NOW)
    assert lease["metadata"]["namespace"] == "kube-node-lease"
    assert lease["spec"]["renewTime"] == "2030-01-01T00:00:00.000000Z"


def test_provisioner_volume_is_pinned_to_the_selected_node(tmp_path: Path) -> None:
    claim: dict[str, Any] = {
        "metadata": {
            "name": "models",
            "namespace": "ns",
            "uid": "c-1",
            "annotations": {SELECTED_NODE: "process-0"},
        },
        "spec": {
            "storageClassName": "optikube-local",
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "2Gi"}},
        },
        "status": {"phase": "Pending"},
    }
    assert wants_volume(claim)
    assert not wants_volume({**claim, "spec": {**claim["spec"], "storageClassName": "other"}})
    assert not wants_volume({**claim, "metadata": {**claim["metadata"], "annotations": {}}})
    volume = persistent_volume(claim, tmp_path / "models")
    assert volume["metadata"]["name"] == "pvc-c-1"
    assert volume["spec"]["capacity"] == {"storage": "2Gi"} and volume["spec"]["claimRef"]["uid"] == "c-1"
    term = volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert term == {"key": "kubernetes.io/hostname", "operator": "In", "values": ["process-0"]}
    bound = {**claim, "spec": {**claim["spec"], "volumeName": "pvc-c-1"}}
    assert bound_path(bound, [volume]) == tmp_path / "models" and bound_path(claim, [volume]) is None
    assert storage_class()["metadata"]["annotations"] == {
        "storageclass.kubernetes.io/is-default-class": "true"
    }


def test_probe_tracker_thresholds_and_named_ports() -> None:
    tracker = ProbeTracker(
        {"periodSeconds": 2, "initialDelaySeconds": 5, "failureThreshold": 2}, started=100.0
    )
    assert not tracker.due(104.9) and tracker.due(105.0)
    tracker.record(True, 105.0)
    assert tracker.passed and tracker.next_due == 107.0
    tracker.record(False, 107.0)
    assert tracker.passed and not tracker.failed()
    tracker.record(False, 109.0)
    assert not tracker.passed and tracker.failed()
    container = {"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}
    assert resolve_port("http", container) == 8080 and resolve_port(9090, container) == 9090
    with pytest.raises(ValueError, match="metrics"):
        resolve_port("metrics", container)
    argv = exec_argv(ExecTarget(123, 1000, 3000, {"A": "1"}), ["cat", "/tmp/ready"])
    assert argv[:2] == ["nsenter", "--target=123"] and argv[-3:] == ["--", "cat", "/tmp/ready"]
    assert {"--mount", "--net", "--pid", "--root", "--wd", "--setuid=1000", "--setgid=3000"} <= set(argv)


def test_resolve_in_root_keeps_symlinks_inside(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "run").mkdir(parents=True)
    (root / "var").mkdir()
    (root / "var" / "run").symlink_to("/run")  # absolute, as on real systems
    (root / "var" / "etc").symlink_to("../etc")
    assert resolve_in_root(str(root), "/var/run/secrets") == str(root / "run" / "secrets")
    assert resolve_in_root(str(root), "/var/etc/x") == str(root / "etc" / "x")
    assert resolve_in_root(str(root), "/../../escape") == str(root / "escape")
    (root / "loop").symlink_to("loop")
    with pytest.raises(OSError, match="too many"):
        resolve_in_root(str(root), "/loop/x")


def test_host_submounts_skips_private_and_nested_mounts() -> None:
    info = "\n".join(
        f"1 0 0:1 / {point} rw - fs src rw"
        for point in [
            "/",
            "/proc",
            "/dev/shm",
            "/sys/fs/cgroup",
            "/tmp/x",
            "/data",
            "/data/inner",
            "/state",
            "/state/pods",
        ]
    )
    assert host_submounts(info, exclude=["/state"]) == ["/data"]


def test_agent_command_line(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    argv = agent_argv(
        layout, "https://127.0.0.1:6443", [ProcessNodeSpec("p", pod_cidr="10.244.128.0/24")], python="py"
    )
    assert argv[:3] == ["py", "-m", "optikube_testcluster.processnode"]
    assert f"--state-dir={tmp_path / 'process-nodes'}" in argv
    assert f"--cert-file={tmp_path / 'pki' / 'process-node.crt'}" in argv
    assert [a for a in argv if a.startswith("--node=")] == [
        f"--node={ProcessNodeSpec('p', pod_cidr='10.244.128.0/24').to_json()}"
    ]


def test_cli_prints_claim_and_log_paths_of_the_running_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from optikube_testcluster.__main__ import main
    from optikube_testcluster.daemon import STATE_DIR_ENV, ClusterState, state_file

    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path))
    assert main(["claim-dir", "ns", "models"]) == 1  # no cluster recorded
    state = ClusterState(
        root=str(tmp_path / "root"), kubeconfig="k", server="https://127.0.0.1:1", processes=[]
    )
    state_file(tmp_path).write_text(state.to_json())
    capsys.readouterr()
    assert main(["claim-dir", "ns", "models"]) == 0
    assert main(["log-path", "ns", "pod", "main"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        str(tmp_path / "root/process-nodes/claims/ns/models"),
        str(tmp_path / "root/process-nodes/logs/ns/pod/main.log"),
    ]
    assert main(["claim-dir", "ns"]) == 2
