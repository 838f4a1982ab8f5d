"""Where a control plane keeps its files inside its temporary directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from optikube_testcluster.pki import ClientIdentity

# One client identity per component. The controller manager and the scheduler use the names
# Kubernetes' bootstrap RBAC policy grants their permissions to, so RBAC is exercised for real;
# the tests' admin and kwok (which plays every kubelet) are cluster admins.
ADMIN = ClientIdentity("admin", "optikube-admin", ("system:masters",))
CONTROLLER_MANAGER = ClientIdentity("kube-controller-manager", "system:kube-controller-manager")
SCHEDULER = ClientIdentity("kube-scheduler", "system:kube-scheduler")
KWOK = ClientIdentity("kwok", "kwok-controller", ("system:masters",))
# The process-node agent plays the kubelet of several nodes (and a provisioner), so the Node
# authorizer, which ties a kubelet to one node, does not fit it.
PROCESS_NODE = ClientIdentity("process-node", "optikube-process-node", ("system:masters",))
# The real nodes' agent is their kube-proxy: bootstrap RBAC's system:node-proxier is its role.
REAL_NODE_AGENT = ClientIdentity("real-node-agent", "system:kube-proxy")
# What the apiserver shows a real kubelet (logs, exec, port-forward); the kubelet's webhook
# authorization asks the apiserver whether this user may, and system:masters may.
APISERVER_KUBELET_CLIENT = ClientIdentity(
    "apiserver-kubelet-client", "optikube-apiserver-kubelet-client", ("system:masters",)
)
CLIENT_IDENTITIES = (
    ADMIN,
    CONTROLLER_MANAGER,
    SCHEDULER,
    KWOK,
    PROCESS_NODE,
    REAL_NODE_AGENT,
    APISERVER_KUBELET_CLIENT,
)


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def kwok_config(self) -> Path:
        return self.root / "kwok.yaml"

    @property
    def ca_cert(self) -> Path:
        return self.pki / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.pki / "ca.key"

    @property
    def serving_cert(self) -> Path:
        return self.pki / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        return self.pki / "apiserver.key"

    @property
    def sa_key(self) -> Path:
        return self.pki / "service-account.key"

    @property
    def sa_pub(self) -> Path:
        return self.pki / "service-account.pub"

    def client_cert(self, identity: ClientIdentity) -> Path:
        return self.pki / f"{identity.file_stem}.crt"

    def client_key(self, identity: ClientIdentity) -> Path:
        return self.pki / f"{identity.file_stem}.key"

    def kubeconfig(self, identity: ClientIdentity) -> Path:
        # The admin's is the one users and tests get, under the conventional name.
        if identity == ADMIN:
            return self.root / "kubeconfig"
        return self.root / f"{identity.file_stem}.kubeconfig"

    @property
    def process_nodes(self) -> Path:
        """The process-node agent's state: container logs, claim directories, running pods."""
        return self.root / "process-nodes"

    @property
    def real_nodes(self) -> Path:
        """The real nodes' files, a directory each (realnode.paths.NodePaths)."""
        return self.root / "real-nodes"

    @property
    def egress_socket(self) -> Path:
        """The apiserver's "cluster" egress, served by the real nodes' agent (HTTP CONNECT)."""
        return self.root / "egress-cluster.sock"

    @property
    def egress_config(self) -> Path:
        return self.root / "egress-selector.yaml"

    def cert_dir(self, component: str) -> Path:
        """Where a component keeps the self-signed certificate of its health/metrics port."""
        return self.root / "serving" / component

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def make_dirs(self) -> None:
        for directory in (self.pki, self.logs, self.etcd_data):
            directory.mkdir(parents=True, exist_ok=True)
        self.pki.chmod(0o700)
        self.etcd_data.chmod(0o700)
