"""The orchestration core: pure decisions from (spec, observed state, now) to actions.

Nothing here touches Kubernetes, processes, sockets or the clock; backends (Kubernetes and
local) observe the world, call :func:`decide`, and carry out the actions it returns.
"""

from optikube_operator.core.actions import Action, Finish, StartPipeline, StartTrial, StopTrial
from optikube_operator.core.decide import decide, should_prune
from optikube_operator.core.observed import ObservedState, ObservedTrial, PipelineState, TrialState

__all__ = [
    "Action",
    "Finish",
    "ObservedState",
    "ObservedTrial",
    "PipelineState",
    "StartPipeline",
    "StartTrial",
    "StopTrial",
    "TrialState",
    "decide",
    "should_prune",
]
