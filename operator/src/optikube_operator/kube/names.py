"""Names and labels of everything the operator creates: deterministic, so that a repeated create is
an AlreadyExists to adopt, never a second copy."""

from __future__ import annotations

from optikube_operator.api import GROUP, VERSION

API_VERSION = f"{GROUP}/{VERSION}"
JOBS = "optimizationjobs"
TRIALS = "optimizationtrials"

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "optikube"
JOB_LABEL = f"{GROUP}/job"
TRIAL_LABEL = f"{GROUP}/trial"
RUN_LABEL = f"{GROUP}/run"  # trial | pipeline
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"

REPORT_AUDIENCE = GROUP
RDZV_PORT = 29500
METRICS_PORT = 9400
CONTAINER = "trainer"
CONFIG_DIR = "/etc/optikube"
CONFIG_FILE = "run.json"
TOKEN_DIR = "/var/run/secrets/optikube"
TOKEN_FILE = "token"
ARTIFACTS_DIR = "/artifacts"
TERMINATION_LOG = "/dev/termination-log"


def run_name(job: str, trial: int | None) -> str:
    """The OptimizationTrial, Job and Service of one run: `<job>-t<k>`, or `<job>-pipeline`."""
    return f"{job}-pipeline" if trial is None else f"{job}-t{trial}"


def config_name(job: str, trial: int | None) -> str:
    return f"{run_name(job, trial)}-config"


def run_labels(job: str, trial: int | None) -> dict[str, str]:
    labels = {MANAGED_BY: MANAGER, JOB_LABEL: job, RUN_LABEL: "pipeline" if trial is None else "trial"}
    if trial is not None:
        labels[TRIAL_LABEL] = str(trial)
    return labels


def selector(job: str) -> str:
    return f"{MANAGED_BY}={MANAGER},{JOB_LABEL}={job}"


def trial_of(labels: dict[str, str]) -> tuple[str, int | None] | None:
    """(job name, trial number or None for the pipeline) of an object the operator labelled."""
    if labels.get(MANAGED_BY) != MANAGER or JOB_LABEL not in labels:
        return None
    run = labels.get(RUN_LABEL)
    if run == "pipeline":
        return labels[JOB_LABEL], None
    try:
        return labels[JOB_LABEL], int(labels[TRIAL_LABEL])
    except (KeyError, ValueError):
        return None
