"""Where a process-node agent keeps its files, all under one state directory.

    logs/<namespace>/<pod>/<container>.log   stdout+stderr of every run of a container
    claims/<namespace>/<claim>/              the host directory behind a PersistentVolumeClaim
    pods/<uid>/                              a running pod: volumes, hosts file, launch specs

Logs and claims are stable paths (by name, not uid), so tests and `make` targets can find them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


def container_log_path(state_dir: Path, namespace: str, pod: str, container: str) -> Path:
    """The log file of a container (init containers included); every restart appends to it."""
    return state_dir / "logs" / namespace / pod / f"{container}.log"


def claim_path(state_dir: Path, namespace: str, claim: str) -> Path:
    """The host directory holding the data of PersistentVolumeClaim namespace/claim."""
    return state_dir / "claims" / namespace / claim


@dataclass(frozen=True)
class PodDirs:
    root: Path

    @property
    def hosts(self) -> Path:
        return self.root / "hosts"

    @property
    def hostname(self) -> Path:
        return self.root / "hostname"

    @property
    def resolv_conf(self) -> Path:
        return self.root / "resolv.conf"

    @property
    def shm(self) -> Path:
        return self.root / "shm"

    def volume(self, name: str) -> Path:
        return self.root / "volumes" / name

    def container(self, name: str) -> Path:
        return self.root / "containers" / name

    def termination_log(self, container: str) -> Path:
        return self.container(container) / "termination-log"

    def rootfs(self, container: str) -> Path:
        return self.container(container) / "rootfs"

    def scratch(self, container: str) -> Path:
        return self.container(container) / "scratch"

    def launch_spec(self, container: str) -> Path:
        return self.container(container) / "launch.json"

    def result(self, container: str) -> Path:
        return self.container(container) / "result.json"

    @property
    def sandbox_spec(self) -> Path:
        return self.root / "sandbox.json"


@dataclass(frozen=True)
class StateLayout:
    root: Path

    def log(self, namespace: str, pod: str, container: str) -> Path:
        return container_log_path(self.root, namespace, pod, container)

    def claim(self, namespace: str, claim: str) -> Path:
        return claim_path(self.root, namespace, claim)

    def pod(self, uid: str) -> PodDirs:
        return PodDirs(self.root / "pods" / uid)

    @property
    def pods(self) -> Path:
        return self.root / "pods"

    @property
    def hold_spec(self) -> Path:
        return self.root / "hold.json"
