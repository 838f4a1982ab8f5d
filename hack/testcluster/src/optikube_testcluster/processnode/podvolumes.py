"""Puts a pod's volumes on disk and keeps them current: files of configMap, secret, downwardAPI
and projected volumes (re-rendered on every sync, rewritten only when they change), projected
tokens (renewed before they expire), and the directories behind emptyDir, PVC and hostPath."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from optikube_testcluster.processnode.downward import NodeFacts
from optikube_testcluster.processnode.envvars import ConfigError, Lookup, expand
from optikube_testcluster.processnode.paths import PodDirs
from optikube_testcluster.processnode.rest import RestClient
from optikube_testcluster.processnode.tokens import IssuedToken, needs_refresh, request_token
from optikube_testcluster.processnode.volumes import (
    DIRECTORY_KINDS,
    TokenSource,
    VolumeFile,
    render_volume,
    volume_kind,
)

log = logging.getLogger(__name__)


def write_if_changed(path: Path, data: bytes, mode: int, gid: int | None) -> bool:
    """Writes path atomically (a rename inside the volume's directory, which the container sees
    through its bind mount) unless it already holds data with mode; True when it wrote."""
    try:
        if path.read_bytes() == data and (path.stat().st_mode & 0o7777) == mode:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.chown(partial, 0, gid if gid is not None else 0)
    partial.chmod(mode)
    partial.replace(path)
    return True


def share_with_group(directory: Path, gid: int) -> None:
    """fsGroup: the volume's files belong to the group, group-writable, new files inherit it."""
    for root, dirs, files in os.walk(directory):
        for name in [*dirs, *files, ""]:
            path = Path(root) / name
            if not name and path != directory:
                continue
            os.chown(path, -1, gid, follow_symlinks=False)
            mode = path.lstat().st_mode
            if path.is_dir() and not path.is_symlink():
                path.chmod((mode & 0o7777) | 0o2070)
            elif not path.is_symlink():
                path.chmod((mode & 0o7777) | 0o060)


class PodVolumes:
    def __init__(
        self,
        rest: RestClient,
        dirs: PodDirs,
        fs_group: int | None,
        claim_path: Callable[[str, str], Path | None],
    ) -> None:
        self.rest = rest
        self.dirs = dirs
        self.fs_group = fs_group
        self.claim_path = claim_path
        self.paths: dict[str, Path] = {}
        self._written: dict[str, set[Path]] = {}
        self._tokens: dict[tuple[str, str], IssuedToken] = {}

    def config_map(self) -> Lookup:
        return lambda ns, name: self.rest.get_or_none(f"/api/v1/namespaces/{ns}/configmaps/{name}")

    def secret(self) -> Lookup:
        return lambda ns, name: self.rest.get_or_none(f"/api/v1/namespaces/{ns}/secrets/{name}")

    def prepare(self, pod: dict[str, Any], facts: NodeFacts) -> dict[str, Path]:
        """Creates every volume; raises ConfigError while one cannot be made yet."""
        for volume in pod.get("spec", {}).get("volumes") or []:
            self.paths[volume["name"]] = self._directory(pod, volume)
        self.sync(pod, facts)
        return dict(self.paths)

    def _directory(self, pod: dict[str, Any], volume: dict[str, Any]) -> Path:
        kind, name = volume_kind(volume), volume["name"]
        if kind == "persistentVolumeClaim":
            source = volume[kind]
            path = self.claim_path(pod["metadata"]["namespace"], source["claimName"])
            if path is None:
                raise ConfigError(f'persistentvolumeclaim "{source["claimName"]}" is not bound yet')
            path.mkdir(parents=True, exist_ok=True)
            if self.fs_group is not None:
                share_with_group(path, self.fs_group)
            return path
        if kind == "hostPath":
            source = volume[kind]
            path = Path(source["path"])
            if source.get("type") == "DirectoryOrCreate":
                path.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                raise ConfigError(f"hostPath {path} does not exist")
            return path
        path = self.dirs.volume(name)
        path.mkdir(parents=True, exist_ok=True)
        if kind == "emptyDir":
            path.chmod(0o777 if self.fs_group is None else 0o2777)
            if self.fs_group is not None:
                os.chown(path, 0, self.fs_group)
        else:
            path.chmod(0o755)
        return path

    def sync(self, pod: dict[str, Any], facts: NodeFacts, now: dt.datetime | None = None) -> None:
        """Re-renders file volumes and renews tokens that are due."""
        now = now or dt.datetime.now(dt.UTC)
        for volume in pod.get("spec", {}).get("volumes") or []:
            content = render_volume(volume, pod, facts, self.config_map(), self.secret())
            if content is None:
                continue
            name = volume["name"]
            files = list(content.files) + [self._token_file(pod, name, t, now) for t in content.tokens]
            self._write(name, files)

    def _token_file(
        self, pod: dict[str, Any], volume: str, source: TokenSource, now: dt.datetime
    ) -> VolumeFile:
        key = (volume, source.path)
        token = self._tokens.get(key)
        if token is None or needs_refresh(token, now):
            token = self._tokens[key] = request_token(self.rest, pod, source, now)
            log.info(
                "token %s/%s of pod %s valid until %s",
                volume,
                source.path,
                pod["metadata"]["name"],
                token.expires_at,
            )
        return VolumeFile(source.path, token.token.encode(), source.mode)

    def make_sub_paths(self, pod: dict[str, Any], container: dict[str, Any], env: dict[str, str]) -> None:
        """Creates the subPath directories a container mounts that do not exist yet, as the
        kubelet does (world-writable: the pod may run as any user)."""
        volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        for mount in container.get("volumeMounts") or []:
            sub_path = mount.get("subPath") or expand(mount.get("subPathExpr") or "", env)
            volume = volumes.get(mount["name"])
            if sub_path and volume and volume_kind(volume) in DIRECTORY_KINDS and mount["name"] in self.paths:
                target = self.paths[mount["name"]] / sub_path
                if not target.exists():
                    target.mkdir(parents=True, exist_ok=True)
                    target.chmod(0o777)

    def _write(self, volume: str, files: list[VolumeFile]) -> None:
        base = self.paths[volume]
        wanted = {base / f.path for f in files}
        for stale in self._written.get(volume, set()) - wanted:
            stale.unlink(missing_ok=True)
        for item in files:
            write_if_changed(base / item.path, item.data, item.mode, self.fs_group)
        self._written[volume] = wanted
