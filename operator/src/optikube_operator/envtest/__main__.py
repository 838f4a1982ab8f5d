"""`python -m optikube_operator.envtest up|down|status`: a local cluster to poke at with kubectl.

`up` returns once the cluster is ready; its last line is `export KUBECONFIG=<path>`, and every
line before it is a shell comment, so `eval "$(python -m optikube_operator.envtest up)"` works.
"""

from __future__ import annotations

import sys

from optikube_operator.envtest import daemon

USAGE = "usage: python -m optikube_operator.envtest up|down|status"


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("up", "down", "status"):
        print(USAGE, file=sys.stderr)
        return 2
    directory = daemon.state_dir()
    command = argv[0]
    if command == "up":
        state = daemon.up(directory)
        print(f"# control plane ready at {state.server}; logs and certificates in {state.root}")
        print("# fake nodes: 2 CPU, 2 GPU (nvidia.com/gpu: 4, taint nvidia.com/gpu=present:NoSchedule)")
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
