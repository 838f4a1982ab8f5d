"""`optikube.Client` against the real control plane and the operator: submit, watch (through the
apiserver's watch: the requests are counted), results, delete with its trials; the same job through
both backends; and each mistake a user can make, as a ClientError that says what to do."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from client_scenario import runner_command, scenario_manifest
from kube_harness import PlayingTrainers, RunningOperator, Trainers, manifest, trial_objects, wait_for
from kubernetes import client as k8s

import optikube
from optikube import Client, ClientError, ErrorReason, JobHandle
from optikube_operator.client.local import LocalJobs
from optikube_operator.client.updates import UPDATE_KINDS
from optikube_testcluster import ControlPlane
from optikube_testcluster.kubeconfig import render_token_kubeconfig, write_kubeconfig

pytestmark = pytest.mark.cluster


def counted_requests(cluster: Client, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every HTTP request `cluster` sends from now on, as (method, url): its own REST client's
    (the harness' trainers poll the pods through another)."""
    sent: list[tuple[str, str]] = []
    rest = cluster.backend.api_client.rest_client  # type: ignore[attr-defined]
    original = rest.request

    def counted(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        sent.append((method, url))
        return original(method, url, *args, **kwargs)

    monkeypatch.setattr(rest, "request", counted)
    return sent


def _watched(handle: JobHandle, timeout: float) -> list[tuple[float, optikube.JobUpdate]]:
    return [(time.monotonic(), update) for update in handle.watch(timeout=timeout)]


def test_submit_watch_results_and_delete_through_the_apiservers_watch(
    crds: ControlPlane, trainers: Trainers, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = Client.cluster(namespace=namespace, kubeconfig=crds.kubeconfig)
    handle = cluster.submit(manifest("quickstart", namespace))
    assert (handle.name, handle.phase) == ("quickstart", "Pending")
    requests = counted_requests(cluster, monkeypatch)
    with PlayingTrainers(trainers):
        arrivals = _watched(handle, timeout=180)
    assert handle.phase == "Succeeded", handle.snapshot.status.message
    updates = [update for _, update in arrivals]
    kinds = {type(update) for update in updates}
    assert set(UPDATE_KINDS) <= kinds
    assert [u.phase for u in updates if isinstance(u, optikube.PhaseChanged)][-1] == "Succeeded"
    # updates came while the trials ran, not all at the end: trial 0 reported its first epoch
    # before it finished, in the first half of the job, and the updates came in many batches
    started, ended = arrivals[0][0], arrivals[-1][0]
    report = next(t for t, u in arrivals if isinstance(u, optikube.TrialReported) and u.trial.number == 0)
    finish = next(t for t, u in arrivals if isinstance(u, optikube.TrialFinished) and u.trial.number == 0)
    assert report < finish and report - started < (ended - started) / 2
    assert len({round(t, 2) for t, _ in arrivals}) >= 10
    # the apiserver's watch, not polling: two lists, two watches, one last look at the trials
    watches = [url for method, url in requests if "watch=True" in url or "watch=true" in url]
    reads = [url for method, url in requests if method == "GET" and url not in watches]
    assert len(watches) == 2, requests
    assert len(reads) <= 3, reads
    assert len(updates) >= 5 * len(requests), (len(updates), requests)

    results = handle.results()
    assert (results.size_ratio, results.speedup, results.runtime) == (0.25, 2.0, "onnx")
    assert [r.runtime for r in results.runtimes] == ["eager", "onnx"] and results.accuracy_drop == 0.4
    trials = handle.trials()
    assert [t.number for t in trials] == list(range(6))
    best = handle.best_trial()
    assert best is not None
    assert best.values["accuracy"] == max(
        t.values.get("accuracy", 0) for t in trials if t.state == "Succeeded"
    )
    assert json.loads(json.dumps(results.to_dict()))["bestTrial"]["number"] == best.number
    assert [h.name for h in cluster.list()] == ["quickstart"]

    handle.delete(wait=True)
    assert trial_objects(crds, namespace) == []  # the trials went with the job (foreground deletion)
    with crds.api_client() as api:
        assert k8s.BatchV1Api(api).list_namespaced_job(namespace).items == []
    with pytest.raises(ClientError) as gone:
        cluster.get("quickstart")
    assert gone.value.reason is ErrorReason.NOT_FOUND and "optikube get -n" in str(gone.value)


def _answers(handle: JobHandle) -> dict[str, Any]:
    results = handle.results().to_dict()
    results.pop("resultsFile")  # a path of this machine, or one inside the pods' volume
    best = handle.best_trial()
    return {
        "phase": handle.phase,
        "trials": [(t.number, t.state, dict(t.params), dict(t.values)) for t in handle.trials()],
        "best": None if best is None else (best.number, dict(best.values)),
        "results": results,
    }


def test_one_job_gives_the_same_answers_from_both_backends(
    crds: ControlPlane, trainers: Trainers, namespace: str, tmp_path: Path
) -> None:
    job = scenario_manifest("same-answers", namespace)
    local = Client(LocalJobs(tmp_path, runner=runner_command(), poll_seconds=0.1))
    cluster = Client.cluster(namespace=namespace, kubeconfig=crds.kubeconfig)
    here, there = local.submit(job), cluster.submit(job)
    with PlayingTrainers(trainers):
        there.wait(timeout=180)
    here.wait(timeout=120)
    mine, theirs = _answers(here), _answers(there)
    assert mine == theirs
    assert [state for _, state, _, _ in mine["trials"]] == ["Succeeded"] * 3
    assert mine["results"]["sizeRatio"] == 0.25 and mine["best"] is not None


def test_each_user_error_is_a_client_error_that_says_what_to_do(
    crds: ControlPlane, operator: RunningOperator, namespace: str, tmp_path: Path
) -> None:
    cluster = Client.cluster(namespace=namespace, kubeconfig=crds.kubeconfig)
    with pytest.raises(ClientError) as unknown:
        cluster.get("no-such-job")
    assert unknown.value.reason is ErrorReason.NOT_FOUND and f"namespace {namespace}" in str(unknown.value)

    handle = cluster.submit(manifest("quickstart", namespace, training__epochs=2))
    with pytest.raises(ClientError) as twice:
        cluster.submit(manifest("quickstart", namespace))
    assert twice.value.reason is ErrorReason.ALREADY_EXISTS and "delete" in twice.value.hint
    # its preflight pod is left running (no trainer here), so no trial has a pod, nor the pipeline
    with pytest.raises(ClientError) as no_pod:
        handle.logs(trial=0)
    assert no_pod.value.reason is ErrorReason.NOT_FOUND and "trial 0 of job quickstart has no pod" in str(
        no_pod.value
    )
    assert "kubectl get pods" in no_pod.value.hint
    # nobody plays its pods: it cannot finish in a second
    with pytest.raises(ClientError) as late:
        handle.wait(timeout=1.0)
    assert late.value.reason is ErrorReason.TIMEOUT and "still" in str(late.value)
    handle.suspend()
    assert handle.snapshot.spec["suspend"] is True
    wait_for("the job suspended", lambda: handle.refresh().phase == "Suspended", timeout=60)
    handle.resume()
    assert handle.snapshot.spec["suspend"] is False

    # a ServiceAccount with no Role: the client says which permission is missing and how to get it
    with crds.api_client() as api:
        core = k8s.CoreV1Api(api)
        core.create_namespaced_service_account(namespace, {"metadata": {"name": "nobody"}})
        token = core.create_namespaced_service_account_token(
            "nobody", namespace, {"spec": {"expirationSeconds": 600}}
        ).status.token
    config = write_kubeconfig(
        tmp_path / "nobody.kubeconfig",
        render_token_kubeconfig(
            crds.server, crds.layout.ca_cert.read_bytes(), token, f"system:serviceaccount:{namespace}:nobody"
        ),
    )
    refused = Client.cluster(namespace=namespace, kubeconfig=config)
    with pytest.raises(ClientError) as forbidden:
        refused.submit(manifest("quickstart", namespace))
    assert forbidden.value.reason is ErrorReason.FORBIDDEN
    assert "create optimizationjobs" in str(forbidden.value) and "Role" in forbidden.value.hint
    with pytest.raises(ClientError) as unreadable:
        refused.list()
    assert unreadable.value.reason is ErrorReason.FORBIDDEN
