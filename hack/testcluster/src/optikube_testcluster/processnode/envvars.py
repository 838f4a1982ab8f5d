"""A container's environment and command line, built as the kubelet builds them: service links,
envFrom, env with `$(VAR)` references, valueFrom (fieldRef, resourceFieldRef, configMapKeyRef,
secretKeyRef), then what a runtime adds (PATH, HOSTNAME, HOME). Pure functions."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from typing import Any

from optikube_testcluster.processnode.downward import NodeFacts, field_value, resource_value

# (namespace, name) -> the object, or None when it does not exist
Lookup = Callable[[str, str], dict[str, Any] | None]
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.\-]*)\)")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


class ConfigError(ValueError):
    """The pod refers to a ConfigMap, Secret or key that does not exist (CreateContainerConfigError)."""


class StartError(ConfigError):
    """The container cannot run at all (no command): it terminates with reason StartError."""


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: defined names are replaced, $$ escapes, the rest stays as is."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _REFERENCE.sub(replace, text)


def _env_name(service: str) -> str:
    return service.upper().replace("-", "_")


def _one_service(service: dict[str, Any]) -> dict[str, str]:
    spec = service.get("spec", {})
    ip, ports = spec.get("clusterIP"), spec.get("ports") or []
    if not ip or ip == "None" or not ports:
        return {}
    name = _env_name(service["metadata"]["name"])
    first = ports[0]
    env = {
        f"{name}_SERVICE_HOST": ip,
        f"{name}_SERVICE_PORT": str(first["port"]),
        f"{name}_PORT": f"{first.get('protocol', 'TCP').lower()}://{ip}:{first['port']}",
    }
    for port in ports:
        protocol = port.get("protocol", "TCP")
        if port.get("name"):
            env[f"{name}_SERVICE_PORT_{_env_name(port['name'])}"] = str(port["port"])
        prefix = f"{name}_PORT_{port['port']}_{protocol.upper()}"
        env[prefix] = f"{protocol.lower()}://{ip}:{port['port']}"
        env[f"{prefix}_PROTO"] = protocol.lower()
        env[f"{prefix}_PORT"] = str(port["port"])
        env[f"{prefix}_ADDR"] = ip
    return env


def service_env(
    services: Sequence[dict[str, Any]], namespace: str, enable_links: bool = True
) -> dict[str, str]:
    """The docker-links style variables: the `kubernetes` Service always, the pod's namespace's
    Services when enableServiceLinks (the default)."""
    chosen: dict[str, dict[str, Any]] = {}
    for service in services:
        metadata = service.get("metadata", {})
        name, ns = metadata.get("name", ""), metadata.get("namespace", "")
        if ns == "default" and name == "kubernetes":
            chosen.setdefault(name, service)
        elif ns == namespace and enable_links:
            chosen[name] = service
    env: dict[str, str] = {}
    for service in chosen.values():
        env.update(_one_service(service))
    return env


def _data(obj: dict[str, Any], secret: bool) -> dict[str, str]:
    if not secret:
        return {k: str(v) for k, v in (obj.get("data") or {}).items()}
    return {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}


def _key_ref(ref: dict[str, Any], namespace: str, lookup: Lookup, secret: bool) -> str | None:
    kind = "Secret" if secret else "ConfigMap"
    obj = lookup(namespace, ref["name"])
    optional = bool(ref.get("optional"))
    if obj is None:
        if optional:
            return None
        raise ConfigError(f'{kind.lower()} "{ref["name"]}" not found')
    data = _data(obj, secret)
    if ref["key"] not in data:
        if optional:
            return None
        raise ConfigError(f"couldn't find key {ref['key']} in {kind} {namespace}/{ref['name']}")
    return data[ref["key"]]


def container_env(
    pod: dict[str, Any],
    container: dict[str, Any],
    facts: NodeFacts,
    config_maps: Lookup,
    secrets: Lookup,
    services: Sequence[dict[str, Any]],
) -> dict[str, str]:
    namespace = pod["metadata"]["namespace"]
    links = pod.get("spec", {}).get("enableServiceLinks", True) is not False
    from_services = service_env(services, namespace, links)
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, lookup, secret in (("configMapRef", config_maps, False), ("secretRef", secrets, True)):
            ref = source.get(kind)
            if not ref:
                continue
            obj = lookup(namespace, ref["name"])
            if obj is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f'{"secret" if secret else "configmap"} "{ref["name"]}" not found')
            for key, data in _data(obj, secret).items():
                if _ENV_NAME.match(prefix + key):
                    env[prefix + key] = data
    for item in container.get("env") or []:
        name = item["name"]
        if "valueFrom" not in item:
            env[name] = expand(str(item.get("value", "")), {**from_services, **env})
            continue
        source = item["valueFrom"]
        value: str | None
        if "fieldRef" in source:
            value = field_value(pod, source["fieldRef"]["fieldPath"], facts)
        elif "resourceFieldRef" in source:
            value = resource_value(pod, container["name"], source["resourceFieldRef"], facts)
        elif "configMapKeyRef" in source:
            value = _key_ref(source["configMapKeyRef"], namespace, config_maps, secret=False)
        elif "secretKeyRef" in source:
            value = _key_ref(source["secretKeyRef"], namespace, secrets, secret=True)
        else:
            raise ConfigError(f"env {name}: unsupported valueFrom {sorted(source)}")
        if value is not None:
            env[name] = value
    return {**from_services, **env}


def runtime_env(env: dict[str, str], hostname: str, uid: int, path_prefix: str) -> dict[str, str]:
    """What the container runtime adds: the image's PATH (here the project's venv first), HOSTNAME
    and HOME, unless the pod sets them itself."""
    result = dict(env)
    result.setdefault("PATH", f"{path_prefix}:{DEFAULT_PATH}" if path_prefix else DEFAULT_PATH)
    result.setdefault("HOSTNAME", hostname)
    result.setdefault("HOME", "/root" if uid == 0 else "/")
    return result


def command_line(container: dict[str, Any], env: dict[str, str]) -> list[str]:
    """command + args with $(VAR) expanded; images are not run, so a command is required."""
    command = list(container.get("command") or [])
    if not command:
        raise StartError(
            f"container {container.get('name')!r} has no command: a process node runs commands, not images"
        )
    return [expand(str(part), env) for part in [*command, *(container.get("args") or [])]]
