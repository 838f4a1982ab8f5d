"""Where a real node keeps its files (all under one directory of the control plane's root) and
which cgroup subtree it owns.

    <root>/real-nodes/<node>/
        pki/                      its client and serving certificates
        kubelet.kubeconfig        coredns.kubeconfig
        kubelet-config.yaml       Corefile
        kubelet/                  the kubelet's --root-dir (pods' volumes)
        pod-logs/                 containers' logs (<namespace>_<pod>_<uid>/<container>/<n>.log)
        containerd/               config.toml, root/, state/, containerd.sock
        cni/                      net.d/ (our conflist only), networks/ (host-local's leases)
        var/                      upper/work of the overlay on /var in the node's mount namespace
        tunables/                 the files masking /proc/sys entries the kubelet would write
        logs/                     kubelet.log, containerd.log, coredns.log, holder.log
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# sun_path holds 108 bytes, the terminating NUL included
UNIX_SOCKET_LIMIT = 107
CGROUP_TOP = "optikube"


@dataclass(frozen=True)
class NodePaths:
    root: Path

    @classmethod
    def of(cls, plane_root: Path, node: str) -> NodePaths:
        return cls(plane_root / "real-nodes" / node)

    @property
    def node(self) -> str:
        return self.root.name

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def kubelet_kubeconfig(self) -> Path:
        return self.root / "kubelet.kubeconfig"

    @property
    def coredns_kubeconfig(self) -> Path:
        return self.root / "coredns.kubeconfig"

    @property
    def kubelet_config(self) -> Path:
        return self.root / "kubelet-config.yaml"

    @property
    def kubelet_root(self) -> Path:
        return self.root / "kubelet"

    @property
    def pod_logs(self) -> Path:
        return self.root / "pod-logs"

    @property
    def containerd_config(self) -> Path:
        return self.root / "containerd" / "config.toml"

    @property
    def containerd_root(self) -> Path:
        return self.root / "containerd" / "root"

    @property
    def containerd_state(self) -> Path:
        return self.root / "containerd" / "state"

    @property
    def containerd_socket(self) -> Path:
        return self.root / "containerd" / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def cni_data(self) -> Path:
        return self.root / "cni" / "networks"

    @property
    def corefile(self) -> Path:
        return self.root / "Corefile"

    @property
    def var_upper(self) -> Path:
        return self.root / "var" / "upper"

    @property
    def var_work(self) -> Path:
        return self.root / "var" / "work"

    @property
    def tunables(self) -> Path:
        return self.root / "tunables"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def cert(self, stem: str) -> Path:
        return self.pki / f"{stem}.crt"

    def key(self, stem: str) -> Path:
        return self.pki / f"{stem}.key"

    def directories(self) -> tuple[Path, ...]:
        """What exists before anything starts (the kubelet and containerd refuse missing ones)."""
        return (
            self.pki,
            self.kubelet_root,
            self.pod_logs,
            self.containerd_state,
            self.cni_conf_dir,
            self.cni_data,
            self.var_upper,
            self.var_work,
            self.tunables,
            self.logs,
        )

    def check_socket_length(self) -> None:
        length = len(str(self.containerd_socket)) + len(".ttrpc")
        if length > UNIX_SOCKET_LIMIT:
            raise ValueError(
                f"the node's containerd socket path is {length} bytes, over the {UNIX_SOCKET_LIMIT} a unix"
                f" socket allows: give the control plane a shorter root than {self.root.parents[1]}"
            )


def node_cgroup(plane_root: Path, node: str) -> str:
    """The node's cgroup subtree, relative to each hierarchy's root: one per control plane and node,
    so two test sessions on one machine never share one."""
    return f"{CGROUP_TOP}/{plane_root.name}/{node}"
