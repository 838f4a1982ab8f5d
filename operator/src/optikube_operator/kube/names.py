"""Names and labels of everything the operator creates: deterministic, so that a repeated create is
an AlreadyExists to adopt, never a second copy."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from optikube_operator.api import GROUP, VERSION

API_VERSION = f"{GROUP}/{VERSION}"
JOBS = "optimizationjobs"
TRIALS = "optimizationtrials"

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "optikube"
JOB_LABEL = f"{GROUP}/job"
TRIAL_LABEL = f"{GROUP}/trial"
RUN_LABEL = f"{GROUP}/run"  # trial | pipeline | preflight
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"

TOKEN_AUDIENCE = GROUP
RDZV_PORT = 29500
METRICS_PORT = 9400
CONTAINER = "trainer"
CONFIG_DIR = "/etc/optikube"
CONFIG_FILE = "run.json"
TOKEN_DIR = "/var/run/secrets/optikube"
TOKEN_FILE = "token"
ARTIFACTS_DIR = "/artifacts"
TERMINATION_LOG = "/dev/termination-log"


class RunKind(enum.StrEnum):
    """What a run of a job is; also its `optikube.io/run` label and its trainer stage."""

    TRIAL = "trial"
    PIPELINE = "pipeline"
    PREFLIGHT = "preflight"


@dataclass(frozen=True)
class RunRef:
    """Which run of a job: trial ``number``, the final pipeline, or the preflight before the first
    trial. ``trial_run(k)``, ``PIPELINE`` and ``PREFLIGHT`` make them."""

    kind: RunKind
    number: int | None = None

    def __post_init__(self) -> None:
        if (self.kind is RunKind.TRIAL) != (self.number is not None):
            raise ValueError("a trial run has a number, and only a trial run has one")

    def __str__(self) -> str:
        return f"trial {self.number}" if self.kind is RunKind.TRIAL else self.kind.value


PIPELINE = RunRef(RunKind.PIPELINE)
PREFLIGHT = RunRef(RunKind.PREFLIGHT)


def trial_run(number: int) -> RunRef:
    return RunRef(RunKind.TRIAL, number)


def run_name(job: str, run: RunRef) -> str:
    """The OptimizationTrial, Job and Service of one run: `<job>-t<k>`, `<job>-pipeline` or
    `<job>-preflight`."""
    return f"{job}-t{run.number}" if run.kind is RunKind.TRIAL else f"{job}-{run.kind.value}"


def config_name(job: str, run: RunRef) -> str:
    return f"{run_name(job, run)}-config"


def run_labels(job: str, run: RunRef) -> dict[str, str]:
    labels = {MANAGED_BY: MANAGER, JOB_LABEL: job, RUN_LABEL: run.kind.value}
    if run.number is not None:
        labels[TRIAL_LABEL] = str(run.number)
    return labels


def selector(job: str) -> str:
    return f"{MANAGED_BY}={MANAGER},{JOB_LABEL}={job}"


def run_of(labels: dict[str, str]) -> tuple[str, RunRef] | None:
    """(job name, run) of an object the operator labelled."""
    if labels.get(MANAGED_BY) != MANAGER or JOB_LABEL not in labels:
        return None
    run = labels.get(RUN_LABEL)
    if run == RunKind.PIPELINE:
        return labels[JOB_LABEL], PIPELINE
    if run == RunKind.PREFLIGHT:
        return labels[JOB_LABEL], PREFLIGHT
    try:
        return labels[JOB_LABEL], trial_run(int(labels[TRIAL_LABEL]))
    except (KeyError, ValueError):
        return None
