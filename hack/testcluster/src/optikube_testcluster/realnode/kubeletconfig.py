"""The kubelet's configuration file and command line: pure functions of the node's paths and spec.

The settings that are not a kubelet's defaults, and why (docs/development.md, "The real node"):
- cgroup v1 (what the test machine has): `failCgroupV1: false`, or kubelet 1.35+ refuses to run;
- `cgroupDriver: cgroupfs`, matching containerd's `SystemdCgroup = false`: containerd 1.6 has no
  RuntimeConfig CRI call, and kubelet 1.36 then falls back to this field (1.37 is expected to drop
  the fallback, and containerd 1.6 with it);
- `cgroupRoot`: the node's own subtree, which is how the node's teardown finds every container;
- no iptables chains, no kernel tunables written (`protectKernelDefaults: false` plus masks over
  /proc/sys in the node's mount namespace, see holder.py), nothing listening outside the node's
  network namespace, no host resolver, no image GC (images are imported, never pulled).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optikube_testcluster.realnode.paths import NodePaths
from optikube_testcluster.realnode.spec import (
    CLUSTER_DOMAIN,
    DNS_SERVICE_IP,
    KUBELET_PORT,
    REAL_NODE_LABEL,
    REAL_NODE_TAINT,
    RealNodeSpec,
)

SERVING_CERT = "kubelet-serving"
HEALTHZ_PORT = 10248


def kubelet_config(paths: NodePaths, spec: RealNodeSpec, ca_cert: Path, cgroup_root: str) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{cgroup_root}",
        "cgroupsPerQOS": True,
        "enforceNodeAllocatable": ["pods"],
        "containerRuntimeEndpoint": f"unix://{paths.containerd_socket}",
        "address": spec.node_ip,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": HEALTHZ_PORT,
        "tlsCertFile": str(paths.cert(SERVING_CERT)),
        "tlsPrivateKeyFile": str(paths.key(SERVING_CERT)),
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        # the apiserver's kubelet client certificate is accepted; SubjectAccessReviews decide
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca_cert)},
        },
        "authorization": {"mode": "Webhook"},
        "clusterDNS": [DNS_SERVICE_IP],
        "clusterDomain": CLUSTER_DOMAIN,
        # dnsPolicy Default pods get no host resolver: nothing outside the cluster exists
        "resolvConf": "",
        "registerNode": True,
        "registerWithTaints": [dict(REAL_NODE_TAINT)] if spec.taint else [],
        "podLogsDir": str(paths.pod_logs),
        "containerLogMaxSize": "10Mi",
        "containerLogMaxFiles": 2,
        # a shared test machine: evict only when truly out of memory, never for the host's disk use
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "evictionPressureTransitionPeriod": "30s",
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "imageMinimumGCAge": "87600h",
        "makeIPTablesUtilChains": False,
        "protectKernelDefaults": False,
        "failSwapOn": False,
        "maxPods": spec.max_pods,
        "serializeImagePulls": False,
        "nodeStatusUpdateFrequency": "10s",
        "nodeStatusReportFrequency": "1m",
        # ConfigMap and Secret volumes follow their objects as fast as on the process node
        "syncFrequency": "10s",
        "fileCheckFrequency": "20s",
        "shutdownGracePeriod": "0s",
        "staticPodPath": "",
        "volumePluginDir": str(paths.kubelet_root / "volume-plugins"),
        "localStorageCapacityIsolation": True,
        "kernelMemcgNotification": False,
    }


def kubelet_argv(binary: Path, paths: NodePaths, spec: RealNodeSpec) -> list[str]:
    labels = {REAL_NODE_LABEL: "true", "type": "real", **spec.labels}
    return [
        str(binary),
        f"--config={paths.kubelet_config}",
        f"--kubeconfig={paths.kubelet_kubeconfig}",
        f"--root-dir={paths.kubelet_root}",
        f"--cert-dir={paths.pki}",
        # the name must match its client certificate's CN (system:node:<name>) for the Node authorizer
        f"--hostname-override={spec.name}",
        f"--node-ip={spec.node_ip}",
        "--node-labels=" + ",".join(f"{key}={value}" for key, value in sorted(labels.items())),
        "--v=2",
    ]
