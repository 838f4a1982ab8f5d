"""The optikube client: submit OptimizationJobs and follow them from Python, on this machine or on
a cluster, with one interface (`Client.local(...)`, `Client.cluster(...)`). `import optikube`
re-exports it. It imports neither torch nor Optuna until a local job's state is read."""

from optikube_operator.client.client import Client
from optikube_operator.client.errors import ClientError, ErrorReason
from optikube_operator.client.handle import JobHandle
from optikube_operator.client.records import JobResults, JobSnapshot, TrialRecord
from optikube_operator.client.updates import (
    JobUpdate,
    PhaseChanged,
    StageChanged,
    TrialFinished,
    TrialPruned,
    TrialReported,
    TrialStarted,
    TrialUpdate,
)

__all__ = [
    "Client",
    "ClientError",
    "ErrorReason",
    "JobHandle",
    "JobResults",
    "JobSnapshot",
    "JobUpdate",
    "PhaseChanged",
    "StageChanged",
    "TrialFinished",
    "TrialPruned",
    "TrialRecord",
    "TrialReported",
    "TrialStarted",
    "TrialUpdate",
]
