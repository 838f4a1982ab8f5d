"""Actions the core asks a backend to carry out."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from optikube_operator.api.outcomes import FinishReason
from optikube_operator.core.observed import PipelineState, TrialState


class StopReason(enum.StrEnum):
    PRUNED = "pruned"
    TIMED_OUT = "timedOut"
    JOB_FINISHED = "jobFinished"
    SUSPENDED = "suspended"

    @property
    def trial_state(self) -> TrialState:
        """The state a trial stopped for this reason is recorded in."""
        return _STOPPED_TRIAL_STATES[self]

    @property
    def message(self) -> str:
        return _STOP_MESSAGES[self]


_STOPPED_TRIAL_STATES = {
    StopReason.PRUNED: TrialState.PRUNED,
    StopReason.TIMED_OUT: TrialState.TIMED_OUT,
    StopReason.JOB_FINISHED: TrialState.STOPPED,
    StopReason.SUSPENDED: TrialState.SUSPENDED,
}
_STOP_MESSAGES = {
    StopReason.PRUNED: "stopped by the pruner",
    StopReason.TIMED_OUT: "ran longer than spec.tuning.trialTimeout",
    StopReason.JOB_FINISHED: "the search ended before the trial finished",
    StopReason.SUSPENDED: "suspended by spec.suspend; runs again on resume",
}


@dataclass(frozen=True)
class StartPreflight:
    """Load the data and build the models once, before the first trial (or the pipeline)."""


@dataclass(frozen=True)
class StartTrial:
    """Run trial ``number``: a new one, or a suspended one again (same params)."""

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
class StopPipeline:
    """Stop the running pipeline (spec.suspend); it resumes from its last finished stage."""

    reason: StopReason = StopReason.SUSPENDED

    @property
    def pipeline_state(self) -> PipelineState:
        return PipelineState.SUSPENDED


@dataclass(frozen=True)
class Finish:
    reason: FinishReason
    succeeded: bool
    message: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


Action = StartPreflight | StartTrial | StopTrial | StartPipeline | StopPipeline | Finish
