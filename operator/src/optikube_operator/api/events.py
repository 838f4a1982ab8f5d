"""Progress events (Contract 3): what a trainer's rank 0 pushes to the report endpoint.

The endpoint parses every request body with `parse_event`; anything else (an unknown type or
field, a wrong type, a non-finite number, an oversized value) is refused naming the field, and
nothing is recorded.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, TypeAdapter

from optikube_operator.api.base import ApiModel, FreeValue
from optikube_operator.api.validation import FieldError, format_loc

MAX_EVENT_BYTES = 1024 * 1024
MAX_METRICS = 16
MAX_STEP = 10_000_000


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


# A metric value; null stands for a value the trainer could not compute (a diverged loss).
MetricValue = Annotated[float | None, AfterValidator(_finite)]
EventValues = Annotated[
    dict[Annotated[str, Field(max_length=64)], MetricValue], Field(max_length=MAX_METRICS)
]
TrialNumber = Annotated[int | None, Field(ge=0, le=1_000_000)]


class IntermediateEvent(ApiModel):
    """The values at the end of an epoch; the reply says whether to prune."""

    type: Literal["intermediate"]
    trial: TrialNumber
    stage: str = Field("train", max_length=64)
    epoch: int = Field(ge=0, le=MAX_STEP)
    step: int = Field(ge=0, le=MAX_STEP)
    values: EventValues = Field(default_factory=dict)


class StageEvent(ApiModel):
    """A pipeline stage started, completed, was retried or skipped."""

    type: Literal["stage"]
    trial: TrialNumber
    stage: str = Field(min_length=1, max_length=64)
    status: Literal["started", "completed", "retried", "skipped"]
    duration_seconds: float | None = Field(None, ge=0)
    summary: dict[str, FreeValue] = Field(default_factory=dict, max_length=64)


class FinalEvent(ApiModel):
    """The run finished: its objective values and its results document (Contract 4)."""

    type: Literal["final"]
    trial: TrialNumber
    values: EventValues
    results: dict[str, FreeValue] = Field(default_factory=dict, max_length=64)


class PrunedEvent(ApiModel):
    """The run stopped because the endpoint said prune."""

    type: Literal["pruned"]
    trial: TrialNumber
    epoch: int = Field(ge=0, le=MAX_STEP)
    values: EventValues = Field(default_factory=dict)


class FailedEvent(ApiModel):
    """The run failed; the message says why."""

    type: Literal["failed"]
    trial: TrialNumber
    message: str = Field(max_length=4096)


ProgressEvent = Annotated[
    IntermediateEvent | StageEvent | FinalEvent | PrunedEvent | FailedEvent, Field(discriminator="type")
]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(ProgressEvent)
EVENT_TYPES = ("intermediate", "stage", "final", "pruned", "failed")


class EventError(ValueError):
    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(error) for error in errors))


def parse_event(raw: Any) -> IntermediateEvent | StageEvent | FinalEvent | PrunedEvent | FailedEvent:
    """A validated event; raises EventError naming each offending field."""
    if not isinstance(raw, dict):
        raise EventError([FieldError("", "an event is a JSON object")])
    kind = raw.get("type")
    if kind not in EVENT_TYPES:
        raise EventError([FieldError("type", f"must be one of {', '.join(EVENT_TYPES)}, got {kind!r}")])
    from pydantic import ValidationError

    try:
        event = _ADAPTER.validate_python(raw, by_alias=True, by_name=False)
    except ValidationError as error:
        model = _MODELS[str(kind)]
        raise EventError(
            [FieldError(format_loc(model, tuple(e["loc"])[1:]), _message(e)) for e in error.errors()]
        ) from None
    assert isinstance(event, IntermediateEvent | StageEvent | FinalEvent | PrunedEvent | FailedEvent)
    return event


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    return str(error["msg"]).removeprefix("Value error, ")


_MODELS: dict[str, type[ApiModel]] = {
    "intermediate": IntermediateEvent,
    "stage": StageEvent,
    "final": FinalEvent,
    "pruned": PrunedEvent,
    "failed": FailedEvent,
}

AnyEvent = IntermediateEvent | StageEvent | FinalEvent | PrunedEvent | FailedEvent
