"""Container resources as the apiserver validates them in a Pod: resource names, quantity values,
and how requests relate to limits (k8s.io/kubernetes pkg/apis/core/validation,
ValidateResourceRequirements). The CRD sees requests and limits as maps of quantities; what it
cannot see would otherwise surface only when the operator creates the run's Job.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from optikube_operator.api.base import QUANTITY_PATTERN, shown
from optikube_operator.api.formats import MAX_SUBDOMAIN, qualified_name_problem

STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage")
HUGEPAGES_PREFIX = "hugepages-"
# Kubernetes caps every quantity there (and rounds up to nanounits).
MAX_QUANTITY = Decimal(2**63 - 1)
_NANO = Decimal("1e-9")
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_PARTS = re.compile(r"^\+?([0-9]*\.?[0-9]*)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][-+]?[0-9]+)?$")
# An exponent is parsed as a 32-bit integer; anything beyond +-40 is capped or rounded anyway.
_MAX_EXPONENT = 2**31 - 1


def quantity_value(quantity: int | str) -> Decimal | None:
    """The value of a quantity as Kubernetes computes it, or None if Kubernetes cannot parse it."""
    if isinstance(quantity, int):
        return min(Decimal(max(quantity, 0)), MAX_QUANTITY)
    if not re.fullmatch(QUANTITY_PATTERN, quantity):
        return None
    match = _PARTS.fullmatch(quantity)
    if match is None:
        return None
    number, suffix = Decimal(match.group(1)), match.group(2) or ""
    if suffix in _BINARY:
        value = number * (2 ** _BINARY[suffix])
    else:
        exponent = _DECIMAL[suffix] if suffix in _DECIMAL else int(suffix[1:])
        if abs(exponent) > _MAX_EXPONENT:
            return None
        if number == 0:
            return Decimal(0)
        if exponent > 40:
            return MAX_QUANTITY
        if exponent < -40:
            return _NANO
        value = number.scaleb(exponent)
    if value > MAX_QUANTITY:
        return MAX_QUANTITY
    if value and value < _NANO:
        return _NANO
    return value


def _hugepage_size(name: str) -> Decimal | None:
    value = quantity_value(name.removeprefix(HUGEPAGES_PREFIX))
    return value if value is not None and value > 0 and value == value.to_integral_value() else None


def is_extended(name: str) -> bool:
    """Device plugins' resources (example.com/device): whole numbers, requests equal to limits."""
    return "/" in name


def overcommit_allowed(name: str) -> bool:
    return not is_extended(name) and not name.startswith(HUGEPAGES_PREFIX)


def resource_name_problem(name: str) -> str | None:
    problem = qualified_name_problem(name)
    if problem:
        return f"is not a resource name: it {problem}"
    if "/" not in name:
        if name in STANDARD_RESOURCES:
            return None
        if name.startswith(HUGEPAGES_PREFIX) and _hugepage_size(name) is not None:
            return None
        return (
            "is not a container resource: use cpu, memory, ephemeral-storage, hugepages-<size> or an"
            " extended resource such as example.com/device"
        )
    if "kubernetes.io/" in name:
        return "is in the kubernetes.io domain, which Kubernetes keeps for its own resources"
    if name.startswith("requests."):
        return "starts with requests., which quotas keep for themselves"
    # Quota tracks an extended resource as requests.<name>, which must itself be a qualified name.
    if len("requests." + name.split("/", 1)[0]) > MAX_SUBDOMAIN:
        return f"has a prefix longer than {MAX_SUBDOMAIN - len('requests.')} characters"
    return None


def _check_resource_name(name: str) -> str:
    problem = resource_name_problem(name)
    if problem:
        raise PydanticCustomError("resource_name", "{name} " + problem, {"name": shown(name)})
    return name


ResourceName = Annotated[str, AfterValidator(_check_resource_name)]


def requirement_errors(
    requests: Mapping[str, int | str], limits: Mapping[str, int | str]
) -> Iterator[tuple[str, str]]:
    """(field path, message) of each problem of a container's requests and limits."""
    values = {
        (kind, name): quantity_value(quantity)
        for kind, entries in (("requests", requests), ("limits", limits))
        for name, quantity in entries.items()
    }
    for (kind, name), value in values.items():
        where = f'{kind}["{name}"]'
        if value is None:
            yield where, "is not a quantity Kubernetes can parse (an exponent is a whole 32-bit number)"
            continue
        if is_extended(name) and value != value.to_integral_value():
            yield where, f"{name} is an extended resource: its quantity must be a whole number"
        if name.startswith(HUGEPAGES_PREFIX):
            size = _hugepage_size(name)
            if size is not None and value % size:
                yield where, f"must be a whole multiple of the page size of {name}"
    for name in requests:
        request, limit = values[("requests", name)], values.get(("limits", name))
        where = f'requests["{name}"]'
        if request is None:
            continue
        if name not in limits:
            if not overcommit_allowed(name):
                yield where, f"{name} cannot be overcommitted: set limits[{name!r}] to the same quantity"
        elif limit is not None and not overcommit_allowed(name) and request != limit:
            yield where, f"{name} cannot be overcommitted: the request must equal the limit"
        elif limit is not None and request > limit:
            yield where, f"must be at most the limit of {name} ({limits[name]})"
    hugepages = [name for name in (*requests, *limits) if name.startswith(HUGEPAGES_PREFIX)]
    if hugepages and not any(name in (*requests, *limits) for name in ("cpu", "memory")):
        kind = "requests" if hugepages[0] in requests else "limits"
        yield f'{kind}["{hugepages[0]}"]', "hugepages need a cpu or memory request or limit as well"
