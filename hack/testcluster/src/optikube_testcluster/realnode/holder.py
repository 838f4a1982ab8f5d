"""The node's namespaces: one holder process (`unshare --net --mount sleep infinity`) owns a network
namespace and a private mount namespace; containerd and the kubelet run in both, CoreDNS in the
network namespace. No named netns and no mount on the host: when the last process of the
namespaces dies, the kernel drops the bridge, every veth and every mount made inside.

Inside the mount namespace, before anything starts:
- a tmpfs on /run: containerd 1.6 keeps its shims' sockets and runc's state at fixed /run paths;
- an overlay on /var (upper in the node's directory): what lands at fixed /var paths (the kubelet's
  /var/log/containers links and device-plugin socket, libcni's result cache) stays the node's;
- read-only files over the /proc/sys entries the kubelet's setupKernelTunables writes when they
  differ from its wish (global sysctls, not per namespace): it reads its wish and writes nothing.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from optikube_testcluster import processes
from optikube_testcluster.flags import SERVICE_CLUSTER_IP_RANGE
from optikube_testcluster.processnode.netns import ip_batch, sysctl
from optikube_testcluster.realnode import cgroups
from optikube_testcluster.realnode.configs import BRIDGE
from optikube_testcluster.realnode.paths import NodePaths

KERNEL_TUNABLES = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
}
RUN_TMPFS_SIZE = "256m"


def ns_argv(holder: int, *, mount: bool = True) -> list[str]:
    """nsenter into the holder's network (and mount) namespace."""
    argv = ["nsenter", f"--net=/proc/{holder}/ns/net"]
    return [*argv, f"--mount=/proc/{holder}/ns/mnt"] if mount else argv


def _in_own_namespaces(pid: int) -> bool:
    try:
        return (
            all(
                Path(f"/proc/{pid}/ns/{kind}").readlink() != Path(f"/proc/self/ns/{kind}").readlink()
                for kind in ("net", "mnt")
            )
            and Path(f"/proc/{pid}/exe").resolve().name == "sleep"
        )
    except OSError:
        return False


def start_holder(paths: NodePaths, cgroup: str, *, detached: bool) -> int:
    """Starts the holder in cgroup/holder; returns its pid once its namespaces exist."""
    argv = cgroups.entering_argv(
        f"{cgroup}/{cgroups.HOLDER}",
        ["unshare", "--net", "--mount", "--propagation", "private", "sleep", "infinity"],
    )
    process = processes.spawn(argv, paths.log("holder"), detached=detached)
    deadline = time.monotonic() + 10
    # the shell execs unshare, which execs sleep: one pid, in its namespaces once it is sleep
    while not _in_own_namespaces(process.pid):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the namespace holder did not start: {paths.log('holder').read_text()}")
        time.sleep(0.02)
    return process.pid


def set_up_network(holder: int, node_ip: str, prefix_length: int) -> None:
    """lo, the bridge the CNI plugin adopts (created first, with the node's address, so that the
    kubelet's --node-ip is a local address from its start), and the Service range as a local
    route: the service proxy and CoreDNS bind ClusterIPs directly."""
    netns = f"/proc/{holder}/ns/net"
    ip_batch(
        netns,
        [
            "link set lo up",
            f"link add {BRIDGE} type bridge",
            f"addr add {node_ip}/{prefix_length} dev {BRIDGE}",
            f"link set {BRIDGE} up",
            f"route add local {SERVICE_CLUSTER_IP_RANGE} dev lo",
        ],
    )
    sysctl(netns, "net.ipv4.ip_forward", "1")


def set_up_mounts(holder: int, paths: NodePaths) -> None:
    commands = [
        ["mount", "-t", "tmpfs", "-o", f"mode=755,size={RUN_TMPFS_SIZE}", "optikube-run", "/run"],
        [
            "mount",
            "-t",
            "overlay",
            "optikube-var",
            "-o",
            f"lowerdir=/var,upperdir={paths.var_upper},workdir={paths.var_work}",
            "/var",
        ],
    ]
    for key, value in KERNEL_TUNABLES.items():
        mask = paths.tunables / key.replace("/", ".")
        mask.write_text(value + "\n")
        commands.append(["mount", "--bind", "-o", "ro", str(mask), f"/proc/sys/{key}"])
    for command in commands:
        result = subprocess.run(
            [*ns_argv(holder), *command], capture_output=True, text=True, timeout=30, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} in the node's mount namespace: {result.stderr.strip()}")
