"""Command lines of the control plane's components: pure functions of (layout, ports).

Every listener is bound to 127.0.0.1; each flag that opens a port is set explicitly, so no
component falls back to a default that listens on all interfaces.
"""

from __future__ import annotations

from optikube_testcluster.layout import APISERVER_KUBELET_CLIENT, CONTROLLER_MANAGER, KWOK, SCHEDULER, Layout
from optikube_testcluster.ports import LOOPBACK, Ports

SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
# The first address of the service range is the `kubernetes` Service; the apiserver's
# serving certificate must name it for in-cluster clients.
KUBERNETES_SERVICE_IP = "10.96.0.1"
POD_CIDR = "10.244.0.0/16"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
# kwok manages only nodes carrying this annotation, so it never touches a real kubelet's node.
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
# A fake, non-routable address for the fake nodes: nothing must try to reach a kubelet on this host.
KWOK_NODE_IP = "192.0.2.10"
NODE_LEASE_SECONDS = 40


def _url(port: int, scheme: str = "http") -> str:
    return f"{scheme}://{LOOPBACK}:{port}"


def etcd_flags(layout: Layout, ports: Ports) -> list[str]:
    peer = _url(ports.etcd_peer)
    client = _url(ports.etcd_client)
    return [
        "--name=optikube",
        f"--data-dir={layout.etcd_data}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=optikube={peer}",
        "--initial-cluster-state=new",
        # Test data is thrown away; skipping fsync makes etcd fast on slow shared disks.
        "--unsafe-no-fsync=true",
        "--log-level=warn",
    ]


def apiserver_flags(layout: Layout, ports: Ports, *, real_nodes: bool = False) -> list[str]:
    """real_nodes: the apiserver also talks to real kubelets (see real_node_apiserver_flags)."""
    return [
        *_apiserver_base_flags(layout, ports),
        *(real_node_apiserver_flags(layout) if real_nodes else []),
    ]


def real_node_apiserver_flags(layout: Layout) -> list[str]:
    """What a real kubelet needs of the apiserver: its InternalIP dialled, never its name looked up
    (in the host's resolver); a client certificate the kubelet accepts; and the "cluster" egress
    (kubelets, pods) through the real nodes' agent, since nodes' addresses live in their own
    network namespaces (realnode/egress.py)."""
    return [
        "--kubelet-preferred-address-types=InternalIP",
        f"--kubelet-client-certificate={layout.client_cert(APISERVER_KUBELET_CLIENT)}",
        f"--kubelet-client-key={layout.client_key(APISERVER_KUBELET_CLIENT)}",
        f"--egress-selector-config-file={layout.egress_config}",
    ]


def _apiserver_base_flags(layout: Layout, ports: Ports) -> list[str]:
    return [
        f"--bind-address={LOOPBACK}",
        f"--advertise-address={LOOPBACK}",
        f"--secure-port={ports.apiserver}",
        f"--etcd-servers={_url(ports.etcd_client)}",
        f"--cert-dir={layout.cert_dir('kube-apiserver')}",
        f"--tls-cert-file={layout.serving_cert}",
        f"--tls-private-key-file={layout.serving_key}",
        f"--client-ca-file={layout.ca_cert}",
        "--authorization-mode=Node,RBAC",
        "--anonymous-auth=false",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={layout.sa_pub}",
        f"--service-account-signing-key-file={layout.sa_key}",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        "--allow-privileged=true",
        "--profiling=false",
        "--v=1",
    ]


def _delegated_serving(layout: Layout, component: str, port: int, kubeconfig: str) -> list[str]:
    """Health and metrics port of a controller: 127.0.0.1 only, authenticated by the apiserver."""
    return [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--bind-address={LOOPBACK}",
        f"--secure-port={port}",
        f"--cert-dir={layout.cert_dir(component)}",
        # One instance per cluster: leader election would only delay startup.
        "--leader-elect=false",
        "--profiling=false",
    ]


def controller_manager_flags(layout: Layout, ports: Ports) -> list[str]:
    kubeconfig = str(layout.kubeconfig(CONTROLLER_MANAGER))
    return [
        *_delegated_serving(layout, "kube-controller-manager", ports.controller_manager, kubeconfig),
        # Each controller acts as its own service account, so RBAC applies to them as in a cluster.
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={layout.sa_key}",
        f"--root-ca-file={layout.ca_cert}",
        f"--cluster-signing-cert-file={layout.ca_cert}",
        f"--cluster-signing-key-file={layout.ca_key}",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        "--cluster-name=optikube-testcluster",
        "--v=1",
    ]


def scheduler_flags(layout: Layout, ports: Ports) -> list[str]:
    kubeconfig = str(layout.kubeconfig(SCHEDULER))
    return [*_delegated_serving(layout, "kube-scheduler", ports.scheduler, kubeconfig), "--v=1"]


def kwok_flags(layout: Layout, ports: Ports) -> list[str]:
    key, value = KWOK_NODE_ANNOTATION
    return [
        f"--kubeconfig={layout.kubeconfig(KWOK)}",
        # An explicit config replaces kwok's default (~/.kwok/kwok.yaml): only our stages apply.
        f"--config={layout.kwok_config}",
        f"--manage-nodes-with-annotation-selector={key}={value}",
        f"--node-lease-duration-seconds={NODE_LEASE_SECONDS}",
        f"--node-ip={KWOK_NODE_IP}",
        f"--cidr={POD_CIDR}",
        f"--server-address={LOOPBACK}:{ports.kwok}",
    ]
