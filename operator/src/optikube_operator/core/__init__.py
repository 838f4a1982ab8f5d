"""The orchestration core: pure functions from (settings, observed state, now) to actions, and
the shared rules of what a run's progress and exit mean.

Nothing here touches Kubernetes, processes, sockets or the clock; backends (Kubernetes and
local) observe the world, call :func:`decide`, and carry out the actions it returns.
"""

from optikube_operator.core.actions import (
    Action,
    Finish,
    StartPipeline,
    StartPreflight,
    StartTrial,
    StopPipeline,
    StopReason,
    StopTrial,
)
from optikube_operator.core.decide import decide, should_prune
from optikube_operator.core.observed import (
    ObservedPipeline,
    ObservedPreflight,
    ObservedStage,
    ObservedState,
    ObservedTrial,
    PipelineState,
    PreflightState,
    TrialState,
)
from optikube_operator.core.settings import JobSettings

__all__ = [
    "Action",
    "Finish",
    "JobSettings",
    "ObservedPipeline",
    "ObservedPreflight",
    "ObservedStage",
    "ObservedState",
    "ObservedTrial",
    "PipelineState",
    "PreflightState",
    "StartPipeline",
    "StartPreflight",
    "StartTrial",
    "StopPipeline",
    "StopReason",
    "StopTrial",
    "TrialState",
    "decide",
    "should_prune",
]
