"""The launch spec of one container (what nsinit.py `container` executes): its mounts, user,
command and environment. Pure: a function of the pod, the container and where its files are."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optikube_testcluster.processnode.envvars import ConfigError, expand
from optikube_testcluster.processnode.paths import PodDirs
from optikube_testcluster.processnode.volumes import volume_kind

DEFAULT_TERMINATION_PATH = "/dev/termination-log"

# Kubernetes mounts these read-only whatever the volumeMount says.
ALWAYS_READ_ONLY = ("configMap", "secret", "downwardAPI", "projected")


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    groups: tuple[int, ...]
    fs_group: int | None
    read_only_root: bool
    no_new_privs: bool


def identity(pod: dict[str, Any], container: dict[str, Any]) -> Identity:
    """runAsUser/runAsGroup (the container's over the pod's), fsGroup and supplementalGroups as
    supplementary groups, readOnlyRootFilesystem, allowPrivilegeEscalation: false."""
    pod_context = pod.get("spec", {}).get("securityContext") or {}
    context = container.get("securityContext") or {}

    def pick(key: str) -> Any:
        return context.get(key, pod_context.get(key))

    fs_group = pod_context.get("fsGroup")
    groups = [int(g) for g in pod_context.get("supplementalGroups") or []]
    if fs_group is not None and int(fs_group) not in groups:
        groups.insert(0, int(fs_group))
    return Identity(
        uid=int(pick("runAsUser") or 0),
        gid=int(pick("runAsGroup") or 0),
        groups=tuple(groups),
        fs_group=None if fs_group is None else int(fs_group),
        read_only_root=bool(context.get("readOnlyRootFilesystem")),
        no_new_privs=context.get("allowPrivilegeEscalation") is False,
    )


def volume_mounts(
    pod: dict[str, Any],
    container: dict[str, Any],
    dirs: PodDirs,
    volume_paths: Mapping[str, Path],
    env: Mapping[str, str],
) -> list[dict[str, Any]]:
    """Bind mounts, parents before children, then the files the node manages."""
    volumes = {v["name"]: v for v in pod.get("spec", {}).get("volumes") or []}
    mounts: list[dict[str, Any]] = []
    for mount in container.get("volumeMounts") or []:
        name = mount["name"]
        if name not in volumes or name not in volume_paths:
            raise ConfigError(f"volumeMount {name!r} names no volume of the pod")
        source = volume_paths[name]
        sub_path = mount.get("subPath") or expand(mount.get("subPathExpr") or "", dict(env))
        if sub_path:
            if sub_path.startswith("/") or ".." in sub_path.split("/"):
                raise ConfigError(f"subPath {sub_path!r} must be a relative path inside the volume")
            source = source / sub_path
        kind = volume_kind(volumes[name])
        read_only = (
            bool(mount.get("readOnly"))
            or kind in ALWAYS_READ_ONLY
            or bool((volumes[name][kind] or {}).get("readOnly"))  # persistentVolumeClaim, hostPath
        )
        mounts.append(
            {"source": str(source), "target": posixpath.normpath(mount["mountPath"]), "readonly": read_only}
        )
    mounts.sort(key=lambda m: (m["target"].count("/"), m["target"]))
    taken = {m["target"] for m in mounts}
    managed = (
        ("/etc/hosts", dirs.hosts),
        ("/etc/hostname", dirs.hostname),
        ("/etc/resolv.conf", dirs.resolv_conf),
    )
    for target, source in managed:
        if target not in taken:
            mounts.append({"source": str(source), "target": target, "readonly": False, "file": True})
    termination = container.get("terminationMessagePath") or DEFAULT_TERMINATION_PATH
    source = dirs.termination_log(container["name"])
    mounts.append({"source": str(source), "target": termination, "readonly": False, "file": True})
    return mounts


def launch_spec(
    *,
    pod: dict[str, Any],
    container: dict[str, Any],
    dirs: PodDirs,
    volume_paths: Mapping[str, Path],
    env: dict[str, str],
    argv: list[str],
    sandbox_pid: int,
    state_dir: Path,
    traversable: Sequence[str] = (),
    image: Sequence[str] = (),
) -> dict[str, Any]:
    who = identity(pod, container)
    name = container["name"]
    return {
        "sandbox_pid": sandbox_pid,
        "rootfs": str(dirs.rootfs(name)),
        "scratch": str(dirs.scratch(name)),
        "shm": str(dirs.shm),
        # The node's files (other pods' secrets and claims) are neither shown nor bind-mounted.
        "mask": [str(state_dir)],
        "exclude": [str(state_dir)],
        "mounts": volume_mounts(pod, container, dirs, volume_paths, env),
        "readonly_root": who.read_only_root,
        "cwd": container.get("workingDir") or "/",
        "uid": who.uid,
        "gid": who.gid,
        "groups": list(who.groups),
        "no_new_privs": who.no_new_privs,
        "traversable": list(traversable),
        # the host folders standing in for the image, shown at their paths even under /tmp
        "image": list(image),
        "argv": argv,
        "env": env,
        "result": str(dirs.result(name)),
    }
