"""Cluster objects -> what they mean for a run's record. Pure functions.

A batch Job and its pods say when a run started, and how it ended: the Job's Complete or Failed
condition, each pod's exit code and reason, and the termination message rank 0 left (the final
progress, Contract 3, written by the trainer for exactly this fallback; the preflight's refusal,
`<spec field>: <problem>`, or the tail of its log).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from optikube_operator.api.progress import AnyProgress, ProgressError, parse_progress
from optikube_operator.api.runconfig import PREFLIGHT_EXIT_REFUSED
from optikube_operator.core import (
    ObservedPipeline,
    ObservedPreflight,
    ObservedTrial,
    PipelineState,
    PreflightState,
    StopReason,
    TrialState,
)
from optikube_operator.core.recording import (
    preflight_message,
    record_pipeline_exit,
    record_pipeline_progress,
    record_preflight_exit,
    record_trial_exit,
    record_trial_progress,
)
from optikube_operator.kube import names
from optikube_operator.kube.runs import RunObjects, controller_of


@dataclass(frozen=True)
class RunObservation:
    exists: bool = False
    uid: str | None = None
    deleting: bool = False
    suspended: bool = False
    running_since: datetime | None = None
    succeeded: bool = False
    failed_reason: str | None = None
    failed_message: str = ""
    termination_message: str | None = None
    rank0_ended: bool = False  # a rank-0 pod of the Job is seen terminated
    exit_code: int | None = None
    exit_reason: str = ""

    @property
    def finished(self) -> bool:
        return self.succeeded or self.failed_reason is not None


def _time(text: str | None) -> datetime | None:
    return None if not text else datetime.fromisoformat(text.replace("Z", "+00:00"))


def _conditions(job: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {
        c["type"]: c for c in (job.get("status") or {}).get("conditions") or [] if c.get("status") == "True"
    }


def _container(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == names.CONTAINER:
            return dict(status)
    return {}


def _state(pod: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The trainer container's `running` or `terminated` state ({} when it is not in it)."""
    return dict((_container(pod).get("state") or {}).get(name) or {})


def _index(pod: Mapping[str, Any]) -> str:
    return str((pod["metadata"].get("annotations") or {}).get(names.COMPLETION_INDEX_ANNOTATION, ""))


def _of_job(pod: Mapping[str, Any], uid: str | None) -> bool:
    """Whether the Job with this uid controls the pod: an earlier Job of the same name (deleted,
    its pods not yet collected) has pods with the same labels and controller name."""
    owner = controller_of(pod["metadata"]) or {}
    return uid is None or owner.get("uid") in (None, uid)


def observe_run(objects: RunObjects) -> RunObservation:
    job = objects.job
    if job is None:
        return RunObservation()
    conditions = _conditions(job)
    failed = conditions.get("Failed")
    uid = job["metadata"].get("uid")
    pods = sorted(
        (pod for pod in objects.pods.values() if _of_job(pod, uid)),
        key=lambda pod: str(pod["metadata"].get("creationTimestamp", "")),
    )
    starts = [
        started
        for pod in pods
        if (started := _time(_state(pod, "running").get("startedAt")))
        or (started := _time(_state(pod, "terminated").get("startedAt")))
    ]
    rank0 = [pod for pod in pods if _index(pod) == "0"] or pods
    terminated = [_state(pod, "terminated") for pod in rank0 if _container(pod)]
    message = next((t.get("message") for t in reversed(terminated) if t.get("message")), None)
    # Jobs and Pods come on separate watches: a Job can be seen Complete before its rank-0 pod is
    # seen terminated, and concluding then would lose the result the pod's termination message
    # carries. The run is finished once no rank-0 pod still shows itself live (deleted ones go).
    lagging = any(
        not _state(pod, "terminated") and not pod["metadata"].get("deletionTimestamp") for pod in rank0
    )
    failures = [t for pod in pods if (t := _state(pod, "terminated")) and t.get("exitCode")]
    # The Job controller batches pod updates (about a second) before it writes Complete; the
    # pods already say it: every index has a pod that exited 0, which the Job cannot undo.
    completions = int((job.get("spec") or {}).get("completions") or 1)
    exited_zero = {_index(pod) for pod in pods if _state(pod, "terminated").get("exitCode") == 0}
    every_index_exited_zero = exited_zero >= {str(index) for index in range(completions)}
    return RunObservation(
        exists=True,
        uid=uid,
        deleting=bool(job["metadata"].get("deletionTimestamp")),
        suspended=bool((job.get("spec") or {}).get("suspend")),
        running_since=min(starts) if starts else None,
        succeeded=("Complete" in conditions and not lagging) or (not failed and every_index_exited_zero),
        failed_reason=str(failed.get("reason") or "Failed") if failed and not lagging else None,
        failed_message=str(failed.get("message") or "") if failed else "",
        termination_message=message,
        rank0_ended=any(terminated),
        exit_code=int(failures[-1]["exitCode"]) if failures else None,
        exit_reason=str(failures[-1].get("reason") or "") if failures else "",
    )


def termination_progress(message: str | None) -> AnyProgress | None:
    """The progress rank 0 wrote as its termination message, if it is one."""
    if not message:
        return None
    try:
        raw = json.loads(message)
        if isinstance(raw, dict):
            raw.setdefault("trial", None)
        return parse_progress(raw)
    except (json.JSONDecodeError, ProgressError):
        return None


def _reason(observation: RunObservation) -> str:
    return observation.exit_reason or observation.failed_reason or ""


def observe_trial(
    trial: ObservedTrial, observation: RunObservation, primary: str, now: datetime
) -> ObservedTrial:
    """``trial`` after what its Job and pods show; a finished trial never changes."""
    if not trial.state.active or not observation.exists:
        return trial
    if trial.attempts == 0:
        # the Job exists: it was launched, even if the operator stopped before recording so
        trial = replace(trial, attempts=1)
    if trial.state is TrialState.PENDING and observation.running_since is not None:
        trial = replace(trial, state=TrialState.RUNNING, start_time=observation.running_since)
    if not observation.finished:
        return trial
    progress = termination_progress(observation.termination_message)
    if progress is not None and progress.trial == trial.number:
        trial = record_trial_progress(trial, progress, primary, now)
    if observation.failed_reason == "DeadlineExceeded" and trial.state.active:
        return replace(trial, state=TrialState.TIMED_OUT, message=StopReason.TIMED_OUT.message, end_time=now)
    code = 0 if observation.succeeded else (observation.exit_code or 1)
    return record_trial_exit(trial, code, None, now, reason=_reason(observation))


def observe_pipeline(
    pipeline: ObservedPipeline, observation: RunObservation, now: datetime
) -> ObservedPipeline:
    if not pipeline.state.active or not observation.exists:
        return pipeline
    if pipeline.state is PipelineState.PENDING and observation.running_since is not None:
        pipeline = replace(pipeline, state=PipelineState.RUNNING, start_time=pipeline.start_time or now)
    if not observation.finished:
        return pipeline
    progress = termination_progress(observation.termination_message)
    if progress is not None and progress.trial is None:
        pipeline = record_pipeline_progress(pipeline, progress, now)
    code = 0 if observation.succeeded else (observation.exit_code or 1)
    return record_pipeline_exit(pipeline, code, now)


def observe_preflight(
    preflight: ObservedPreflight, observation: RunObservation, deadline_seconds: int, now: datetime
) -> ObservedPreflight:
    """The running preflight after what its Job and pod show: passed when it exited 0, failed with
    its refusal (exit code 2: the termination message is `<spec field>: <problem>`) or else with
    the last line of its log (the kubelet's FallbackToLogsOnError)."""
    if preflight.state is not PreflightState.RUNNING or not observation.exists or not observation.finished:
        return preflight
    if observation.failed_reason == "DeadlineExceeded":
        message = (
            f"the preflight did not finish within {deadline_seconds}s (loading the data and building"
            " the models); check spec.data.source and spec.resources"
        )
        return record_preflight_exit(preflight, 1, message, now)
    code = 0 if observation.succeeded else (observation.exit_code or 1)
    text = observation.termination_message or ""
    refusal = text if code == PREFLIGHT_EXIT_REFUSED else None
    tail = text or observation.failed_message or _reason(observation)
    return record_preflight_exit(preflight, code, preflight_message(code, refusal, tail), now)
