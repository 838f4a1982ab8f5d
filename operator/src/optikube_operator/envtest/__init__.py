"""The real Kubernetes control plane the cluster tests run against (see docs/development.md).

with ControlPlane() as cp:
    cp.kubectl("get", "nodes")
"""

from optikube_operator.envtest.assets import ASSETS_ENV, AssetsError, find_assets
from optikube_operator.envtest.controlplane import ControlPlane, ControlPlaneError, KubectlError
from optikube_operator.envtest.kwok import GPU_PRESENT_LABEL, GPU_RESOURCE, GPU_TAINT, FakeNode

__all__ = [
    "ASSETS_ENV",
    "GPU_PRESENT_LABEL",
    "GPU_RESOURCE",
    "GPU_TAINT",
    "AssetsError",
    "ControlPlane",
    "ControlPlaneError",
    "FakeNode",
    "KubectlError",
    "find_assets",
]
