"""`kubectl apply -f examples/quickstart.yaml`: the operator runs the search and the pipeline as pods
on kwok nodes; the test plays kubelet and trainer with real tokens over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from kube_harness import Trainers, apply, drive, manifest
from kubernetes import client

from optikube_operator.kube import names

pytestmark = pytest.mark.cluster


def _trials(trainers: Trainers) -> list[dict[str, Any]]:
    with trainers.plane.api_client() as api:
        items = client.CustomObjectsApi(api).list_namespaced_custom_object(
            "optikube.io", "v1alpha1", trainers.namespace, "optimizationtrials"
        )["items"]
    return sorted(items, key=lambda t: t["spec"]["number"])


def test_quickstart_runs_trials_then_the_pipeline_to_succeeded(trainers: Trainers) -> None:
    apply(trainers.plane, manifest("quickstart", trainers.namespace))
    status = drive(trainers, "quickstart")
    assert status["phase"] == "Succeeded", status
    counts = status["trialCounts"]
    assert counts["completed"] == 6 and counts["succeeded"] + counts["pruned"] == 6
    assert counts["pruned"] >= 1, "the median pruner said prune at least once"
    assert status["bestTrial"]["objectiveValue"] == max(
        t["status"].get("finalValues", {}).get("accuracy", 0) for t in _trials(trainers)
    )
    assert status["results"]["sizeRatio"] == 0.25 and status["results"]["speedup"] == 2.0
    # the shipped runtime and every runtime tried, as `kubectl get` and `describe` show them
    assert status["results"]["runtime"] == "onnx" and status["results"]["accuracyDrop"] == 0.4
    assert [(r["runtime"], r["optimized"]["batch1P50"]) for r in status["results"]["runtimes"]] == [
        ("eager", 0.3),
        ("onnx", 0.1),
    ]
    assert status["pipeline"]["phase"] == "Succeeded" and status["progress"]["percent"] == 100
    assert [s["name"] for s in status["pipeline"]["stages"] if s["status"] == "completed"] == [
        "train",
        "pruning",
        "quantization",
        "evaluation",
    ]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Succeeded"]["status"] == "True"
    # every trial's record is on its OptimizationTrial; Jobs of successful trials are gone
    trials = _trials(trainers)
    assert [t["spec"]["number"] for t in trials] == list(range(6))
    assert all(t["status"]["phase"] in ("Succeeded", "Pruned") for t in trials)
    assert all(t["status"]["attempts"] == 1 for t in trials)
    with trainers.plane.api_client() as api:
        jobs = client.BatchV1Api(api).list_namespaced_job(trainers.namespace).items
        events = client.CoreV1Api(api).list_namespaced_event(trainers.namespace).items
    assert [j.metadata.name for j in jobs if j.metadata.name != "quickstart-pipeline"] == []
    reasons = {e.reason for e in events if e.involved_object.kind == "OptimizationJob"}
    assert {
        "TrialCreated",
        "TrialSucceeded",
        "TrialPruned",
        "PipelineStarted",
        "StageCompleted",
        "JobSucceeded",
        "PreflightStarted",
        "PreflightPassed",
    } <= reasons
    # the preflight ran first, once, and its Job went once it passed
    assert status["preflight"]["phase"] == "Passed" and "message" not in status["preflight"]
    assert len(trainers.preflights) == 1


def test_trial_pods_carry_the_command_env_and_resources_the_spec_asks_for(trainers: Trainers) -> None:
    apply(trainers.plane, manifest("quickstart", trainers.namespace))
    from kube_harness import wait_for

    pods = wait_for("two trial pods running", lambda: len(trainers.running()) == 2 and trainers.running())
    pod = pods[0]
    container = pod.spec.containers[0]
    env = {e.name: e.value for e in container.env if e.value is not None}
    run = pod.metadata.labels[names.JOB_LABEL] + "-t" + pod.metadata.labels[names.TRIAL_LABEL]
    # one worker: torchrun hosts its own rendezvous, no headless Service to find peers by
    assert pod.spec.subdomain is None and env["OPTIKUBE_RDZV_HOST"] == "localhost"
    assert env["OPTIKUBE_NNODES"] == "1"
    services = trainers.plane.kubectl("get", "services", "-n", trainers.namespace, "-o", "name").stdout
    assert f"service/{run}" not in services.split()
    assert env["OPTIKUBE_PROGRESS_URL"] == trainers.progress_url
    assert "torchrun" in container.command[-1] and "--rdzv-backend c10d" in container.command[-1]
    assert container.resources.requests == {"cpu": "1", "memory": "1Gi"}
    assert container.security_context.read_only_root_filesystem and pod.spec.security_context.run_as_non_root
    token = (
        next(v for v in pod.spec.volumes if v.projected is not None)
        .projected.sources[0]
        .service_account_token
    )
    assert token.audience == "optikube.io" and pod.spec.automount_service_account_token is False
    assert pod.spec.node_name.startswith("kwok-cpu-")
    config = trainers.config_of(pod)
    assert config["stage"] == "trial" and config["outputDir"].endswith(f"/trials/{config['trial']['number']}")
