"""kwok's configuration and the fake nodes it simulates: pure builders returning dicts.

kwok v0.8 has no built-in behaviour: every transition is a Stage from its `--config`. The
stages below are kwok's own "fast" node and pod stages, except that a pod stops at Running:
no stage completes Job pods, so a test decides each pod's outcome by acting as the kubelet
(see `optikube_testcluster.kubelet`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from optikube_testcluster.flags import KWOK_NODE_ANNOTATION

GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
# The taint GPU node pools carry (e.g. GKE and the NVIDIA GPU operator docs), so that only pods
# that ask for GPUs and tolerate it land there.
GPU_TAINT: dict[str, str] = {"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}
STAGE_API_VERSION = "kwok.x-k8s.io/v1alpha1"

_NODE_CONDITIONS = """\
{{ $now := Now }}
{{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
conditions:
{{ range NodeConditions }}
- lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $lastTransitionTime | Quote }}
  message: {{ .message | Quote }}
  reason: {{ .reason | Quote }}
  status: {{ .status | Quote }}
  type: {{ .type | Quote }}
{{ end }}
"""

# A node's FIELD (allocatable, capacity) as its manifest sets it, else kwok's default node size.
_NODE_RESOURCES = """\
FIELD:
{{ with .status.FIELD }}
{{ YAML . 1 }}
{{ else }}
  cpu: "8"
  memory: 32Gi
  pods: "110"
{{ end }}
"""

_NODE_INITIALIZE = (
    _NODE_CONDITIONS
    + """\
addresses:
{{ with NodeIP }}
- address: {{ . | Quote }}
  type: InternalIP
{{ end }}
- address: {{ .metadata.name | Quote }}
  type: Hostname
"""
    + _NODE_RESOURCES.replace("FIELD", "allocatable")
    + _NODE_RESOURCES.replace("FIELD", "capacity")
    + """\
{{ $kwokVersion := printf "kwok-%s" Version }}
nodeInfo:
  architecture: amd64
  bootID: ""
  containerRuntimeVersion: {{ $kwokVersion }}
  kernelVersion: {{ $kwokVersion }}
  kubeProxyVersion: {{ $kwokVersion }}
  kubeletVersion: {{ $kwokVersion }}
  machineID: ""
  operatingSystem: linux
  osImage: ""
  systemUUID: ""
phase: Running
"""
)


# A pod condition of type TYPE that holds since the pod runs.
_TRUE_CONDITION = """\
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: TYPE
"""

# The statuses of the pod's CONTAINERS (containers, initContainers), each followed by its STATE.
_CONTAINER_STATUSES = """\
{{ range .spec.CONTAINERS }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  restartCount: 0
STATE{{ end }}
"""

_RUNNING = """\
  started: true
  state:
    running:
      startedAt: {{ $now | Quote }}
"""
_COMPLETED = """\
  state:
    terminated:
      exitCode: 0
      finishedAt: {{ $now | Quote }}
      reason: Completed
      startedAt: {{ $now | Quote }}
"""
_RUNNING_POD_CONDITIONS = ("Initialized", "Ready", "ContainersReady", "PodScheduled")

# The pod's addresses of one KIND (host, pod), from the list $KINDIPs holds.
_POD_ADDRESSES = """\
{{ with $KINDIPs }}
KINDIP: {{ index . 0 | Quote }}
KINDIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
"""

_POD_RUNNING = (
    "{{ $now := Now }}\nconditions:\n"
    + "".join(_TRUE_CONDITION.replace("TYPE", kind) for kind in _RUNNING_POD_CONDITIONS)
    + "{{ range .spec.readinessGates }}\n"
    + _TRUE_CONDITION.replace("TYPE", "{{ .conditionType | Quote }}")
    + "{{ end }}\ncontainerStatuses:\n"
    + _CONTAINER_STATUSES.replace("CONTAINERS", "containers").replace("STATE", _RUNNING)
    + "initContainerStatuses:\n"
    + _CONTAINER_STATUSES.replace("CONTAINERS", "initContainers").replace("STATE", _COMPLETED)
    + "{{ $hostIPs := NodeIPsWith .spec.nodeName }}\n"
    + _POD_ADDRESSES.replace("KIND", "host")
    + """\
{{ $podIPs := PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) \
( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
"""
    + _POD_ADDRESSES.replace("KIND", "pod")
    + "phase: Running\nstartTime: {{ $now | Quote }}\n"
)

_NOT_READY = {
    "key": '.status.conditions.[] | select( .type == "Ready" ) | .status',
    "operator": "NotIn",
    "values": ["True"],
}
_READY = {**_NOT_READY, "operator": "In"}
_NOT_DELETED = {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"}


def _stage(
    name: str, kind: str, match: list[dict[str, Any]], next_: dict[str, Any], delay_ms: int = 0
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "resourceRef": {"apiGroup": "v1", "kind": kind},
        "selector": {"matchExpressions": match},
        "next": next_,
    }
    if delay_ms:
        # Jitter above the delay spreads heartbeats out, as kwok's own stage does.
        spec["delay"] = {"durationMilliseconds": delay_ms, "jitterDurationMilliseconds": delay_ms + 5000}
    return {"apiVersion": STAGE_API_VERSION, "kind": "Stage", "metadata": {"name": name}, "spec": spec}


def kwok_stages() -> list[dict[str, Any]]:
    phase_running = {"key": ".status.phase", "operator": "In", "values": ["Running"]}
    phase_pending = {"key": ".status.phase", "operator": "In", "values": ["Pending"]}
    return [
        _stage("node-initialize", "Node", [_NOT_READY], {"statusTemplate": _NODE_INITIALIZE}),
        # Node liveness travels through the Lease kwok renews; the status is refreshed rarely.
        _stage(
            "node-heartbeat-with-lease",
            "Node",
            [phase_running, _READY],
            {"statusTemplate": _NODE_CONDITIONS},
            delay_ms=600_000,
        ),
        _stage(
            "pod-ready", "Pod", [_NOT_DELETED, phase_pending, _NOT_READY], {"statusTemplate": _POD_RUNNING}
        ),
        _stage(
            "pod-delete",
            "Pod",
            [{"key": ".metadata.deletionTimestamp", "operator": "Exists"}],
            {"delete": True},
        ),
    ]


def render_kwok_config() -> str:
    return yaml.safe_dump_all(kwok_stages(), sort_keys=False)


@dataclass(frozen=True)
class FakeNode:
    """One kwok node: its name, what it offers, and how it is labelled and tainted."""

    name: str
    cpu: str = "16"
    memory: str = "64Gi"
    gpus: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    pods: int = 110  # the kubelet's default maximum

    def manifest(self) -> dict[str, Any]:
        capacity = {"cpu": self.cpu, "memory": self.memory, "pods": str(self.pods)}
        labels = {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "type": "kwok",
            **self.labels,
        }
        spec: dict[str, Any] = {}
        if self.gpus:
            capacity[GPU_RESOURCE] = str(self.gpus)
            labels[GPU_PRESENT_LABEL] = "true"
            labels["nvidia.com/gpu.count"] = str(self.gpus)
            spec["taints"] = [dict(GPU_TAINT)]
        key, value = KWOK_NODE_ANNOTATION
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.name, "annotations": {key: value}, "labels": labels},
            "spec": spec,
            "status": {"capacity": capacity, "allocatable": dict(capacity)},
        }


def default_nodes() -> list[FakeNode]:
    """Two CPU nodes and two GPU nodes with 4 GPUs each."""
    cpu = [FakeNode(f"kwok-cpu-{i}") for i in range(2)]
    gpu = [FakeNode(f"kwok-gpu-{i}", cpu="64", memory="256Gi", gpus=4) for i in range(2)]
    return cpu + gpu
