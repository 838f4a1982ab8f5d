from __future__ import annotations

import yaml

from optikube_testcluster.kubelet import terminated_status_patch
from optikube_testcluster.kwok import (
    GPU_PRESENT_LABEL,
    GPU_RESOURCE,
    FakeNode,
    default_nodes,
    kwok_stages,
    render_kwok_config,
)


def test_stages_cover_nodes_and_pods_but_never_complete_a_pod() -> None:
    stages = list(yaml.safe_load_all(render_kwok_config()))
    assert stages == kwok_stages()
    by_kind: dict[str, list[str]] = {}
    for stage in stages:
        assert stage["apiVersion"] == "kwok.x-k8s.io/v1alpha1" and stage["kind"] == "Stage"
        by_kind.setdefault(stage["spec"]["resourceRef"]["kind"], []).append(stage["metadata"]["name"])
    assert by_kind == {
        "Node": ["node-initialize", "node-heartbeat-with-lease"],
        "Pod": ["pod-ready", "pod-delete"],
    }
    for stage in stages:
        template = stage["spec"]["next"].get("statusTemplate", "")
        assert "Succeeded" not in template and "Failed" not in template


def test_default_nodes_are_two_cpu_and_two_tainted_gpu_nodes() -> None:
    manifests = [node.manifest() for node in default_nodes()]
    gpu = [m for m in manifests if m["metadata"]["labels"].get(GPU_PRESENT_LABEL) == "true"]
    cpu = [m for m in manifests if m not in gpu]
    assert len(gpu) == 2 and len(cpu) == 2
    for manifest in gpu:
        assert manifest["status"]["capacity"][GPU_RESOURCE] == "4"
        assert manifest["status"]["allocatable"][GPU_RESOURCE] == "4"
        assert manifest["spec"]["taints"] == [
            {"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}
        ]
    for manifest in cpu:
        assert GPU_RESOURCE not in manifest["status"]["capacity"]
        assert "taints" not in manifest["spec"]
    assert all(m["metadata"]["annotations"] == {"kwok.x-k8s.io/node": "fake"} for m in manifests)


def test_fake_node_keeps_custom_labels() -> None:
    labels = FakeNode("n", labels={"pool": "a"}).manifest()["metadata"]["labels"]
    assert labels["pool"] == "a" and labels["kubernetes.io/hostname"] == "n"


def test_terminated_status_reports_exit_code_and_message() -> None:
    ok = terminated_status_patch({"trainer": "img:1"}, 0, '{"accuracy": 0.9}')["status"]
    assert ok["phase"] == "Succeeded"
    terminated = ok["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0 and terminated["message"] == '{"accuracy": 0.9}'
    assert ok["containerStatuses"][0]["image"] == "img:1"
    failed = terminated_status_patch({"a": "i", "b": "j"}, 3)["status"]
    assert failed["phase"] == "Failed"
    assert [s["state"]["terminated"]["reason"] for s in failed["containerStatuses"]] == ["Error", "Error"]
    assert "message" not in failed["containerStatuses"][0]["state"]["terminated"]
