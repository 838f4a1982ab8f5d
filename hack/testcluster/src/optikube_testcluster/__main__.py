"""`python -m optikube_testcluster up|down|status`: a local cluster to poke at with kubectl.

`up` returns once the cluster is ready (with OPTIKUBE_REAL_NODE=1 it also runs the real node
real-0, whose containerd holds the chart's images); its last line is `export KUBECONFIG=<path>`, and every
line before it is a shell comment, so `eval "$(python -m optikube_testcluster up)"` works.
`claim-dir NAMESPACE CLAIM` and `log-path NAMESPACE POD CONTAINER` print where the running
cluster's process node keeps a claim's files and a container's log.
"""

from __future__ import annotations

import sys
from pathlib import Path

from optikube_testcluster import daemon
from optikube_testcluster.layout import Layout
from optikube_testcluster.processnode.paths import claim_path, container_log_path

USAGE = (
    "usage: python -m optikube_testcluster up|down|status|demo [EXAMPLE]|node-demo [EXAMPLE]"
    " | claim-dir NAMESPACE CLAIM | log-path NAMESPACE POD CONTAINER"
)
PATH_COMMANDS = {"claim-dir": 2, "log-path": 3}


def _print_path(command: str, args: list[str]) -> int:
    recorded = daemon.load_state(daemon.state_dir())
    if recorded is None:
        print("no cluster", file=sys.stderr)
        return 1
    state = Layout(Path(recorded.root)).process_nodes
    print(claim_path(state, *args) if command == "claim-dir" else container_log_path(state, *args))
    return 0


def main(argv: list[str]) -> int:
    if argv and argv[0] in PATH_COMMANDS and len(argv) == PATH_COMMANDS[argv[0]] + 1:
        return _print_path(argv[0], argv[1:])
    if argv and argv[0] == "demo":
        from optikube_testcluster import demo

        return demo.main(argv[1:])
    if argv and argv[0] == "node-demo":
        from optikube_testcluster import nodedemo

        return nodedemo.main(argv[1:])
    if len(argv) != 1 or argv[0] not in ("up", "down", "status"):
        print(USAGE, file=sys.stderr)
        return 2
    directory = daemon.state_dir()
    command = argv[0]
    if command == "up":
        real = daemon.wants_real_node()
        if real:
            from optikube_testcluster.nodedemo import daemon_real_node

            print("# building or finding the real node and the chart's images (cached after the first run)")
        try:
            state = daemon.up(directory, [daemon_real_node()] if real else [])
        except daemon.ClusterMismatchError as error:
            print(error, file=sys.stderr)
            return 1
        print(f"# control plane ready at {state.server}; logs and certificates in {state.root}")
        print("# fake nodes: 2 CPU, 2 GPU (nvidia.com/gpu: 4, taint nvidia.com/gpu=present:NoSchedule)")
        print("# process node process-0: pods run as local processes (taint optikube.io/process-node)")
        for node in state.real_nodes:
            print(f"# real node {node.name}: a real kubelet and containerd (taint optikube.io/real-node)")
            print(f"# its files (logs, kubelet, containerd): {node.directory}")
        print("# stop it with: make cluster-down")
        print(daemon.export_line(state.kubeconfig))
        return 0
    if command == "down":
        stopped = daemon.down(directory)
        print("no cluster was running" if stopped is None else f"stopped the cluster at {stopped.server}")
        return 0
    recorded = daemon.load_state(directory)
    if recorded is None:
        print("no cluster")
        return 1
    alive = recorded.alive()
    print(f"{recorded.server}: {len(alive)}/{len(recorded.processes)} processes running")
    print(daemon.export_line(recorded.kubeconfig))
    return 0 if len(alive) == len(recorded.processes) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
