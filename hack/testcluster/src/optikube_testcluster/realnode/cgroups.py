"""The real node's cgroup subtree: every process the node starts (the namespace holder, containerd
and so its shims, CoreDNS, the kubelet) is born in it, and the kubelet's cgroupRoot puts every
container there too. So the subtree finds every process of the node, orphans included, and its
removal is the node's teardown.

The subtree is made in every mounted hierarchy: each cgroup v1 controller, and the cgroup v2 mount
of a hybrid host (/sys/fs/cgroup/unified), where runc mirrors its cgroups.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from optikube_testcluster.realnode.paths import CGROUP_TOP

HOLDER = "holder"  # only the namespace holder: when it is empty, the node is dead
SYSTEM = "system"  # containerd (and its shims), CoreDNS, the kubelet
SWEEP_ROUNDS = 100
# a node whose holder has not entered its cgroup yet is starting, not stale
STARTING_SECONDS = 30.0


def hierarchies(mounts: str | None = None) -> list[Path]:
    """The mount points of every cgroup hierarchy (v1 and v2), from /proc/self/mounts."""
    text = Path("/proc/self/mounts").read_text() if mounts is None else mounts
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2] in ("cgroup", "cgroup2"):
            found.append(Path(fields[1]))
    return found


def make(relative: str) -> None:
    """Creates relative (and its parents) in every hierarchy."""
    for hierarchy in hierarchies():
        parts = relative.split("/")
        for depth in range(1, len(parts) + 1):
            path = hierarchy.joinpath(*parts[:depth])
            path.mkdir(exist_ok=True)
            # a new cpuset cgroup has neither CPUs nor memory nodes: they come from its parent
            for knob in ("cpuset.cpus", "cpuset.mems"):
                if (path / knob).exists() and not (path / knob).read_text().strip():
                    (path / knob).write_text((path.parent / knob).read_text())


def entering_argv(relative: str, argv: list[str]) -> list[str]:
    """argv run by a shell that first moves itself into relative in every hierarchy, then execs it:
    whatever it execs and forks is born there."""
    targets = [str(hierarchy / relative / "cgroup.procs") for hierarchy in hierarchies()]
    script = (
        'for procs in "$@"; do [ "$procs" = -- ] && break; echo $$ > "$procs"; shift; done; shift; exec "$@"'
    )
    return ["sh", "-c", script, "enter-cgroup", *targets, "--", *argv]


def pids(relative: str) -> set[int]:
    """Every process in the subtree, in any hierarchy."""
    found: set[int] = set()
    for hierarchy in hierarchies():
        top = hierarchy / relative
        if not top.is_dir():
            continue
        for procs in top.rglob("cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                found.update(int(pid) for pid in procs.read_text().split())
    return found


def _freeze(relative: str, frozen: bool) -> None:
    for hierarchy in hierarchies():
        state = hierarchy / relative / "freezer.state"
        if state.exists():
            with contextlib.suppress(OSError):
                state.write_text("FROZEN" if frozen else "THAWED")


def kill_all(relative: str) -> None:
    """SIGKILLs every process of the subtree until none is left. Frozen first, so nothing forks or
    restarts a container meanwhile; thawed after, so the kills are delivered."""
    for _ in range(SWEEP_ROUNDS):
        left = pids(relative)
        if not left:
            return
        _freeze(relative, True)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _freeze(relative, False)
        time.sleep(0.05)
    raise RuntimeError(f"processes of cgroup {relative} survive SIGKILL: {sorted(pids(relative))}")


def remove(relative: str) -> list[str]:
    """Removes the subtree, deepest first, in every hierarchy, and the parents it leaves empty up to
    CGROUP_TOP; returns what could not be removed."""
    left = []
    for hierarchy in hierarchies():
        top = hierarchy / relative
        if not top.is_dir():
            continue
        below = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
        for directory in [*below, top]:
            try:
                directory.rmdir()
            except OSError as error:
                left.append(f"{directory}: {error}")
        # optikube/<plane>/ and optikube/, once no other node of any plane uses them
        for parent in (top.parent, top.parent.parent):
            if parent == hierarchy / CGROUP_TOP or (hierarchy / CGROUP_TOP) in parent.parents:
                with contextlib.suppress(OSError):
                    parent.rmdir()
    return left


def stale_nodes() -> list[str]:
    """Node subtrees (optikube/<plane>/<node>) whose holder is gone: what a run killed without its
    teardown left behind (shims and containers outlive their containerd)."""
    stale: set[str] = set()
    for hierarchy in hierarchies():
        top = hierarchy / CGROUP_TOP
        if not top.is_dir():
            continue
        for node in top.glob("*/*"):
            if not node.is_dir():
                continue
            holder = node / HOLDER / "cgroup.procs"
            try:
                alive = bool(holder.read_text().split())
            except OSError:
                alive = False
            with contextlib.suppress(OSError):
                young = time.time() - node.stat().st_ctime < STARTING_SECONDS
                if not alive and not young:
                    stale.add(str(node.relative_to(hierarchy)))
    return sorted(stale)
