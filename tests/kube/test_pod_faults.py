"""A trial's pod fails under it: the container is OOMKilled, its node is deleted, or the report
endpoint cannot be reached. The trial is retried or counted failed exactly as the spec says, and
the job goes on."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from kube_harness import Trainers, apply, drive, manifest, wait_for
from kubernetes import client

from optikube_testcluster import ControlPlane, FakeNode
from optikube_testcluster.kubelet import finish_pod
from optikube_testcluster.ports import free_ports

pytestmark = [pytest.mark.cluster]
OOM_EXIT = 137


def _trial(plane: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    with plane.api_client() as api:
        body: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(
            "optikube.io", "v1alpha1", namespace, "optimizationtrials", name
        )
    return body


def _job(namespace: str, trials: int, **spec: Any) -> dict[str, Any]:
    job = manifest("quickstart", namespace, **spec)
    job["spec"]["tuning"].update({"maxTrials": trials, "parallelTrials": 1, "pruner": {"type": "none"}})
    job["spec"]["training"]["epochs"] = 1
    return job


def _first_pod(trainers: Trainers) -> Any:
    pods: list[Any] = wait_for("a running trial pod", lambda: trainers.running(), timeout=60)
    return pods[0]


def _oom_kill(trainers: Trainers, pod: Any) -> None:
    trainers.handled.add(pod.metadata.name)
    with trainers.plane.api_client() as api:
        finish_pod(api, trainers.namespace, pod.metadata.name, OOM_EXIT, "", reason="OOMKilled")


def test_an_oom_killed_pod_is_retried_within_backoff_limit(trainers: Trainers) -> None:
    apply(trainers.plane, _job(trainers.namespace, 1, resources__backoffLimit=1))
    killed = _first_pod(trainers)
    _oom_kill(trainers, killed)
    replacement = wait_for(
        "the Job's replacement pod",
        lambda: [p for p in trainers.running() if p.metadata.name != killed.metadata.name],
        timeout=60,
    )[0]
    assert replacement.metadata.labels["job-name"] == killed.metadata.labels["job-name"]
    status = drive(trainers, "quickstart")
    assert status["phase"] == "Succeeded", status.get("message")
    trial = _trial(trainers.plane, trainers.namespace, "quickstart-t0")["status"]
    assert trial["phase"] == "Succeeded" and trial["finalValues"]["accuracy"] > 0


def test_an_oom_killed_pod_without_retries_fails_its_trial_and_the_search_goes_on(
    trainers: Trainers,
) -> None:
    apply(trainers.plane, _job(trainers.namespace, 2, resources__backoffLimit=0))
    _oom_kill(trainers, _first_pod(trainers))
    failed = wait_for(
        "trial 0 to fail",
        lambda: (
            (s := _trial(trainers.plane, trainers.namespace, "quickstart-t0").get("status", {})).get("phase")
            == "Failed"
            and s
        ),
        timeout=60,
    )
    assert "OOMKilled" in failed["message"], failed["message"]
    status = drive(trainers, "quickstart")
    assert status["phase"] == "Succeeded", status.get("message")
    assert status["trialCounts"]["failed"] == 1 and status["trialCounts"]["succeeded"] == 1


def test_a_trial_whose_node_is_deleted_is_rescheduled_and_the_job_goes_on(
    crds: ControlPlane, trainers: Trainers
) -> None:
    label = {"optikube.io/fault-test": trainers.namespace}
    nodes = [FakeNode(f"fault-{uuid.uuid4().hex[:6]}-{i}", labels=label) for i in range(2)]
    for node in nodes:
        apply(crds, node.manifest())
    try:
        apply(crds, _job(trainers.namespace, 2, resources__nodeSelector=label))
        pod = _first_pod(trainers)
        began = time.monotonic()
        crds.kubectl("delete", "node", pod.spec.node_name, "--wait=false")
        # PodGC marks the orphaned pod DisruptionTarget and deletes it; the Job's podFailurePolicy
        # ignores that failure, so a new pod of the same run lands on the other node
        replacement = wait_for(
            "the run's pod on the remaining node",
            lambda: [
                p
                for p in trainers.running()
                if p.metadata.name != pod.metadata.name
                and p.metadata.labels["job-name"] == pod.metadata.labels["job-name"]
            ],
            timeout=150,
            interval=1.0,
        )[0]
        print(f"rescheduled after {time.monotonic() - began:.1f} s to {replacement.spec.node_name}")
        trainers.handled.add(pod.metadata.name)
        status = drive(trainers, "quickstart")
        assert status["phase"] == "Succeeded", status.get("message")
        assert status["trialCounts"]["succeeded"] == 2
    finally:
        for node in nodes:
            crds.kubectl("delete", "node", node.name, "--ignore-not-found", "--wait=false")


def test_with_the_report_endpoint_unreachable_the_termination_message_carries_the_result(
    crds: ControlPlane, namespace: str
) -> None:
    (closed,) = free_ports(1)  # nothing listens there
    trainers = Trainers(crds, namespace, f"http://127.0.0.1:{closed}/v1/progress", tolerant=True)
    apply(crds, _job(namespace, 2))
    status = drive(trainers, "quickstart")
    assert status["phase"] == "Succeeded", status.get("message")
    assert all(code == 0 for _, code, _ in trainers.replies)  # no report ever arrived
    for number in range(2):
        trial = _trial(crds, namespace, f"quickstart-t{number}")["status"]
        assert trial["phase"] == "Succeeded" and trial["finalValues"]["accuracy"] > 0
    # the best trial is chosen from the termination messages alone
    assert status["bestTrial"]["objectiveValue"] == max(
        _trial(crds, namespace, f"quickstart-t{n}")["status"]["finalValues"]["accuracy"] for n in range(2)
    )
