"""What each volume of a pod holds: the files of configMap, secret, downwardAPI and projected
volumes (pure, from the objects they name), the tokens a projected volume asks for, and which
volumes are plain directories (emptyDir, persistentVolumeClaim, hostPath)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from optikube_testcluster.processnode.downward import NodeFacts, field_value, resource_value
from optikube_testcluster.processnode.envvars import ConfigError, Lookup

DEFAULT_MODE = 0o644
DEFAULT_TOKEN_SECONDS = 3600
DIRECTORY_KINDS = ("emptyDir", "persistentVolumeClaim", "hostPath")


@dataclass(frozen=True)
class VolumeFile:
    path: str  # relative to the volume's directory
    data: bytes
    mode: int


@dataclass(frozen=True)
class TokenSource:
    """A projected serviceAccountToken: fetched from the TokenRequest API, bound to the pod."""

    path: str
    audience: str | None
    expiration_seconds: int
    mode: int


@dataclass
class VolumeContent:
    files: list[VolumeFile] = field(default_factory=list)
    tokens: list[TokenSource] = field(default_factory=list)


def volume_kind(volume: dict[str, Any]) -> str:
    kinds = [key for key in volume if key != "name"]
    if len(kinds) != 1:
        raise ConfigError(f"volume {volume.get('name')!r} must have exactly one source, has {kinds}")
    return kinds[0]


def _key_files(
    data: dict[str, bytes], items: list[dict[str, Any]] | None, mode: int, what: str, optional: bool
) -> list[VolumeFile]:
    if not items:
        return [VolumeFile(key, value, mode) for key, value in sorted(data.items())]
    files = []
    for item in items:
        if item["key"] not in data:
            if optional:
                continue
            raise ConfigError(f"{what} has no key {item['key']!r}")
        files.append(VolumeFile(item["path"], data[item["key"]], int(item.get("mode", mode))))
    return files


def _object_files(
    source: dict[str, Any], namespace: str, lookup: Lookup, secret: bool, mode: int
) -> list[VolumeFile]:
    name = source["secretName" if secret and "secretName" in source else "name"]
    kind = "secret" if secret else "configmap"
    obj = lookup(namespace, name)
    optional = bool(source.get("optional"))
    if obj is None:
        if optional:
            return []
        raise ConfigError(f'{kind} "{name}" not found')
    if secret:
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    else:
        data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    mode = int(source.get("defaultMode", mode))
    return _key_files(data, source.get("items"), mode, f"{kind} {namespace}/{name}", optional)


def _downward_files(
    items: list[dict[str, Any]], pod: dict[str, Any], facts: NodeFacts, mode: int
) -> list[VolumeFile]:
    files = []
    for item in items:
        if "fieldRef" in item:
            value = field_value(pod, item["fieldRef"]["fieldPath"], facts, whole_maps=True)
        elif "resourceFieldRef" in item:
            ref = item["resourceFieldRef"]
            value = resource_value(pod, ref.get("containerName", ""), ref, facts)
        else:
            raise ConfigError(
                f"downwardAPI item {item.get('path')!r} has neither fieldRef nor resourceFieldRef"
            )
        files.append(VolumeFile(item["path"], value.encode(), int(item.get("mode", mode))))
    return files


def render_volume(
    volume: dict[str, Any], pod: dict[str, Any], facts: NodeFacts, config_maps: Lookup, secrets: Lookup
) -> VolumeContent | None:
    """The content of a file-backed volume; None for the directory kinds."""
    kind = volume_kind(volume)
    namespace = pod["metadata"]["namespace"]
    source = volume[kind] or {}
    if kind in DIRECTORY_KINDS:
        return None
    if kind in ("configMap", "secret"):
        return VolumeContent(
            _object_files(
                source,
                namespace,
                secrets if kind == "secret" else config_maps,
                kind == "secret",
                DEFAULT_MODE,
            )
        )
    if kind == "downwardAPI":
        mode = int(source.get("defaultMode", DEFAULT_MODE))
        return VolumeContent(_downward_files(source.get("items") or [], pod, facts, mode))
    if kind != "projected":
        raise ConfigError(f"volume {volume['name']!r}: {kind} volumes are not supported by the process node")
    mode = int(source.get("defaultMode", DEFAULT_MODE))
    content = VolumeContent()
    for projection in source.get("sources") or []:
        if "serviceAccountToken" in projection:
            token = projection["serviceAccountToken"]
            content.tokens.append(
                TokenSource(
                    token["path"],
                    token.get("audience") or None,
                    int(token.get("expirationSeconds", DEFAULT_TOKEN_SECONDS)),
                    mode,
                )
            )
        elif "configMap" in projection:
            content.files += _object_files(projection["configMap"], namespace, config_maps, False, mode)
        elif "secret" in projection:
            content.files += _object_files(projection["secret"], namespace, secrets, True, mode)
        elif "downwardAPI" in projection:
            content.files += _downward_files(projection["downwardAPI"].get("items") or [], pod, facts, mode)
        else:
            raise ConfigError(f"projected volume {volume['name']!r}: unsupported source {sorted(projection)}")
    return content


def memory_volumes(pod: dict[str, Any]) -> list[str]:
    """The emptyDir volumes with medium Memory: tmpfs in the pod's own mount namespace."""
    return [
        volume["name"]
        for volume in pod.get("spec", {}).get("volumes") or []
        if "emptyDir" in volume and (volume["emptyDir"] or {}).get("medium") == "Memory"
    ]


def tmpfs_options(volume: dict[str, Any], fs_group: int | None) -> str:
    options = ["mode=1777" if fs_group is None else f"mode=2777,gid={fs_group}"]
    limit = (volume.get("emptyDir") or {}).get("sizeLimit")
    if limit:
        from optikube_testcluster.processnode.downward import parse_quantity

        options.append(f"size={int(parse_quantity(limit))}")
    return ",".join(options)
