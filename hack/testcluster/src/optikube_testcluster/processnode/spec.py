"""What a process node is: its name, what it offers, its labels and taint, and its pod subnet.

Also the names other code targets it by: the label, the taint (and the toleration that
matches it), the host-port annotation of host-backed Services, the host-listen annotation of
Services forwarded from the host, and the StorageClass.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from optikube_testcluster.flags import POD_CIDR

PROCESS_NODE_LABEL = "optikube.io/process-node"
PROCESS_NODE_SELECTOR: dict[str, str] = {PROCESS_NODE_LABEL: "true"}
# Tainted nodes run only pods that ask for them, so a stray test pod never runs a real process.
PROCESS_NODE_TAINT: dict[str, str] = {"key": PROCESS_NODE_LABEL, "value": "true", "effect": "NoSchedule"}
PROCESS_NODE_TOLERATION: dict[str, str] = {**PROCESS_NODE_TAINT, "operator": "Equal"}
# A Service with this annotation is forwarded to 127.0.0.1:<port> of the host's network namespace:
# how pods reach a server a test runs on the host (the operator's progress endpoint, say).
HOST_PORT_ANNOTATION = "testcluster.optikube.io/host-port"
# The other direction, what `kubectl port-forward` does: a Service with this annotation
# ("<host port>" for its first port, or "<host port>=<service port>,...") gets a listener on the
# host's 127.0.0.1:<host port>, forwarded to the Service's ready endpoints (pods of the nodes).
# How a test on the host reaches a server in a pod (a Prometheus, an operator's /metrics).
HOST_LISTEN_ANNOTATION = "testcluster.optikube.io/host-listen"
STORAGE_CLASS = "optikube-local"
PROVISIONER = "optikube.io/process-node"
# Process nodes take their pod subnets from the upper half of the pod CIDR; kwok hands out its
# fake pods' addresses from the start of the range, so the two never meet.
PROCESS_POD_RANGE = str(list(ipaddress.ip_network(POD_CIDR).subnets(new_prefix=17))[1])


@dataclass(frozen=True)
class ProcessNodeSpec:
    """One node whose pods run as local processes.

    gpus: the `nvidia.com/gpu` count it advertises (fake: nothing is attached to the processes);
    taint: carry PROCESS_NODE_TAINT, so only pods tolerating it land there;
    pod_cidr: a /24 for its pods; by default the index-th /24 of PROCESS_POD_RANGE.
    """

    name: str
    gpus: int = 0
    taint: bool = True
    cpu: str = "8"
    memory: str = "32Gi"
    pods: int = 110
    labels: dict[str, str] = field(default_factory=dict)
    pod_cidr: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ProcessNodeSpec:
        data: dict[str, Any] = json.loads(text)
        return cls(**data)


def node_subnet(index: int, pod_range: str = PROCESS_POD_RANGE) -> str:
    """The default /24 of the index-th process node."""
    subnets = ipaddress.ip_network(pod_range).subnets(new_prefix=24)
    for i, subnet in enumerate(subnets):
        if i == index:
            return str(subnet)
    raise ValueError(f"no /24 number {index} in {pod_range}")


def with_subnets(specs: list[ProcessNodeSpec]) -> list[ProcessNodeSpec]:
    """Gives each node without an explicit pod_cidr the next free /24."""
    taken = {spec.pod_cidr for spec in specs if spec.pod_cidr}
    result = []
    index = 0
    for spec in specs:
        if spec.pod_cidr:
            result.append(spec)
            continue
        while node_subnet(index) in taken:
            index += 1
        subnet = node_subnet(index)
        taken.add(subnet)
        result.append(ProcessNodeSpec(**{**asdict(spec), "pod_cidr": subnet}))
    names = [spec.name for spec in result]
    if len(set(names)) != len(names):
        raise ValueError(f"process node names must be unique: {names}")
    return result


def gateway(pod_cidr: str) -> str:
    """The node's own address in its subnet (its InternalIP, and the pods' default gateway)."""
    return str(next(ipaddress.ip_network(pod_cidr).hosts()))
