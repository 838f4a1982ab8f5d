"""optikube: make models smaller, faster and better, from Python.

    from optikube import Client
    job = Client.local(output_dir="runs").submit("examples/quickstart.yaml", smoke=True)
    job.wait(); print(job.best_trial().values)

`Client.cluster(namespace=...)` does the same through the operator on Kubernetes (docs/client.md).
"""

from optikube_operator import __version__
from optikube_operator.client import (
    Client,
    ClientError,
    ErrorReason,
    JobHandle,
    JobResults,
    JobSnapshot,
    JobUpdate,
    PhaseChanged,
    StageChanged,
    TrialFinished,
    TrialPruned,
    TrialRecord,
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
    "__version__",
]
