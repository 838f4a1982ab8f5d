"""The real Kubernetes control plane the cluster tests run against (see docs/development.md).

with ControlPlane() as cp:
    cp.kubectl("get", "nodes")
"""

from optikube_testcluster.assets import ASSETS_ENV, AssetsError, find_assets
from optikube_testcluster.clusterclient import KubectlError
from optikube_testcluster.controlplane import ControlPlane, ControlPlaneError
from optikube_testcluster.kwok import GPU_PRESENT_LABEL, GPU_RESOURCE, GPU_TAINT, FakeNode
from optikube_testcluster.processnode import (
    HOST_PORT_ANNOTATION,
    PROCESS_NODE_LABEL,
    PROCESS_NODE_SELECTOR,
    PROCESS_NODE_TAINT,
    PROCESS_NODE_TOLERATION,
    STORAGE_CLASS,
    ProcessNodeSpec,
    claim_path,
    container_log_path,
)

__all__ = [
    "ASSETS_ENV",
    "GPU_PRESENT_LABEL",
    "GPU_RESOURCE",
    "GPU_TAINT",
    "HOST_PORT_ANNOTATION",
    "PROCESS_NODE_LABEL",
    "PROCESS_NODE_SELECTOR",
    "PROCESS_NODE_TAINT",
    "PROCESS_NODE_TOLERATION",
    "STORAGE_CLASS",
    "AssetsError",
    "ControlPlane",
    "ControlPlaneError",
    "FakeNode",
    "KubectlError",
    "ProcessNodeSpec",
    "claim_path",
    "container_log_path",
    "find_assets",
]
