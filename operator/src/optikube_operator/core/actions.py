"""Actions the core asks a backend to carry out."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class StopReason(enum.StrEnum):
    PRUNED = "pruned"
    TIMED_OUT = "timedOut"
    JOB_FINISHED = "jobFinished"


class FinishReason(enum.StrEnum):
    """Why a job ended, or why its search ended before the final pipeline."""

    GOAL_REACHED = "GoalReached"
    MAX_TRIALS_REACHED = "MaxTrialsReached"
    SEARCH_SPACE_EXHAUSTED = "SearchSpaceExhausted"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    TOO_MANY_FAILURES = "TooManyFailures"
    NO_SUCCESSFUL_TRIAL = "NoSuccessfulTrial"
    NO_SEARCH = "NoSearchSpace"
    SUCCEEDED = "Succeeded"
    PIPELINE_FAILED = "PipelineFailed"


@dataclass(frozen=True)
class StartTrial:
    number: int
    params: Mapping[str, Any]
    # to be recorded with the trial and handed back in ObservedTrial.sampler_attrs
    sampler_attrs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StopTrial:
    number: int
    reason: StopReason


@dataclass(frozen=True)
class StartPipeline:
    params: Mapping[str, Any]
    # The trial whose params were chosen (None without a search) and why the search ended.
    trial_number: int | None = None
    search_ended: FinishReason = FinishReason.NO_SEARCH


@dataclass(frozen=True)
class Finish:
    reason: FinishReason
    succeeded: bool
    message: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


Action = StartTrial | StopTrial | StartPipeline | Finish
