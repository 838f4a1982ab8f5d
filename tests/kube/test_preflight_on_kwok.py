"""The preflight as the first step of a job in the cluster: its `<job>-preflight` Job is recorded
(status.preflight) before it is created, adopted rather than made again by a restarted operator,
and a refusal fails the job with reason PreflightFailed, naming the field, before any trial.

The operators of this module watch `pf-*` namespaces only, so they can be restarted without the
session's operator acting on their jobs.
"""

from __future__ import annotations

import time
import urllib.request
import uuid
from typing import Any

import pytest
from kube_harness import Trainers, apply, job_status, manifest, operator_running, trial_objects, wait_for
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from optikube_operator.kube import names
from optikube_testcluster import ControlPlane

pytestmark = pytest.mark.cluster
PREFIX = "pf"
# what the trainer's preflight writes as its termination message when it refuses (exit code 2)
REFUSAL = (
    "spec.data.source.file.targetColumn: no column 'labl' in /data/churn.csv (columns: age, plan, churned)"
)
SETTLE = 5.0  # long enough for a started operator to have reconciled the job and acted


def _jobs(plane: ControlPlane, namespace: str) -> dict[str, Any]:
    with plane.api_client() as api:
        return {j.metadata.name: j for j in client.BatchV1Api(api).list_namespaced_job(namespace).items}


def _events(plane: ControlPlane, namespace: str) -> list[Any]:
    with plane.api_client() as api:
        return [
            e
            for e in client.CoreV1Api(api).list_namespaced_event(namespace).items
            if e.involved_object.kind == "OptimizationJob"
        ]


def _nothing_but_the_preflight(plane: ControlPlane, namespace: str, uid: str, trainers: Trainers) -> None:
    jobs = _jobs(plane, namespace)
    assert list(jobs) == ["quickstart-preflight"] and jobs["quickstart-preflight"].metadata.uid == uid
    assert len(trainers.preflight_pods()) == 1  # one pod ever: backoffLimit 0, never recreated
    assert trial_objects(plane, namespace) == []


def test_a_refused_preflight_fails_the_job_naming_the_field_with_no_trial_and_runs_once(
    crds: ControlPlane,
) -> None:
    namespace = crds.create_namespace(f"{PREFIX}-{uuid.uuid4().hex[:8]}")
    trainers = Trainers(crds, namespace, "", preflight=None)  # this test ends the preflight itself
    with operator_running(crds, namespaces=(f"{PREFIX}-*",)):
        apply(crds, manifest("quickstart", namespace))
        (pod,) = wait_for(
            "the preflight pod running",
            lambda: [p for p in trainers.preflight_pods() if p.status.phase == "Running"],
        )
        status = job_status(crds, namespace, "quickstart")
        assert status["phase"] == "Pending" and status["preflight"]["phase"] == "Running"
        uid = _jobs(crds, namespace)["quickstart-preflight"].metadata.uid
        _nothing_but_the_preflight(crds, namespace, uid, trainers)

    # an operator restarted while the preflight runs adopts its Job: it makes no second one
    with operator_running(crds, namespaces=(f"{PREFIX}-*",)):
        time.sleep(SETTLE)
        _nothing_but_the_preflight(crds, namespace, uid, trainers)
        trainers.finish_preflight(pod, 2, REFUSAL)
        status = wait_for(
            "the job Failed",
            lambda: (s := job_status(crds, namespace, "quickstart")).get("phase") == "Failed" and s,
            timeout=60,
        )
        failed = next(c for c in status["conditions"] if c["type"] == "Failed")
        assert failed["reason"] == "PreflightFailed" and failed["message"] == REFUSAL
        assert status["message"] == REFUSAL
        assert status["preflight"]["phase"] == "Failed" and status["preflight"]["message"] == REFUSAL
        assert "trialCounts" not in status or status["trialCounts"]["completed"] == 0
        warnings = {(e.reason, e.message) for e in _events(crds, namespace) if e.type == "Warning"}
        assert ("PreflightFailed", REFUSAL) in warnings
        assert ("JobFailed", f"PreflightFailed: {REFUSAL}") in warnings
        time.sleep(SETTLE)
        # no trial at all; the failed preflight's Job is kept for its logs (keepTrialPods: failed)
        _nothing_but_the_preflight(crds, namespace, uid, trainers)

    # and a later operator leaves the finished job as it is
    with operator_running(crds, namespaces=(f"{PREFIX}-*",)):
        time.sleep(SETTLE)
        _nothing_but_the_preflight(crds, namespace, uid, trainers)
        assert job_status(crds, namespace, "quickstart") == status


def test_a_passed_preflights_job_goes_and_the_trials_start(crds: ControlPlane) -> None:
    namespace = crds.create_namespace(f"{PREFIX}-{uuid.uuid4().hex[:8]}")
    with operator_running(crds, namespaces=(f"{PREFIX}-*",)) as running:
        trainers = Trainers(crds, namespace, running.progress_url)
        apply(crds, manifest("quickstart", namespace))
        pods = wait_for("two trial pods", lambda: len(trainers.running()) == 2 and trainers.running())
        assert {p.metadata.labels[names.RUN_LABEL] for p in pods} == {"trial"}
        wait_for("the preflight's Job to go", lambda: "quickstart-preflight" not in _jobs(crds, namespace))
        status = job_status(crds, namespace, "quickstart")
        assert status["preflight"]["phase"] == "Passed" and len(trainers.preflights) == 1
        with crds.api_client() as api:
            config_maps = {
                c.metadata.name for c in client.CoreV1Api(api).list_namespaced_config_map(namespace).items
            }
        assert "quickstart-preflight-config" not in config_maps


def _status_writes(metrics_url: str) -> dict[str, int]:
    """The operator's status writes so far, by resource (its own request counter)."""
    text = urllib.request.urlopen(metrics_url, timeout=10).read().decode()
    writes: dict[str, int] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "optikube_apiserver_requests_total" and sample.labels["verb"] == "PATCH":
                resource = sample.labels["resource"]
                writes[resource] = writes.get(resource, 0) + int(sample.value)
    return {resource: count for resource, count in writes.items() if resource.endswith("/status")}


def test_a_jobs_start_writes_each_record_once_before_it_acts_on_it(crds: ControlPlane) -> None:
    """What starting a job costs the apiserver in status writes (each write is also a watch event for
    every watcher): the job's status once before its preflight's Job, with the pass's conditions in
    it; each trial's status once when its Job is created (a new OptimizationTrial without a status
    already reads Pending) and once when its pod runs. With hundreds of jobs starting at once the
    apiserver's time goes to such requests (docs/benchmarks.md, "Operator at scale")."""
    namespace = crds.create_namespace(f"{PREFIX}-{uuid.uuid4().hex[:8]}")
    trainers = Trainers(crds, namespace, "", preflight=None)
    # this namespace only: the counts are of this job's writes, not of the jobs earlier tests left
    with operator_running(crds, namespaces=(namespace,)) as running:
        apply(crds, manifest("quickstart", namespace))
        (pod,) = wait_for(
            "the preflight pod running",
            lambda: [p for p in trainers.preflight_pods() if p.status.phase == "Running"],
        )
        time.sleep(SETTLE)  # the passes its Job's and pod's events bring have run
        status = job_status(crds, namespace, "quickstart")
        assert status["preflight"]["phase"] == "Running"
        assert {c["type"] for c in status["conditions"]} >= {"SpecChangeRefused", "Suspended"}
        assert _status_writes(running.metrics_url) == {"optimizationjobs/status": 1}

        trainers.finish_preflight(pod)
        wait_for(
            "both first-wave trials running",
            lambda: (
                [t["status"].get("phase") for t in trial_objects(crds, namespace) if t.get("status")]
                == ["Running", "Running"]
            ),
        )
        time.sleep(SETTLE)
        trials = trial_objects(crds, namespace)
        assert [t["status"]["attempts"] for t in trials] == [1, 1]
        assert _status_writes(running.metrics_url)["optimizationtrials/status"] == 2 * len(trials)
