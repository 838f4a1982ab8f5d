"""Cluster objects -> records, records -> status, spec changes, token reviews: the operator's pure parts."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

from optikube_operator import core
from optikube_operator.kube import names
from optikube_operator.kube.auth import caller_of, token_expiry
from optikube_operator.kube.launcher import RunLauncher
from optikube_operator.kube.observe import observe_pipeline, observe_preflight, observe_run, observe_trial
from optikube_operator.kube.runs import RunCache
from optikube_operator.kube.spec_changes import accept_spec
from optikube_operator.kube.status import ConditionUpdate, merge_conditions, phase_of

NOW = datetime(2026, 1, 1, tzinfo=UTC)
T = "2026-01-01T00:00:00Z"


def _job(conditions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "q-t1",
            "namespace": "ns",
            "uid": "u",
            "labels": names.run_labels("q", names.trial_run(1)),
        },
        "status": {"conditions": conditions},
    }


def _pod(name: str, index: str, state: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "creationTimestamp": T,
            "labels": names.run_labels("q", names.trial_run(1)),
            "annotations": {names.COMPLETION_INDEX_ANNOTATION: index},
            "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "Job", "name": "q-t1", "controller": True}
            ],
        },
        "status": {"containerStatuses": [{"name": names.CONTAINER, "state": state}]},
    }


def _observe(job: dict[str, Any], *pods: dict[str, Any]) -> Any:
    cache = RunCache()
    cache.update("Job", "ADDED", job)
    for pod in pods:
        cache.update("Pod", "ADDED", pod)
    return observe_run(cache.get(("ns", "q", names.trial_run(1))))


def test_a_running_pod_makes_a_pending_trial_running_from_its_start() -> None:
    observation = _observe(_job([]), _pod("q-t1-0", "0", {"running": {"startedAt": T}}))
    trial = observe_trial(core.ObservedTrial(1, {}, core.TrialState.PENDING), observation, "accuracy", NOW)
    assert trial.state is core.TrialState.RUNNING and trial.start_time == NOW


def test_the_termination_message_carries_a_lost_final_push() -> None:
    final = {"type": "final", "trial": 1, "values": {"accuracy": 0.9}}
    done = {"terminated": {"exitCode": 0, "message": json.dumps(final), "startedAt": T}}
    observation = _observe(_job([{"type": "Complete", "status": "True"}]), _pod("q-t1-0", "0", done))
    trial = observe_trial(
        core.ObservedTrial(1, {}, core.TrialState.RUNNING, start_time=NOW), observation, "accuracy", NOW
    )
    assert trial.state is core.TrialState.SUCCEEDED and trial.values == {"accuracy": 0.9}


def test_a_complete_job_waits_for_its_rank0_pod_to_be_seen_terminated() -> None:
    """Jobs and Pods arrive on separate watches: the Job's Complete may come first."""
    complete = _job([{"type": "Complete", "status": "True"}])
    early = _observe(complete, _pod("q-t1-0", "0", {"running": {"startedAt": T}}))
    assert not early.finished
    trial = observe_trial(core.ObservedTrial(1, {}, core.TrialState.RUNNING), early, "accuracy", NOW)
    assert trial.state is core.TrialState.RUNNING
    final = {"type": "final", "trial": 1, "values": {"accuracy": 0.9}}
    done = {"terminated": {"exitCode": 0, "message": json.dumps(final), "startedAt": T}}
    late = _observe(complete, _pod("q-t1-0", "0", done))
    trial = observe_trial(core.ObservedTrial(1, {}, core.TrialState.RUNNING), late, "accuracy", NOW)
    assert trial.state is core.TrialState.SUCCEEDED and trial.values == {"accuracy": 0.9}


def test_a_run_has_succeeded_once_every_index_exited_0_before_the_job_says_complete() -> None:
    """The Job controller writes Complete about a second after its last pod ends; the pods tell."""
    job = _job([])
    job["spec"] = {"completions": 2}
    done = {"terminated": {"exitCode": 0, "startedAt": T}}
    running = {"running": {"startedAt": T}}
    assert not _observe(job, _pod("q-t1-0", "0", done), _pod("q-t1-1", "1", running)).finished
    assert _observe(job, _pod("q-t1-0", "0", done), _pod("q-t1-1", "1", done)).succeeded
    crashed = {"terminated": {"exitCode": 1, "startedAt": T}}
    assert not _observe(job, _pod("q-t1-0", "0", done), _pod("q-t1-1", "1", crashed)).finished
    job["status"] = {"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]}
    late = _observe(job, _pod("q-t1-0", "0", done), _pod("q-t1-1", "1", done))
    assert not late.succeeded and late.failed_reason == "DeadlineExceeded"


def test_only_the_current_jobs_pods_count_not_those_of_an_earlier_job_of_the_same_name() -> None:
    """A Job deleted and made again under its name: the old one's pods linger until collected."""
    job = _job([])
    job["spec"] = {"completions": 1}
    old = _pod("q-t1-0-old", "0", {"terminated": {"exitCode": 0, "startedAt": T}})
    old["metadata"]["ownerReferences"][0]["uid"] = "an-earlier-job"
    assert not _observe(job, old).finished and _observe(job, old).running_since is None
    current = _pod("q-t1-0-new", "0", {"running": {"startedAt": T}})
    current["metadata"]["ownerReferences"][0]["uid"] = "u"
    assert _observe(job, old, current).running_since is not None
    assert not _observe(job, old, current).finished


def test_a_finished_job_whose_pods_are_not_seen_yet_is_read_again_before_it_concludes() -> None:
    """After a restart the Job list can arrive before the Pod list: the result is in the pod."""
    final = {"type": "final", "trial": 1, "values": {"accuracy": 0.9}}
    pod = _pod("q-t1-0", "0", {"terminated": {"exitCode": 0, "message": json.dumps(final)}})

    class Backend:
        listed = 0

        async def list_run_pods(self, namespace: str, job: str, run: names.RunRef) -> list[Any]:
            assert (namespace, job, run) == ("ns", "q", names.trial_run(1))
            self.listed += 1
            return [pod]

    backend, cache = Backend(), RunCache()
    cache.update("Job", "ADDED", _job([{"type": "Complete", "status": "True"}]))
    launcher = RunLauncher(cast(Any, backend), cache, cast(Any, None))
    job = cast(Any, SimpleNamespace(records=SimpleNamespace(key=("ns", "q"))))
    done = asyncio.run(launcher.observe(job, names.trial_run(1), active=False))
    assert done.finished and done.termination_message is None and backend.listed == 0  # nothing to lose
    observation = asyncio.run(launcher.observe(job, names.trial_run(1), active=True))
    assert backend.listed == 1 and observation.termination_message == json.dumps(final)
    again = asyncio.run(launcher.observe(job, names.trial_run(1), active=True))
    assert again.rank0_ended and backend.listed == 1  # its end is seen: read once, not every pass
    trial = observe_trial(core.ObservedTrial(1, {}, core.TrialState.RUNNING), observation, "accuracy", NOW)
    assert trial.state is core.TrialState.SUCCEEDED and trial.values == {"accuracy": 0.9}


def test_a_failed_job_fails_the_trial_with_the_exit_code_and_reason() -> None:
    killed = {"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": T}}
    failed = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]
    observation = _observe(_job(failed), _pod("q-t1-0", "0", killed))
    trial = observe_trial(
        core.ObservedTrial(1, {}, core.TrialState.RUNNING, start_time=NOW), observation, "accuracy", NOW
    )
    assert (
        trial.state is core.TrialState.FAILED
        and trial.message == "the trainer exited with code 137 (OOMKilled)"
    )
    deadline = _observe(_job([{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]))
    timed = observe_trial(
        core.ObservedTrial(1, {}, core.TrialState.RUNNING, start_time=NOW), deadline, "accuracy", NOW
    )
    assert timed.state is core.TrialState.TIMED_OUT


def test_a_finished_record_never_changes_and_the_pipeline_succeeds_on_completion() -> None:
    observation = _observe(_job([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]))
    done = core.ObservedTrial(1, {}, core.TrialState.SUCCEEDED, values={"accuracy": 0.9})
    assert observe_trial(done, observation, "accuracy", NOW) == done
    complete = _observe(_job([{"type": "Complete", "status": "True"}]))
    pipeline = observe_pipeline(core.ObservedPipeline(state=core.PipelineState.RUNNING), complete, NOW)
    assert pipeline.state is core.PipelineState.SUCCEEDED


def test_conditions_keep_their_transition_time_while_their_status_stays() -> None:
    first = merge_conditions([], [ConditionUpdate("Suspended", "False", "Running")], 1, NOW)
    later = datetime(2026, 1, 2, tzinfo=UTC)
    same = merge_conditions(first, [ConditionUpdate("Suspended", "False", "Running")], 2, later)
    moved = merge_conditions(first, [ConditionUpdate("Suspended", "True", "Suspended")], 2, later)
    assert same[0]["lastTransitionTime"] == first[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert moved[0]["lastTransitionTime"] == "2026-01-02T00:00:00Z" and same[0]["observedGeneration"] == 2


def test_phase_follows_the_pipeline_stage() -> None:
    observed = core.ObservedState(pipeline=core.ObservedPipeline(state=core.PipelineState.RUNNING))
    assert phase_of(None, core.ObservedState(), None) == "Pending"
    assert (
        phase_of(None, core.ObservedState(trials=(core.ObservedTrial(0, {}, core.TrialState.RUNNING),)), None)
        == "Tuning"
    )
    assert phase_of(None, observed, None) == "Training"


def test_only_the_mutable_fields_of_a_running_job_may_change() -> None:
    accepted = {
        "suspend": False,
        "tuning": {"maxTrials": 6, "searchSpace": {"a.b": {}}},
        "training": {"epochs": 5},
    }
    ok = accept_spec(
        {**accepted, "suspend": True, "tuning": {**accepted["tuning"], "maxTrials": 9}}, accepted
    )
    assert ok.refused_field is None and ok.spec["tuning"]["maxTrials"] == 9 and ok.spec["suspend"]
    refused = accept_spec({**accepted, "suspend": True, "training": {"epochs": 50}}, accepted)
    assert refused.refused_field == "spec.training.epochs"
    assert refused.spec["training"] == {"epochs": 5} and refused.spec["suspend"] is True


def _review(pod_uid: str = "pod-uid", audiences: tuple[str, ...] = ("optikube.io",)) -> dict[str, Any]:
    return {
        "status": {
            "authenticated": True,
            "audiences": list(audiences),
            "user": {
                "username": "system:serviceaccount:ns:optikube-trainer",
                "extra": {
                    "authentication.kubernetes.io/pod-name": ["q-t1-0-abc"],
                    "authentication.kubernetes.io/pod-uid": [pod_uid],
                },
            },
        }
    }


def test_a_token_is_a_caller_only_when_review_pod_and_labels_agree() -> None:
    pod = {
        "metadata": {
            "name": "q-t1-0-abc",
            "namespace": "ns",
            "uid": "pod-uid",
            "labels": names.run_labels("q", names.trial_run(1)),
            "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "Job", "name": "q-t1", "controller": True}
            ],
        },
        "spec": {"serviceAccountName": "optikube-trainer"},
    }
    caller = caller_of(_review(), pod)
    assert caller is not None and (caller.run.namespace, caller.run.job, caller.run.trial) == ("ns", "q", 1)
    assert caller_of(_review(pod_uid="another"), pod) is None  # a pod recreated under the same name
    assert caller_of(_review(audiences=("https://kubernetes.default.svc",)), pod) is None
    assert caller_of(_review(), None) is None  # the pod is gone
    stranger = {**pod, "metadata": {**pod["metadata"], "labels": {}}}
    assert caller_of(_review(), stranger) is None  # not one of the operator's pods
    look_alike = {**pod, "metadata": {**pod["metadata"], "ownerReferences": []}}
    assert caller_of(_review(), look_alike) is None  # labels copied, but no Job of the run made it
    other_run = [{"apiVersion": "batch/v1", "kind": "Job", "name": "q-t2", "controller": True}]
    assert (
        caller_of(_review(), {**pod, "metadata": {**pod["metadata"], "ownerReferences": other_run}}) is None
    )
    terminating = {**pod, "metadata": {**pod["metadata"], "deletionTimestamp": "2026-01-01T00:00:30Z"}}
    grace_ends = datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC).timestamp()
    assert caller_of(_review(), terminating, now=grace_ends - 10) is not None  # its last words
    assert caller_of(_review(), terminating, now=grace_ends) is None  # the grace period is over
    header = "eyJhbGciOiJub25lIn0"
    claims = "eyJleHAiOjE3NjcyMjU2MDB9"  # {"exp":1767225600}
    assert token_expiry(f"{header}.{claims}.sig") == 1767225600.0 and token_expiry("junk") is None


def test_a_look_alike_pod_with_copied_labels_is_not_one_of_the_runs_pods() -> None:
    cache = RunCache()
    cache.update("Job", "ADDED", _job([{"type": "Complete", "status": "True"}]))
    impostor = _pod("impostor", "0", {"running": {"startedAt": T}})
    impostor["metadata"]["ownerReferences"] = []
    assert cache.update("Pod", "ADDED", impostor) is None
    assert observe_run(
        cache.get(("ns", "q", names.trial_run(1)))
    ).succeeded  # it cannot hold the run open either


def test_the_run_cache_finds_a_runs_pod_by_name_until_it_or_its_job_is_gone() -> None:
    cache = RunCache()
    cache.update("Job", "ADDED", _job([]))
    pod = _pod("q-t1-0-abc", "0", {"running": {"startedAt": T}})
    cache.update("Pod", "ADDED", pod)
    assert cache.pod("ns", "q-t1-0-abc") is not None and cache.pod("other", "q-t1-0-abc") is None
    assert list(cache.of_job("ns", "q")) == [names.trial_run(1)] and cache.of_job("ns", "p") == {}
    cache.update("Pod", "DELETED", pod)
    assert cache.pod("ns", "q-t1-0-abc") is None
    cache.update("Pod", "ADDED", pod)
    cache.forget_job("ns", "q")
    assert cache.pod("ns", "q-t1-0-abc") is None and cache.of_job("ns", "q") == {}
    cache.update("Job", "ADDED", _job([]))
    cache.update("Job", "DELETED", _job([]))  # the run's last object gone: nothing left of it
    assert cache.of_job("ns", "q") == {}


def test_the_operators_own_create_and_delete_count_before_the_watch_catches_up() -> None:
    cache = RunCache()
    run = ("ns", "q", names.trial_run(1))
    cache.created(_job([]))  # the create's response, before any watch event
    assert observe_run(cache.get(run)).exists and not observe_run(cache.get(run)).deleting
    cache.update("Job", "MODIFIED", _job([{"type": "Complete", "status": "True"}]))
    cache.deleted(run, T)
    assert observe_run(cache.get(run)).deleting  # not deleted again by the passes in between
    cache.update("Job", "DELETED", _job([]))
    assert not observe_run(cache.get(run)).exists


def _preflight_job(conditions: list[dict[str, Any]]) -> dict[str, Any]:
    labels = names.run_labels("q", names.PREFLIGHT)
    return {
        "metadata": {"name": "q-preflight", "namespace": "ns", "uid": "p", "labels": labels},
        "status": {"conditions": conditions},
    }


def _preflight_pod(terminated: dict[str, Any]) -> dict[str, Any]:
    pod = _pod("q-preflight-0-x", "0", {"terminated": {"startedAt": T, **terminated}})
    pod["metadata"]["labels"] = names.run_labels("q", names.PREFLIGHT)
    pod["metadata"]["ownerReferences"][0]["name"] = "q-preflight"
    return pod


def _observe_preflight(job: dict[str, Any], *pods: dict[str, Any]) -> Any:
    cache = RunCache()
    cache.update("Job", "ADDED", job)
    for pod in pods:
        cache.update("Pod", "ADDED", pod)
    return observe_run(cache.get(("ns", "q", names.PREFLIGHT)))


RUNNING_PREFLIGHT = core.ObservedPreflight(core.PreflightState.RUNNING, start_time=NOW)
LATER = NOW + timedelta(seconds=5)


def test_a_preflight_that_exits_0_passed_and_one_that_exits_2_failed_with_its_refusal() -> None:
    complete = [{"type": "Complete", "status": "True"}]
    passed = observe_preflight(
        RUNNING_PREFLIGHT,
        _observe_preflight(_preflight_job(complete), _preflight_pod({"exitCode": 0})),
        600,
        LATER,
    )
    assert (passed.state, passed.message, passed.end_time) == (core.PreflightState.PASSED, "", LATER)
    refusal = "spec.data.source.file.targetColumn: no column 'labl' in /data/train.csv (columns: a, b, label)"
    failed = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]
    pod = _preflight_pod({"exitCode": 2, "reason": "Error", "message": refusal})
    refused = observe_preflight(
        RUNNING_PREFLIGHT, _observe_preflight(_preflight_job(failed), pod), 600, LATER
    )
    assert (refused.state, refused.message) == (core.PreflightState.FAILED, refusal)
    assert observe_preflight(refused, _observe_preflight(_preflight_job(failed), pod), 600, LATER) == refused


def test_a_crashed_or_late_preflight_fails_with_its_logs_last_line_or_its_deadline() -> None:
    failed = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]
    log = "loading digits\nTraceback (most recent call last):\nMemoryError\n"  # FallbackToLogsOnError
    pod = _preflight_pod({"exitCode": 1, "reason": "Error", "message": log})
    crashed = observe_preflight(
        RUNNING_PREFLIGHT, _observe_preflight(_preflight_job(failed), pod), 600, LATER
    )
    assert crashed.message == "the preflight exited with code 1: MemoryError"
    late = [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]
    timed_out = observe_preflight(RUNNING_PREFLIGHT, _observe_preflight(_preflight_job(late)), 600, LATER)
    assert timed_out.state is core.PreflightState.FAILED and "within 600s" in timed_out.message


def test_a_preflight_still_running_or_not_yet_seen_is_unchanged() -> None:
    running = _preflight_pod({})
    running["status"]["containerStatuses"][0]["state"] = {"running": {"startedAt": T}}
    observed = _observe_preflight(_preflight_job([]), running)
    assert observe_preflight(RUNNING_PREFLIGHT, observed, 600, LATER) == RUNNING_PREFLIGHT
    assert (
        observe_preflight(
            RUNNING_PREFLIGHT, observe_run(RunCache().get(("ns", "q", names.PREFLIGHT))), 600, LATER
        )
        == RUNNING_PREFLIGHT
    )


def test_preflight_pods_get_no_report_credentials() -> None:
    owner = {"apiVersion": "batch/v1", "kind": "Job", "name": "q-preflight", "controller": True}
    labels = names.run_labels("q", names.PREFLIGHT)
    meta = {
        "name": "q-t1-0-abc",
        "namespace": "ns",
        "uid": "pod-uid",
        "labels": labels,
        "ownerReferences": [owner],
    }
    pod = {"metadata": meta, "spec": {"serviceAccountName": "optikube-trainer"}}
    assert caller_of(_review(), pod) is None  # it reports nothing: its exit and message say it all
