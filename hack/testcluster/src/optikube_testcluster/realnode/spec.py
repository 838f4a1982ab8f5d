"""What a real node is: its name, its pod subnet and address, the images it starts with; and the
names other code targets it by (label, taint, toleration, the cluster DNS address)."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from optikube_testcluster.flags import POD_CIDR, SERVICE_CLUSTER_IP_RANGE
from optikube_testcluster.processnode.spec import gateway, node_subnet

REAL_NODE_LABEL = "optikube.io/real-node"
REAL_NODE_SELECTOR: dict[str, str] = {REAL_NODE_LABEL: "true"}
# As on the process node: only pods that ask run on the real node (kwok's nodes take the others).
REAL_NODE_TAINT: dict[str, str] = {"key": REAL_NODE_LABEL, "value": "true", "effect": "NoSchedule"}
REAL_NODE_TOLERATION: dict[str, str] = {**REAL_NODE_TAINT, "operator": "Equal"}
# The cluster's DNS Service, served by CoreDNS on the node (kube-system/kube-dns, as kubeadm names it).
DNS_SERVICE_IP = str(ipaddress.ip_network(SERVICE_CLUSTER_IP_RANGE)[10])
CLUSTER_DOMAIN = "cluster.local"
KUBELET_PORT = 10250
# The third quarter of the pod CIDR: kwok's fake addresses come from its start, the process nodes'
# /24s from its upper half (10.244.128.0/17), so real nodes take 10.244.192.0/18, a /24 each.
REAL_POD_RANGE = str(list(ipaddress.ip_network(POD_CIDR).subnets(new_prefix=18))[3])


@dataclass(frozen=True)
class RealNodeSpec:
    """One node run by a real kubelet and containerd (see docs/development.md, "The real node").

    taint: carry REAL_NODE_TAINT, so only pods tolerating it land there;
    images: OCI image archives imported into its runtime before it starts (never pulled);
    pod_cidr: a /24 for its pods; by default the index-th /24 of REAL_POD_RANGE.
    """

    name: str
    taint: bool = True
    images: tuple[str, ...] = ()
    max_pods: int = 32
    labels: dict[str, str] = field(default_factory=dict)
    pod_cidr: str | None = None

    @property
    def node_ip(self) -> str:
        """The node's InternalIP: its bridge's address, its pods' gateway."""
        if self.pod_cidr is None:
            raise ValueError(f"{self.name} has no pod subnet yet (with_real_subnets)")
        return gateway(self.pod_cidr)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RealNodeSpec:
        data: dict[str, Any] = json.loads(text)
        return cls(**{**data, "images": tuple(data.get("images", ()))})


def with_real_subnets(specs: list[RealNodeSpec]) -> list[RealNodeSpec]:
    """Gives each node without an explicit pod_cidr the next free /24 of REAL_POD_RANGE."""
    taken = {spec.pod_cidr for spec in specs if spec.pod_cidr}
    result, index = [], 0
    for spec in specs:
        if spec.pod_cidr is None:
            while node_subnet(index, REAL_POD_RANGE) in taken:
                index += 1
            subnet = node_subnet(index, REAL_POD_RANGE)
            spec = replace(spec, pod_cidr=subnet)
            taken.add(subnet)
        result.append(spec)
    names = [spec.name for spec in result]
    if len(set(names)) != len(names):
        raise ValueError(f"real node names must be unique: {names}")
    return result


def on_real_node(pod_spec: dict[str, Any]) -> dict[str, Any]:
    """pod_spec with the real node's label selected and its taint tolerated."""
    spec = dict(pod_spec)
    spec["nodeSelector"] = {**(spec.get("nodeSelector") or {}), **REAL_NODE_SELECTOR}
    spec["tolerations"] = [*(spec.get("tolerations") or []), dict(REAL_NODE_TOLERATION)]
    return spec
