"""The real node's configuration files, rendered by pure functions: containerd's config.toml, the
CNI conflist, CoreDNS's Corefile, and the cluster objects the node's DNS needs.

Why each setting is what it is: docs/development.md, "The real node".
"""

from __future__ import annotations

import json
from typing import Any

from optikube_testcluster.realnode.paths import NodePaths
from optikube_testcluster.realnode.spec import CLUSTER_DOMAIN, DNS_SERVICE_IP

BRIDGE = "cni0"
CNI_NETWORK = "optikube"
CNI_CONFLIST = "10-optikube.conflist"
COREDNS_READY_PORT = 8181
COREDNS_USER = "optikube-coredns"
# Plugins that would write outside containerd's root and state (opt: /opt/containerd), or that
# this machine cannot or need not use.
DISABLED_PLUGINS = (
    "io.containerd.internal.v1.opt",
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.zfs",
    "io.containerd.tracing.processor.v1.otlp",
    "io.containerd.internal.v1.tracing",
)


def _toml_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(json.dumps(value) for value in values) + "]"


def containerd_config(
    paths: NodePaths, pause_image: str, runc: str, cni_bin_dir: str, *, cri: bool = True
) -> str:
    """containerd 1.6's config (version 2): its own root, state and socket, no TCP listener but the
    CRI's streaming server on the node's loopback. cri=False: the same store without the CRI, for
    importing images into it while no kubelet runs."""
    disabled = DISABLED_PLUGINS if cri else (*DISABLED_PLUGINS, "io.containerd.grpc.v1.cri")
    head = f"""version = 2
root = "{paths.containerd_root}"
state = "{paths.containerd_state}"
disabled_plugins = {_toml_list(disabled)}

[grpc]
  address = "{paths.containerd_socket}"

[ttrpc]
  address = "{paths.containerd_socket}.ttrpc"

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""
"""
    if not cri:
        return head
    return (
        head
        + f"""
[plugins."io.containerd.grpc.v1.cri"]
  # imported, never pulled (the kubelet's image GC is off too)
  sandbox_image = "{pause_image}"
  # exec, attach and port-forward: dialled by the kubelet, which shares the node's netns
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_tcp_service = true
  # no profiles loaded into the host's kernel
  disable_apparmor = true
  enable_selinux = false
  # pods' network namespaces are bind-mounted under the state dir, not /run/netns
  netns_mounts_under_state_dir = true
  # no hugetlb hierarchy is mounted on a cgroup v1 host like the test machine
  disable_hugetlb_controller = true
  tolerate_missing_hugetlb_controller = true
  max_container_log_line_size = 16384
  # root may lack CAP_SYS_RESOURCE (a container host's bounding set): runc then cannot lower an
  # oom_score_adj below its own and every sandbox fails ("nsexec: failed to update
  # /proc/self/oom_score_adj: Permission denied"); clamp to containerd's own score instead
  restrict_oom_score_adj = true

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin_dir}"
    conf_dir = "{paths.cni_conf_dir}"
    max_conf_num = 1

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        # cgroupfs, as the kubelet's cgroupDriver (containerd 1.6 cannot tell it, see kubeletconfig)
        SystemdCgroup = false
"""
    )


def cni_conflist(paths: NodePaths, pod_cidr: str, gateway: str) -> dict[str, Any]:
    """One bridge with host-local addresses; containerd adds the loopback plugin itself. No IP
    masquerade: nothing outside the node's network namespace is reached through it."""
    return {
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": pod_cidr, "gateway": gateway}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(paths.cni_data),
                },
            }
        ],
    }


def corefile(paths: NodePaths) -> str:
    """CoreDNS on the DNS Service's own address inside the node's netns. Nothing outside the
    cluster exists, so every other name is answered NXDOMAIN at once (no forward: glibc would wait
    for a timeout instead)."""
    return f"""{CLUSTER_DOMAIN}:53 in-addr.arpa:53 ip6.arpa:53 {{
    bind {DNS_SERVICE_IP}
    errors
    ready 127.0.0.1:{COREDNS_READY_PORT}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {paths.coredns_kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
    cache 5
}}
.:53 {{
    bind {DNS_SERVICE_IP}
    errors
    template ANY ANY {{
        rcode NXDOMAIN
    }}
}}
"""


def cluster_objects() -> list[dict[str, Any]]:
    """The DNS Service (selector-less: CoreDNS binds its address itself) and what CoreDNS may read."""
    rbac = "rbac.authorization.k8s.io"
    name = "optikube:coredns"
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "kube-dns",
                "namespace": "kube-system",
                "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"},
            },
            "spec": {
                "clusterIP": DNS_SERVICE_IP,
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                ],
            },
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": name},
            "subjects": [{"apiGroup": rbac, "kind": "User", "name": COREDNS_USER}],
        },
    ]
