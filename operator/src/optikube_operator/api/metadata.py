"""Object metadata as the apiserver validates it for any object (ValidateObjectMeta): the CRD has
no schema for `metadata`, so these are the only checks before `kubectl apply` or the operator.

Every field Kubernetes defines is known (the operator validates bodies as the apiserver returns
them, with uid, managedFields and kopf's annotations); any other is an unknown field, as kubectl's
strict field validation says. Names are checked by each kind (a job's name becomes its Jobs',
Services' and pods' names).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pydantic import Field

from optikube_operator.api.base import ApiModel, FreeValue, shown
from optikube_operator.api.formats import (
    DnsLabel,
    LabelValue,
    QualifiedName,
    dns1035_label_problem,
    qualified_name_problem,
)

# k8s.io/apimachinery TotalAnnotationSizeLimitB
MAX_ANNOTATIONS_BYTES = 256 * 1024
RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


class OwnerReference(ApiModel):
    """An object this one belongs to (garbage collection)."""

    api_version: str = Field(max_length=316, description="API version of the owner.")
    kind: str = Field(max_length=63, description="Kind of the owner.")
    name: str = Field(max_length=253, description="Name of the owner.")
    uid: str = Field(max_length=64, description="UID of the owner.")
    controller: bool | None = Field(None, description="Whether the owner is the managing controller.")
    block_owner_deletion: bool | None = Field(None, description="Whether deletion waits for this object.")


class ObjectMeta(ApiModel):
    """Kubernetes object metadata: what optikube reads, and the fields the apiserver sets."""

    name: str | None = Field(None, max_length=253, description="Object name.")
    generate_name: str | None = Field(None, max_length=253, description="Prefix of a generated name.")
    namespace: DnsLabel | None = Field(None, description="Namespace.")
    labels: dict[QualifiedName, LabelValue] = Field(
        default_factory=dict, description="Labels: label keys to label values."
    )
    annotations: dict[str, str] = Field(default_factory=dict, description="Annotations.")
    uid: str | None = Field(None, max_length=64, description="Set by the apiserver.")
    resource_version: str | None = Field(None, max_length=64, description="Set by the apiserver.")
    generation: int | None = Field(None, ge=0, description="Set by the apiserver.")
    creation_timestamp: str | None = Field(
        None, pattern=RFC3339_PATTERN, description="Set by the apiserver (RFC 3339)."
    )
    deletion_timestamp: str | None = Field(
        None, pattern=RFC3339_PATTERN, description="Set by the apiserver (RFC 3339)."
    )
    deletion_grace_period_seconds: int | None = Field(None, ge=0, description="Set by the apiserver.")
    owner_references: list[OwnerReference] = Field(default_factory=list, description="Owners.")
    finalizers: list[QualifiedName] = Field(default_factory=list, description="Finalizers.")
    managed_fields: list[dict[str, FreeValue]] = Field(
        default_factory=list, description="Set by the apiserver (server-side apply)."
    )
    self_link: str | None = Field(None, description="Deprecated; set by old apiservers.")

    def field_errors(self) -> Iterator[tuple[str, str]]:
        # Annotation keys are checked lowercased, as the apiserver does.
        for key in self.annotations:
            problem = qualified_name_problem(key.lower())
            if problem:
                yield f'annotations["{key}"]', f"the key {problem}"
        size = sum(len(key) + len(value) for key, value in self.annotations.items())
        if size > MAX_ANNOTATIONS_BYTES:
            yield (
                "annotations",
                f"annotations total {size} bytes; at most {MAX_ANNOTATIONS_BYTES} are allowed",
            )


# The apiserver appends five random characters to a generateName.
GENERATED_SUFFIX = 5
_PREFIX_PATTERN = re.compile(r"^[a-z][-a-z0-9]*$")


def name_errors(metadata: ObjectMeta, limit: int, *, name: bool = True) -> Iterator[tuple[str, str]]:
    """(field, message) when the name (or the generateName prefix) cannot name the objects derived
    from it: a DNS-1035 label of at most `limit` characters. `name=False` where a `Rule` checks
    the name itself."""
    if metadata.name is not None:
        if not name:
            return
        problem = dns1035_label_problem(metadata.name, limit)
        if problem:
            yield "metadata.name", f"{shown(metadata.name)} {problem}"
    elif metadata.generate_name is not None:
        prefix, most = metadata.generate_name, limit - GENERATED_SUFFIX
        if not _PREFIX_PATTERN.fullmatch(prefix):
            yield (
                "metadata.generateName",
                f"{shown(prefix)} must start with a lowercase letter and hold only lowercase letters,"
                " digits and '-'",
            )
        elif len(prefix) > most:
            yield "metadata.generateName", f"is longer than {most} characters (5 random ones are added)"


def meta_name(metadata: Any) -> str | None:
    """The name or generateName of raw metadata, if it has either."""
    if not isinstance(metadata, dict):
        return None
    name = metadata.get("name") or metadata.get("generateName")
    return name if isinstance(name, str) else None
