"""How a job ends: the reasons its status conditions, its summary and its reports name.

Part of the API, not of the core, because everything that words a job's end (the reports, the
CLI, the status) needs them without the core's Optuna.
"""

from __future__ import annotations

import enum


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
    PREFLIGHT_FAILED = "PreflightFailed"
