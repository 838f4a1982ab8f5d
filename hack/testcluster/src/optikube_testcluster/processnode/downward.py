"""The downward API: values of `fieldRef` and `resourceFieldRef`, for env vars and volume files.

Pure functions of the pod (as a dict) and what the node knows (pod IP, allocatable resources).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

# Kubernetes' quantity suffixes: decimal SI steps of 1000 (n .. E) and binary steps of 1024 (Ki .. Ei)
_DECIMAL = ("n", "u", "m", "", "k", "M", "G", "T", "P", "E")
_BINARY = ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_SUFFIXES = {
    **{suffix: Fraction(1000) ** (step - 3) for step, suffix in enumerate(_DECIMAL)},
    **{suffix: Fraction(1024) ** step for step, suffix in enumerate(_BINARY, start=1)},
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)$")
_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.*)'\]$")


class FieldError(ValueError):
    pass


def parse_quantity(text: str | int | float) -> Fraction:
    """A Kubernetes resource quantity ('500m', '1Gi', '2', '1e3') as an exact fraction."""
    match = _QUANTITY.match(str(text).strip())
    if not match:
        raise FieldError(f"not a quantity: {text!r}")
    number, exponent, suffix = match.groups()
    value = Fraction(number) * _SUFFIXES[suffix]
    if exponent:
        value *= Fraction(10) ** int(exponent[1:])
    return value


@dataclass(frozen=True)
class NodeFacts:
    """What the downward API needs from the node: addresses and allocatable resources."""

    pod_ip: str
    host_ip: str
    allocatable: dict[str, str]


def _map_text(values: dict[str, str]) -> str:
    # The downward API volume format: key="value" per line, keys sorted, values quoted like Go's %q.
    return "".join(f"{key}={json.dumps(values[key])}\n" for key in sorted(values))


def field_value(pod: dict[str, Any], path: str, facts: NodeFacts, whole_maps: bool = False) -> str:
    """The value of fieldRef.fieldPath. whole_maps allows metadata.labels/annotations (volumes)."""
    metadata, spec = pod.get("metadata", {}), pod.get("spec", {})
    simple = {
        "metadata.name": metadata.get("name", ""),
        "metadata.namespace": metadata.get("namespace", ""),
        "metadata.uid": metadata.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": facts.pod_ip,
        "status.podIPs": facts.pod_ip,
        "status.hostIP": facts.host_ip,
        "status.hostIPs": facts.host_ip,
    }
    if path in simple:
        return str(simple[path])
    subscript = _SUBSCRIPT.match(path)
    if subscript:
        kind, key = subscript.groups()
        return str((metadata.get(kind) or {}).get(key, ""))
    if whole_maps and path in ("metadata.labels", "metadata.annotations"):
        return _map_text(metadata.get(path.split(".")[1]) or {})
    raise FieldError(f"unsupported fieldPath {path!r}")


def _container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    spec = pod.get("spec", {})
    for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        if container.get("name") == name:
            return dict(container)
    raise FieldError(f"no container {name!r} in the pod")


def resource_value(pod: dict[str, Any], container_name: str, ref: dict[str, Any], facts: NodeFacts) -> str:
    """The value of a resourceFieldRef: the quantity divided by divisor, rounded up.

    An unset limit reads as the node's allocatable amount and an unset request as its limit (or 0),
    as the kubelet does.
    """
    container = _container(pod, ref.get("containerName") or container_name)
    kind, _, resource = str(ref["resource"]).partition(".")
    if kind not in ("limits", "requests") or not resource:
        raise FieldError(f"unsupported resource {ref['resource']!r}")
    resources = container.get("resources") or {}
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    if kind == "limits":
        raw = limits.get(resource, facts.allocatable.get(resource, "0"))
    else:
        raw = requests.get(resource, limits.get(resource, "0"))
    divisor = parse_quantity(ref.get("divisor") or "1")
    if divisor <= 0:
        raise FieldError(f"divisor must be positive, got {ref.get('divisor')!r}")
    return str(math.ceil(parse_quantity(raw) / divisor))
