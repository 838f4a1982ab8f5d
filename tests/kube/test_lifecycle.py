"""A job's life on the cluster: suspend and resume, deletion, failing and hanging trials, invalid
specs, refused changes, and GPU trials spread over kwok's GPU nodes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kube_harness import Trainers, apply, drive, job_status, manifest, wait_for
from kubernetes import client

from optikube_operator.kube import names

pytestmark = pytest.mark.cluster


def _objects(trainers: Trainers, kind: str) -> list[Any]:
    with trainers.plane.api_client() as api:
        if kind == "trials":
            return list(
                client.CustomObjectsApi(api).list_namespaced_custom_object(
                    "optikube.io", "v1alpha1", trainers.namespace, "optimizationtrials"
                )["items"]
            )
        listing = {
            "jobs": client.BatchV1Api(api).list_namespaced_job,
            "services": client.CoreV1Api(api).list_namespaced_service,
            "configmaps": client.CoreV1Api(api).list_namespaced_config_map,
        }[kind]
        return [
            item
            for item in listing(trainers.namespace).items
            if (item.metadata.labels or {}).get(names.MANAGED_BY) == names.MANAGER
        ]


def _patch_spec(trainers: Trainers, name: str, spec: dict[str, Any]) -> None:
    trainers.plane.kubectl(
        "patch", "optjob", name, "-n", trainers.namespace, "--type=merge", "-p", json.dumps({"spec": spec})
    )


def _trial_phases(trainers: Trainers) -> dict[int, str]:
    return {t["spec"]["number"]: (t.get("status") or {}).get("phase") for t in _objects(trainers, "trials")}


def test_suspend_stops_trials_as_suspended_and_resume_continues_the_same_study(trainers: Trainers) -> None:
    apply(trainers.plane, manifest("quickstart", trainers.namespace))
    running = wait_for("two trial pods", lambda: len(trainers.running()) == 2 and trainers.running())
    params_before = {t["spec"]["number"]: t["spec"]["params"] for t in _objects(trainers, "trials")}
    _patch_spec(trainers, "quickstart", {"suspend": True})
    wait_for(
        "Suspended",
        lambda: job_status(trainers.plane, trainers.namespace, "quickstart")["phase"] == "Suspended",
    )
    wait_for("the trial Jobs to go", lambda: not _objects(trainers, "jobs"), timeout=30)
    assert _trial_phases(trainers) == {0: "Suspended", 1: "Suspended"}
    status = job_status(trainers.plane, trainers.namespace, "quickstart")
    assert status["trialCounts"]["suspended"] == 2 and status["trialCounts"]["failed"] == 0
    assert {c["type"]: c["status"] for c in status["conditions"]}["Suspended"] == "True"

    _patch_spec(trainers, "quickstart", {"suspend": False})
    trainers.handled.update(p.metadata.name for p in running)  # the old pods are gone
    final = drive(trainers, "quickstart")
    assert final["phase"] == "Succeeded" and final["trialCounts"]["completed"] == 6
    trials = {t["spec"]["number"]: t for t in _objects(trainers, "trials")}
    assert {n: trials[n]["spec"]["params"] for n in (0, 1)} == params_before  # the same trials again
    assert trials[0]["status"]["attempts"] == 2 and trials[2]["status"]["attempts"] == 1


def test_deleting_a_job_cascades_to_everything_it_made(trainers: Trainers) -> None:
    apply(trainers.plane, manifest("quickstart", trainers.namespace))
    wait_for("two trial pods", lambda: len(trainers.running()) == 2)
    assert len(_objects(trainers, "trials")) == 2 and len(_objects(trainers, "jobs")) == 2
    trainers.plane.kubectl("delete", "optjob", "quickstart", "-n", trainers.namespace, "--wait=true")
    for kind in ("trials", "jobs", "services", "configmaps"):
        wait_for(f"the {kind} to be garbage collected", lambda k=kind: not _objects(trainers, k), timeout=60)
    wait_for("the pods to go", lambda: not trainers.pods(), timeout=60)


def test_too_many_failed_trials_fail_the_job(trainers: Trainers) -> None:
    apply(trainers.plane, manifest("quickstart", trainers.namespace))
    status = drive(trainers, "quickstart", fail=True)
    assert status["phase"] == "Failed"
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "TooManyFailures" and "maxFailedTrials: 2" in failed["message"]
    assert status["trialCounts"]["failed"] == 3
    # failed trials' pods are kept for debugging (cleanup.keepTrialPods: failed)
    assert len(_objects(trainers, "jobs")) == 3


def test_a_trial_past_its_timeout_is_stopped_and_the_search_goes_on(trainers: Trainers) -> None:
    job = manifest("quickstart", trainers.namespace)
    job["spec"]["tuning"].update(
        {"trialTimeout": "10s", "maxTrials": 3, "parallelTrials": 1, "maxFailedTrials": 3}
    )
    apply(trainers.plane, job)
    wait_for("trial 0 timed out", lambda: _trial_phases(trainers).get(0) == "TimedOut", timeout=60)
    wait_for(
        "its Job to go", lambda: "quickstart-t0" not in {j.metadata.name for j in _objects(trainers, "jobs")}
    )
    # trial 0's pod is never played (it timed out); trial 1's may already be there and is played
    trainers.handled.update(
        p.metadata.name for p in trainers.pods() if p.metadata.name.startswith("quickstart-t0-")
    )
    status = drive(trainers, "quickstart")
    assert status["phase"] == "Succeeded" and status["trialCounts"]["timedOut"] == 1


def test_a_spec_that_passes_the_crd_but_not_the_model_fails_with_invalid_spec(trainers: Trainers) -> None:
    job = manifest("quickstart", trainers.namespace)
    # the CRD cannot see that the pruning block this key tunes is absent
    del job["spec"]["compression"]
    job["spec"]["tuning"]["searchSpace"]["compression.pruning.sparsity"] = {
        "type": "float",
        "low": 0.2,
        "high": 0.8,
    }
    apply(trainers.plane, job)
    status = wait_for(
        "InvalidSpec",
        lambda: (s := job_status(trainers.plane, trainers.namespace, "quickstart")).get("phase") and s,
    )
    assert status["phase"] == "Failed"
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert (
        failed["reason"] == "InvalidSpec"
        and 'searchSpace["compression.pruning.sparsity"]' in failed["message"]
    )
    assert not _objects(trainers, "trials") and not _objects(trainers, "jobs")
    with trainers.plane.api_client() as api:
        events = client.CoreV1Api(api).list_namespaced_event(trainers.namespace).items
    warning = next(e for e in events if e.reason == "InvalidSpec")
    assert warning.type == "Warning" and "compression.pruning" in warning.message


def test_a_refused_spec_change_names_the_field_and_leaves_the_job_untouched(trainers: Trainers) -> None:
    apply(trainers.plane, manifest("quickstart", trainers.namespace))
    wait_for("two trial pods", lambda: len(trainers.running()) == 2)
    _patch_spec(trainers, "quickstart", {"training": {"epochs": 50}, "tuning": {"maxTrials": 4}})

    def refused() -> dict[str, Any] | None:
        status = job_status(trainers.plane, trainers.namespace, "quickstart")
        condition = next((c for c in status.get("conditions", []) if c["type"] == "SpecChangeRefused"), {})
        return condition if condition.get("status") == "True" else None

    condition = wait_for("SpecChangeRefused", refused)
    assert "spec.training.epochs" in condition["message"]
    final = drive(trainers, "quickstart")
    assert final["phase"] == "Succeeded"
    assert final["trialCounts"]["completed"] == 4  # maxTrials may change
    assert final["acceptedSpec"]["training"]["epochs"] == 5  # epochs may not
    for pod_config in (json.loads(c.data[names.CONFIG_FILE]) for c in _objects(trainers, "configmaps")):
        assert pod_config["spec"]["training"]["epochs"] == 5


def _prepare_for_multi_node_gpu(trainers: Trainers) -> None:
    """What the example expects of a cluster: a PriorityClass and H100-labelled GPU nodes."""
    trainers.plane.kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "scheduling.k8s.io/v1",
                "kind": "PriorityClass",
                "metadata": {"name": "training-high"},
                "value": 1000,
            }
        ),
    )
    for node in ("kwok-gpu-0", "kwok-gpu-1"):
        trainers.plane.kubectl(
            "label", "node", node, "nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3", "--overwrite"
        )
    # the claim its artifacts go to, bound to a static volume (kwok nodes mount nothing)
    volume = f"datasets-{trainers.namespace}"
    claim = {"kind": "PersistentVolumeClaim", "name": "datasets", "namespace": trainers.namespace}
    for obj in (
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": volume},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteMany"],
                "storageClassName": "",
                "hostPath": {"path": f"/tmp/{volume}"},
                "claimRef": claim,
            },
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "datasets", "namespace": trainers.namespace},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "storageClassName": "",
                "volumeName": volume,
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    ):
        trainers.plane.kubectl("apply", "-f", "-", input=json.dumps(obj))


def test_multi_node_gpu_trials_wait_for_kueue_then_run_on_the_gpu_nodes(trainers: Trainers) -> None:
    _prepare_for_multi_node_gpu(trainers)
    apply(trainers.plane, manifest("multi-node-gpu", trainers.namespace))

    def admit(job: str) -> None:  # act as Kueue
        trainers.plane.kubectl(
            "patch", "job", job, "-n", trainers.namespace, "--type=merge", "-p", '{"spec":{"suspend":false}}'
        )

    (preflight,) = wait_for("the suspended preflight Job", lambda: _objects(trainers, "jobs"))
    assert preflight.metadata.name == "multi-node-gpu-preflight" and preflight.spec.suspend is True
    assert preflight.metadata.labels[names.QUEUE_LABEL] == "gpu-queue"
    assert not trainers.pods()  # the preflight, too, waits for Kueue
    admit("multi-node-gpu-preflight")

    def trial_jobs() -> list[Any]:
        trainers.running()  # finishes the preflight's pod, which passes
        return [j for j in _objects(trainers, "jobs") if j.metadata.labels[names.RUN_LABEL] == "trial"]

    jobs = wait_for("two suspended trial Jobs", lambda: len(trial_jobs()) == 2 and trial_jobs())
    for job in jobs:
        assert job.spec.suspend is True and job.metadata.labels[names.QUEUE_LABEL] == "gpu-queue"
    # Kueue admits a suspended Job as a whole; nothing runs before
    assert not [p for p in trainers.pods() if p.metadata.labels[names.RUN_LABEL] == "trial"]
    admit("multi-node-gpu-t0")
    pods = wait_for("the two pods of trial 0", lambda: len(trainers.running()) == 2 and trainers.running())
    assert {p.metadata.labels[names.TRIAL_LABEL] for p in pods} == {"0"}
    assert {p.spec.node_name for p in pods} == {"kwok-gpu-0", "kwok-gpu-1"}  # one 4-GPU pod per node
    assert sorted(p.metadata.annotations[names.COMPLETION_INDEX_ANNOTATION] for p in pods) == ["0", "1"]
    for pod in pods:
        container = pod.spec.containers[0]
        assert container.resources.limits["nvidia.com/gpu"] == "4"
        assert container.resources.requests["nvidia.com/gpu"] == "4"
        env = {e.name: e.value for e in container.env if e.value is not None}
        assert (env["OPTIKUBE_NNODES"], env["OPTIKUBE_NPROC_PER_NODE"]) == ("2", "4")
        assert env["OPTIKUBE_RDZV_HOST"] == "multi-node-gpu-t0-0.multi-node-gpu-t0"
        assert container.image == "ghcr.io/example/optikube-trainer:0.1.0"
        assert pod.spec.priority_class_name == "training-high"
        assert pod.spec.node_selector["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
        assert any(t.key == "nvidia.com/gpu" for t in pod.spec.tolerations)
    # the two pods hold every GPU of the shared kwok nodes: give them back to the tests that follow
    trainers.plane.kubectl("delete", "optjob", "multi-node-gpu", "-n", trainers.namespace, "--wait=false")
