"""Process nodes: Kubernetes nodes whose kubelet is our own agent, running each pod's containers
as local processes in the pod's own namespaces (see docs/development.md, "Process nodes").

ControlPlane(process_nodes=[ProcessNodeSpec("process-0", gpus=2)]) starts the agent; pods land
there by selecting PROCESS_NODE_SELECTOR and tolerating PROCESS_NODE_TAINT.
"""

from optikube_testcluster.processnode.paths import claim_path, container_log_path
from optikube_testcluster.processnode.spec import (
    HOST_LISTEN_ANNOTATION,
    HOST_PORT_ANNOTATION,
    PROCESS_NODE_LABEL,
    PROCESS_NODE_SELECTOR,
    PROCESS_NODE_TAINT,
    PROCESS_NODE_TOLERATION,
    PROVISIONER,
    STORAGE_CLASS,
    ProcessNodeSpec,
)

__all__ = [
    "HOST_LISTEN_ANNOTATION",
    "HOST_PORT_ANNOTATION",
    "PROCESS_NODE_LABEL",
    "PROCESS_NODE_SELECTOR",
    "PROCESS_NODE_TAINT",
    "PROCESS_NODE_TOLERATION",
    "PROVISIONER",
    "STORAGE_CLASS",
    "ProcessNodeSpec",
    "claim_path",
    "container_log_path",
]
