"""Kubernetes' string formats, for the spec fields that end up in the Jobs and Pods of a run.

The apiserver checks names, label keys and values and image references only in the objects the
operator derives from a spec, when it is too late to name the spec's field; these types check
them when the spec is validated. Each check mirrors k8s.io/apimachinery/pkg/util/validation (or,
for images, the distribution reference grammar the kubelet parses), sometimes a little stricter,
never looser. The patterns go into the CRD (RE2 syntax, so no look-arounds); what a pattern cannot
say (the length of each part of a qualified name) only the Python side checks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from optikube_operator.api.base import shown


def _repeated(part: str, separator: str) -> str:
    """One or more ``part``s with ``separator`` between them."""
    return rf"{part}(?:{separator}{part})*"


_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_LABEL_PATTERN = rf"^{_LABEL}$"
DNS1035_LABEL_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
_SUBDOMAIN = _repeated(_LABEL, r"\.")
DNS_SUBDOMAIN_PATTERN = rf"^{_SUBDOMAIN}$"
_NAME_PART = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
QUALIFIED_NAME_PATTERN = rf"^({_SUBDOMAIN}/)?{_NAME_PART}$"
LABEL_VALUE_PATTERN = rf"^({_NAME_PART})?$"
MAX_LABEL = 63
MAX_SUBDOMAIN = 253
MAX_QUALIFIED_NAME = MAX_SUBDOMAIN + 1 + MAX_LABEL

# distribution/reference: [domain[:port]/]path[:tag][@digest]. `\w` is spelled out: Python's is
# Unicode, Go's is ASCII.
_ALNUM = r"[a-z0-9]+"
_PATH_COMPONENT = _repeated(_ALNUM, "(?:[._]|__|-+)")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = _repeated(_DOMAIN_COMPONENT, r"\.")
_DOMAIN = rf"(?:{_DOMAIN_NAME}|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_PATH = _repeated(_PATH_COMPONENT, "/")
IMAGE_PATTERN = rf"^(?:{_DOMAIN}/)?{_PATH}(?::{_TAG})?(?:@{_DIGEST})?$"
MAX_IMAGE = 512
# The repository name (without tag and digest) of a reference.
_MAX_IMAGE_NAME = 255


# Each check returns what is wrong as a phrase that follows the value: "'Bad_Name' is not a DNS label".
_DNS_LABEL_TEXT = "lowercase letters, digits and '-', starting and ending alphanumeric"
_NAME_PART_TEXT = "letters, digits, '-', '_' and '.', starting and ending alphanumeric"


def _longer(value: str, limit: int) -> str | None:
    return f"is longer than {limit} characters" if len(value) > limit else None


def dns_label_problem(value: str, limit: int = MAX_LABEL) -> str | None:
    if not re.fullmatch(DNS_LABEL_PATTERN, value):
        return f"is not a DNS label ({_DNS_LABEL_TEXT})"
    return _longer(value, limit)


def dns1035_label_problem(value: str, limit: int = MAX_LABEL) -> str | None:
    if not re.fullmatch(DNS1035_LABEL_PATTERN, value):
        return (
            "is not a DNS-1035 label (lowercase letters, digits and '-', starting with a letter and"
            " ending alphanumeric)"
        )
    return _longer(value, limit)


def dns_subdomain_problem(value: str, limit: int = MAX_SUBDOMAIN) -> str | None:
    if not re.fullmatch(DNS_SUBDOMAIN_PATTERN, value):
        return f"is not a DNS subdomain (dot-separated labels of {_DNS_LABEL_TEXT})"
    return _longer(value, limit)


def qualified_name_problem(value: str) -> str | None:
    """A label key, annotation key, taint key or topology key: `[prefix/]name`."""
    prefix, slash, name = value.rpartition("/")
    what = "is not a qualified name such as example.com/name"
    if not re.fullmatch(_NAME_PART, name):
        return f"{what}: its name part must be {_NAME_PART_TEXT}"
    if len(name) > MAX_LABEL:
        return f"{what}: its name part is longer than {MAX_LABEL} characters"
    if slash and (not re.fullmatch(DNS_SUBDOMAIN_PATTERN, prefix) or len(prefix) > MAX_SUBDOMAIN):
        return f"{what}: its prefix must be a DNS subdomain of at most {MAX_SUBDOMAIN} characters"
    return None


def label_value_problem(value: str) -> str | None:
    if not re.fullmatch(LABEL_VALUE_PATTERN, value):
        return f"is not a label value (empty, or {_NAME_PART_TEXT})"
    return _longer(value, MAX_LABEL)


def image_problem(value: str) -> str | None:
    if value != value.strip():
        return "has leading or trailing whitespace"
    if len(value) > MAX_IMAGE:
        return f"is longer than {MAX_IMAGE} characters"
    if not re.fullmatch(IMAGE_PATTERN, value):
        return (
            "is not an image reference such as registry.example.com/team/trainer:1.0 (a lowercase"
            " repository, an optional :tag and @sha256:digest, no whitespace)"
        )
    name = value.split("@", 1)[0]
    if name.rfind(":") > name.rfind("/"):
        name = name[: name.rfind(":")]
    if len(name) > _MAX_IMAGE_NAME:
        return f"has a repository name longer than {_MAX_IMAGE_NAME} characters"
    return None


def _checked(problem: Callable[[str], str | None]) -> AfterValidator:
    def check(value: str) -> str:
        found = problem(value)
        if found:
            raise PydanticCustomError("format", "{value} " + found, {"value": shown(value)})
        return value

    return AfterValidator(check)


def _string(pattern: str, max_length: int) -> WithJsonSchema:
    # The check itself is the AfterValidator's (with a readable message); the CRD gets the pattern.
    return WithJsonSchema({"type": "string", "maxLength": max_length, "pattern": pattern})


DnsLabel = Annotated[str, _checked(dns_label_problem), _string(DNS_LABEL_PATTERN, MAX_LABEL)]
DnsSubdomain = Annotated[str, _checked(dns_subdomain_problem), _string(DNS_SUBDOMAIN_PATTERN, MAX_SUBDOMAIN)]
QualifiedName = Annotated[
    str, _checked(qualified_name_problem), _string(QUALIFIED_NAME_PATTERN, MAX_QUALIFIED_NAME)
]
LabelValue = Annotated[str, _checked(label_value_problem), _string(LABEL_VALUE_PATTERN, MAX_LABEL)]
ImageReference = Annotated[str, _checked(image_problem), _string(IMAGE_PATTERN, MAX_IMAGE)]
