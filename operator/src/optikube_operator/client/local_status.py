"""A local job's status, built from its folder as the operator builds a cluster job's: the run's
records (the state file `optikube run` keeps) through the core's summary and the operator's status
builder, so that phase, counts, best trial and results read the same from both backends.

A local job's folder holds what the client wrote (`job.yaml`, `submission.json`, `runner.json`),
what its runner wrote (`exit.json`, `run.log`) and what `optikube run` writes there."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from optikube_operator.api import OptimizationJob, load_job
from optikube_operator.api.smoke import smoke_spec
from optikube_operator.api.status import OptimizationJobStatus
from optikube_operator.client.records import JobSnapshot, TrialRecord

SPEC_FILE = "job.yaml"
SUBMISSION_FILE = "submission.json"
RUNNER_FILE = "runner.json"
EXIT_FILE = "exit.json"
RUN_LOG = "run.log"
RESULTS_FILE = "results.json"
EXIT_INTERRUPTED = 130  # what `optikube run` exits with when interrupted (suspend)
RUNNER_EXITED = "RunnerExited"


def read_object(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _start_ticks(pid: int) -> str | None:
    """The process' start time in clock ticks (/proc/PID/stat field 22), None when it is gone or a
    zombie: with the pid, it tells a process from a later one that reused its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]


def process_identity(pid: int) -> str | None:
    if Path("/proc").is_dir():
        return _start_ticks(pid)
    try:  # without /proc only the pid can be checked
        os.kill(pid, 0)
    except OSError:
        return None
    return "alive"


@dataclass(frozen=True)
class RunnerState:
    """Whether the job's runner process runs, and how it ended when it did."""

    pid: int | None
    alive: bool
    exit_code: int | None

    @classmethod
    def of(cls, directory: Path) -> RunnerState:
        recorded = read_object(directory / RUNNER_FILE) or {}
        pid = recorded.get("pid")
        alive = isinstance(pid, int) and process_identity(pid) == recorded.get("identity")
        ended = read_object(directory / EXIT_FILE) or {}
        code = ended.get("code")
        return cls(pid if isinstance(pid, int) else None, alive, code if isinstance(code, int) else None)


def submitted_job(directory: Path) -> tuple[OptimizationJob, bool]:
    """(the job as it runs, whether it was submitted with smoke=True)."""
    job = load_job(directory / SPEC_FILE)
    smoke = bool((read_object(directory / SUBMISSION_FILE) or {}).get("smoke"))
    if smoke:
        job = job.model_copy(update={"spec": smoke_spec(job.spec).spec})
    return job, smoke


def _artifacts(directory: Path) -> dict[str, str]:
    return {
        "location": str(directory),
        "model": str(directory / "model"),
        "results": str(directory / RESULTS_FILE),
        "report": str(directory / "report.html"),
    }


def local_snapshot(directory: Path, runner: RunnerState, now: datetime | None = None) -> JobSnapshot:
    # the core and the operator's status builder, imported here: `import optikube` stays Optuna-free
    from optikube_operator.core import JobSettings, ObservedState
    from optikube_operator.core.records import trial_status
    from optikube_operator.core.summary import summarize
    from optikube_operator.kube.status import ConditionUpdate, Outcome, build_status
    from optikube_operator.local.state import STATE_FILE, RunState

    now = now or datetime.now(UTC)
    job, _ = submitted_job(directory)
    name = str(job.metadata.name)
    settings = JobSettings.from_spec(job.spec, name)
    state = (
        RunState.load(directory, read_object(directory / "pipeline" / RESULTS_FILE))
        if (directory / STATE_FILE).exists()
        else None
    )
    observed = state.observed() if state is not None else ObservedState()
    outcome: Outcome | None = None
    suspended = False
    if not runner.alive:
        finished = state.finished if state is not None else {}
        if finished:
            outcome = Outcome(
                succeeded=bool(finished.get("succeeded")),
                reason=str(finished.get("reason")),
                message=str(finished.get("message") or ""),
                time=datetime.fromisoformat(str(finished.get("time"))) if finished.get("time") else now,
            )
        elif runner.exit_code == EXIT_INTERRUPTED:
            suspended = True
        else:
            how = f"exit code {runner.exit_code}" if runner.exit_code is not None else "killed"
            message = (
                f"the local run stopped before the job finished ({how}); its output is in"
                f" {directory / RUN_LOG}; resume() continues it where it stopped"
            )
            outcome = Outcome(False, RUNNER_EXITED, message, now)
    conditions = [ConditionUpdate("Suspended", "True", "Suspended")] if suspended else []
    if outcome is not None:
        kind = "Succeeded" if outcome.succeeded else "Failed"
        conditions.append(ConditionUpdate(kind, "True", outcome.reason, outcome.message))
    status = build_status(
        settings=replace(settings, suspend=True) if suspended else settings,
        observed=observed,
        summary=summarize(settings, observed),
        outcome=outcome,
        previous=None,
        conditions=conditions,
        generation=None,
        accepted_spec=None,
        artifacts_location=None,
        job_name=name,
        now=now,
    )
    status["artifacts"] = _artifacts(directory)
    trials = (
        ()
        if state is None
        else tuple(
            TrialRecord.of(number, trial.record.params, trial_status(trial.record))
            for number, trial in sorted(state.trials.items())
        )
    )
    parsed = OptimizationJobStatus.model_validate(status, by_alias=True, strict=False)
    return JobSnapshot(name=name, where=str(directory), status=parsed, trials=trials, spec=job.spec.to_dict())
