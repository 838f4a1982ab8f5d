"""Shared building blocks of the API models: the base model, cross-field rules and scalar types.

Every cross-field rule is declared once, next to the model it constrains, as a `Rule`: the CEL
expression goes into the CRD (`x-kubernetes-validations`, checked by the apiserver) and the Python
predicate is what `optikube validate` and the operator run. Both sit side by side so a reviewer sees
at a glance that they say the same thing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainValidator,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel, to_snake
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema


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
        # YAML's .nan and .inf are floats to PyYAML, and every comparison with NaN is false, so a
        # NaN would pass each bound (`ge`, `lt`, `low < high`); the CRD's schema cannot refuse them
        # (JSON has no such numbers), so every float field of the API refuses them here.
        allow_inf_nan=False,
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

    def field_errors(self) -> Iterator[tuple[str, str]]:
        """Problems a `Rule` cannot place, as (field path relative to this model, message): those
        of one map entry (`requests["example.com/gpu"]`) or comparing entries of two maps. The
        apiserver checks them in the Pods derived from the spec, not in the CRD."""
        return iter(())


@dataclass(frozen=True)
class AsDict:
    """Annotates a `dict[str, Any]` field that is validated as `model` and kept as the camelCase
    dict the user wrote (without defaults filled in), so that builders copy it verbatim into
    Kubernetes objects. The CRD documents and checks it as `model`; `format_loc` and
    `rule_errors` walk it as `model` too."""

    model: type[ApiModel]

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(
            self.as_written,
            handler.generate_schema(self.model),
            serialization=core_schema.plain_serializer_function_ser_schema(dict),
        )

    @staticmethod
    def as_written(value: ApiModel) -> dict[str, Any]:
        return value.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)


def shown(value: object, limit: int = 40) -> str:
    """`repr(value)`, cut short: error messages quote what was written, never a megabyte of it."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


# The most epochs a field may count: of training, of a fine-tuning, of a trial pruner's resources.
MAX_EPOCHS = 10_000


def epoch_count(default: int | None, description: str, *, minimum: int = 1) -> Any:
    """A field that counts epochs: at least ``minimum``, at most MAX_EPOCHS."""
    return Field(default, ge=minimum, le=MAX_EPOCHS, description=description)


def count_set(*values: object) -> int:
    return sum(value is not None for value in values)


def listed(words: Sequence[str]) -> str:
    """`a, b or c`: alternatives as the API's descriptions and messages name them."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def exactly_one(what: str, *fields: str) -> Rule:
    """The rule of a block whose ``fields`` (camelCase) are alternatives: exactly one is set."""
    attributes = [to_snake(field) for field in fields]
    present = ", ".join(f"has(self.{field})" for field in fields)
    return Rule(
        cel=f"[{present}].filter(x, x).size() == 1",
        message=f"set exactly one {what}: {listed(fields)}",
        check=lambda s: count_set(*(getattr(s, name) for name in attributes)) == 1,
    )


DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# Go's time.Duration ends there (int64 nanoseconds); a trial timeout becomes the Job's
# activeDeadlineSeconds, an int64 the apiserver refuses to decode when it overflows.
MAX_DURATION_HOURS = 2562047


def _bounded_duration(text: str) -> str:
    seconds = duration_seconds(text)
    if seconds <= 0:
        raise PydanticCustomError("duration", "must be longer than 0s")
    if seconds > MAX_DURATION_HOURS * 3600:
        raise PydanticCustomError(
            "duration", f"must be at most {MAX_DURATION_HOURS}h (Go's longest duration)"
        )
    return text


Duration = Annotated[
    str,
    Field(pattern=DURATION_PATTERN, max_length=32, examples=["90s", "10m", "1h30m"]),
    AfterValidator(_bounded_duration),
]


def duration_seconds(text: str) -> float:
    """Seconds of a Go-style duration such as `1h30m` or `90s`."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 10m, 1h30m)")
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in _DURATION_PART.findall(text))


# A Kubernetes resource quantity (`500m`, `2Gi`, `1`): the pattern Kubernetes' own CRDs use, without
# the minus sign (Pods refuse negative requests and limits). The exponent form takes a whole
# number only, as Kubernetes' parser does (`1e3`, not `1e1.5`).
_NUMBER = r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
QUANTITY_PATTERN = rf"^\+?{_NUMBER}(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?[0-9]+))?$"
QUANTITY_HINT = "must be a quantity such as 500m, 2Gi or 4"


def _parse_quantity(value: object) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise PydanticCustomError("quantity", QUANTITY_HINT)
    if (isinstance(value, int) and value < 0) or (isinstance(value, str) and value.startswith("-")):
        raise PydanticCustomError("quantity", "must not be negative, got {value}", {"value": shown(value)})
    if isinstance(value, str) and not re.fullmatch(QUANTITY_PATTERN, value):
        raise PydanticCustomError("quantity", QUANTITY_HINT + ", got {value}", {"value": shown(value)})
    return value


Quantity = Annotated[
    int | str,
    PlainValidator(_parse_quantity),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "minimum": 0,
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    ),
]

# A free-form JSON value (model params, trial params): the CRD keeps it as it is.
FreeValue = Annotated[Any, WithJsonSchema({"x-kubernetes-preserve-unknown-fields": True})]

Timestamp = Annotated[datetime, Field(strict=False)]
