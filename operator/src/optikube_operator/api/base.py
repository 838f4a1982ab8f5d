"""Shared building blocks of the API models: the base model, cross-field rules and scalar types.

Every cross-field rule is declared once, next to the model it constrains, as a `Rule`: the CEL
expression goes into the CRD (`x-kubernetes-validations`, checked by the apiserver) and the Python
predicate is what `optikube validate` and the operator run. Both sit side by side so a reviewer sees
at a glance that they say the same thing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler, PlainValidator, WithJsonSchema
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError


@dataclass(frozen=True)
class Rule:
    """A cross-field rule, enforced by the apiserver (CEL) and by Python (`check`)."""

    # None where CEL cannot see the fields involved (untyped values such as categorical choices).
    cel: str | None
    message: str
    # The Python mirror; None where validation.py checks the same thing more precisely (naming the
    # offending map key, which a CEL fieldPath cannot).
    check: Callable[[Any], bool] | None = None
    # Path of the offending field relative to the model, in CEL fieldPath syntax without the
    # leading dot (`low`, `tuning.pruner.type`); empty means the model itself.
    field: str = ""
    # The apiserver accepts a fieldPath only into the schema, and metadata has none.
    crd_field_path: bool = True

    def to_crd(self) -> dict[str, str]:
        assert self.cel is not None
        entry = {"rule": self.cel, "message": self.message}
        if self.field and self.crd_field_path:
            entry["fieldPath"] = "." + self.field
        return entry


class ApiModel(BaseModel):
    """Base of every API object: camelCase keys, unknown fields are errors, defaults validated."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        validate_default=True,
        # YAML already carries types: "yes" is not a boolean and "3" is not an integer here, as
        # for the apiserver. Timestamps opt out (they arrive as RFC 3339 strings).
        strict=True,
    )
    RULES: ClassVar[tuple[Rule, ...]] = ()

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        if cls.RULES:
            target["x-kubernetes-validations"] = [rule.to_crd() for rule in cls.RULES if rule.cel]
        return schema

    def to_dict(self) -> dict[str, Any]:
        """The camelCase JSON form with defaults filled in and unset optional blocks left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def count_set(*values: object) -> int:
    return sum(value is not None for value in values)


DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

Duration = Annotated[
    str,
    Field(pattern=DURATION_PATTERN, max_length=32, examples=["90s", "10m", "1h30m"]),
]


def duration_seconds(text: str) -> float:
    """Seconds of a Go-style duration such as `1h30m` or `90s`."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 10m, 1h30m)")
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in _DURATION_PART.findall(text))


# Kubernetes resource quantity (`500m`, `2Gi`, `1`), the same pattern Kubernetes' own CRDs use.
_NUMBER = r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
QUANTITY_PATTERN = rf"^(\+|-)?{_NUMBER}(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?{_NUMBER}))?$"


def _parse_quantity(value: object) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise PydanticCustomError("quantity", "must be a quantity such as 500m, 2Gi or 4")
    if isinstance(value, str) and not re.fullmatch(QUANTITY_PATTERN, value):
        raise PydanticCustomError(
            "quantity", "must be a quantity such as 500m, 2Gi or 4, got {value!r}", {"value": value}
        )
    return value


Quantity = Annotated[
    int | str,
    PlainValidator(_parse_quantity),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    ),
]

# A free-form JSON value (model params, trial params): the CRD keeps it as it is.
FreeValue = Annotated[Any, WithJsonSchema({"x-kubernetes-preserve-unknown-fields": True})]

Timestamp = Annotated[datetime, Field(strict=False)]

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
