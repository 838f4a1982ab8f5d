"""Progress (Contract 3): what a trainer's rank 0 pushes to the operator's progress endpoint, one
JSON object per message: intermediate values, a stage's start or end, the final values, pruned,
failed.

The endpoint parses every request body with `parse_progress`; anything else (an unknown type or
field, a wrong type, a non-finite number, an oversized value) is refused naming the field, and
nothing is recorded.

The operator may answer intermediate progress before it is durable (it writes each trial's status
behind its replies, several steps at a time); its reply says which step is durable
(`durableStep`), and the trainer sends every later step again, as `unconfirmed`, with each
message until a reply covers it. So an operator killed between a reply and its write loses
nothing: its successor records those steps from the next message.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, TypeAdapter

from optikube_operator.api.base import ApiModel, FreeValue
from optikube_operator.api.validation import FieldError, format_loc

MAX_PROGRESS_BYTES = 1024 * 1024
MAX_METRICS = 16
MAX_STEP = 10_000_000


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


# A metric value; null stands for a value the trainer could not compute (a diverged loss).
MetricValue = Annotated[float | None, AfterValidator(_finite)]
ProgressValues = Annotated[
    dict[Annotated[str, Field(max_length=64)], MetricValue], Field(max_length=MAX_METRICS)
]
TrialNumber = Annotated[int | None, Field(ge=0, le=1_000_000)]
# a trainer keeps at most this many steps waiting for a reply that says they are durable
MAX_UNCONFIRMED = 64


class StepValues(ApiModel):
    """One step's values: what an intermediate progress reports, and what it carries again of the
    earlier ones no reply has yet said are durable."""

    stage: str = Field("train", max_length=64)
    epoch: int = Field(ge=0, le=MAX_STEP)
    step: int = Field(ge=0, le=MAX_STEP)
    values: ProgressValues = Field(default_factory=dict)


class UnconfirmedStep(StepValues):
    """An earlier intermediate progress of the same run that no reply has yet said is durable."""


class ResendingProgress(ApiModel):
    """A trial's progress that carries, as `unconfirmed`, its earlier steps no reply has yet said
    are durable (every type but `stage`, which only the pipeline sends)."""

    trial: TrialNumber
    unconfirmed: Annotated[list[UnconfirmedStep], Field(max_length=MAX_UNCONFIRMED)] = Field(
        default_factory=list
    )


class IntermediateProgress(ResendingProgress, StepValues):
    """The values at the end of an epoch; the reply says whether to prune, and which step is durable."""

    type: Literal["intermediate"]


class StageProgress(ApiModel):
    """A pipeline stage started, completed, was retried or skipped."""

    type: Literal["stage"]
    trial: TrialNumber
    stage: str = Field(min_length=1, max_length=64)
    status: Literal["started", "completed", "retried", "skipped"]
    duration_seconds: float | None = Field(None, ge=0)
    summary: dict[str, FreeValue] = Field(default_factory=dict, max_length=64)


class FinalProgress(ResendingProgress):
    """The run finished: its objective values and its results document (Contract 4)."""

    type: Literal["final"]
    values: ProgressValues
    results: dict[str, FreeValue] = Field(default_factory=dict, max_length=64)


class PrunedProgress(ResendingProgress):
    """The run stopped because the endpoint said prune."""

    type: Literal["pruned"]
    epoch: int = Field(ge=0, le=MAX_STEP)
    values: ProgressValues = Field(default_factory=dict)


class FailedProgress(ResendingProgress):
    """The run failed; the message says why."""

    type: Literal["failed"]
    message: str = Field(max_length=4096)


AnyProgress = IntermediateProgress | StageProgress | FinalProgress | PrunedProgress | FailedProgress
_ADAPTER: TypeAdapter[Any] = TypeAdapter(Annotated[AnyProgress, Field(discriminator="type")])
PROGRESS_TYPES = ("intermediate", "stage", "final", "pruned", "failed")


class ProgressError(ValueError):
    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(error) for error in errors))


def parse_progress(raw: Any) -> AnyProgress:
    """A validated progress message; raises ProgressError naming each offending field."""
    if not isinstance(raw, dict):
        raise ProgressError([FieldError("", "a progress message is a JSON object")])
    kind = raw.get("type")
    if kind not in PROGRESS_TYPES:
        raise ProgressError([FieldError("type", f"must be one of {', '.join(PROGRESS_TYPES)}, got {kind!r}")])
    from pydantic import ValidationError

    try:
        progress = _ADAPTER.validate_python(raw, by_alias=True, by_name=False)
    except ValidationError as error:
        model = _MODELS[str(kind)]
        raise ProgressError(
            [FieldError(format_loc(model, tuple(e["loc"])[1:]), _message(e)) for e in error.errors()]
        ) from None
    assert isinstance(progress, AnyProgress)
    return progress


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    return str(error["msg"]).removeprefix("Value error, ")


_MODELS: dict[str, type[ApiModel]] = {
    "intermediate": IntermediateProgress,
    "stage": StageProgress,
    "final": FinalProgress,
    "pruned": PrunedProgress,
    "failed": FailedProgress,
}
