"""The Node and Lease objects of a process node: pure builders returning dicts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from optikube_testcluster.flags import NODE_LEASE_SECONDS
from optikube_testcluster.kwok import GPU_PRESENT_LABEL, GPU_RESOURCE
from optikube_testcluster.processnode.spec import (
    PROCESS_NODE_LABEL,
    PROCESS_NODE_TAINT,
    ProcessNodeSpec,
    gateway,
)

RUNTIME_VERSION = "optikube-process-node://0.1"
LEASE_NAMESPACE = "kube-node-lease"
_CONDITIONS = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "the process-node agent is posting ready status"),
)


def timestamp(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_timestamp(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def capacity(spec: ProcessNodeSpec) -> dict[str, str]:
    resources = {"cpu": spec.cpu, "memory": spec.memory, "pods": str(spec.pods), "ephemeral-storage": "100Gi"}
    if spec.gpus:
        resources[GPU_RESOURCE] = str(spec.gpus)
    return resources


def node_labels(spec: ProcessNodeSpec) -> dict[str, str]:
    labels = {
        "kubernetes.io/hostname": spec.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "process",
        PROCESS_NODE_LABEL: "true",
        **spec.labels,
    }
    if spec.gpus:  # as the kwok GPU nodes (and the NVIDIA GPU feature discovery) label them
        labels[GPU_PRESENT_LABEL] = "true"
        labels["nvidia.com/gpu.count"] = str(spec.gpus)
    return labels


def node_manifest(spec: ProcessNodeSpec) -> dict[str, Any]:
    """The Node as the agent creates it. No kwok annotation: kwok must leave it alone."""
    if spec.pod_cidr is None:
        raise ValueError(f"node {spec.name} has no pod_cidr")
    node_spec: dict[str, Any] = {"podCIDR": spec.pod_cidr, "podCIDRs": [spec.pod_cidr]}
    if spec.taint:
        node_spec["taints"] = [dict(PROCESS_NODE_TAINT)]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": spec.name, "labels": node_labels(spec)},
        "spec": node_spec,
    }


def node_status(
    spec: ProcessNodeSpec, kubelet_version: str, now: dt.datetime, since: dt.datetime
) -> dict[str, Any]:
    """The status the agent posts on registration and with each heartbeat."""
    assert spec.pod_cidr is not None
    resources = capacity(spec)
    return {
        "capacity": resources,
        "allocatable": dict(resources),
        "addresses": [
            {"type": "InternalIP", "address": gateway(spec.pod_cidr)},
            {"type": "Hostname", "address": spec.name},
        ],
        "conditions": [
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": timestamp(now),
                "lastTransitionTime": timestamp(since),
            }
            for kind, status, reason, message in _CONDITIONS
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
        "nodeInfo": {
            "architecture": "amd64",
            "bootID": "",
            "containerRuntimeVersion": RUNTIME_VERSION,
            "kernelVersion": "",
            "kubeProxyVersion": kubelet_version,
            "kubeletVersion": kubelet_version,
            "machineID": "",
            "operatingSystem": "linux",
            "osImage": "optikube process node",
            "systemUUID": "",
        },
        "phase": "Running",
    }


def lease_manifest(node_name: str, node_uid: str, now: dt.datetime) -> dict[str, Any]:
    """The node's heartbeat in kube-node-lease, owned by the Node as a kubelet's is."""
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": node_name,
            "namespace": LEASE_NAMESPACE,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid}],
        },
        "spec": {
            "holderIdentity": node_name,
            "leaseDurationSeconds": NODE_LEASE_SECONDS,
            "renewTime": micro_timestamp(now),
        },
    }
