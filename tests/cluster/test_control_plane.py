"""The real control plane, exercised through the real API: scheduling onto fake GPU nodes, the
Job controller, the garbage collector, RBAC and service-account tokens."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from cluster_objects import indexed_job
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from optikube_testcluster import GPU_PRESENT_LABEL, GPU_RESOURCE, GPU_TAINT, ControlPlane
from optikube_testcluster.kubelet import finish_pod
from optikube_testcluster.probes import wait_for

pytestmark = pytest.mark.cluster


def gpu_job(name: str, completions: int) -> dict[str, Any]:
    container = {
        "name": "trainer",
        "image": "optikube/trainer:test",
        "resources": {"limits": {GPU_RESOURCE: "1"}},
    }
    return indexed_job(
        name,
        completions,
        {
            "spec": {
                "restartPolicy": "Never",
                "tolerations": [{**GPU_TAINT, "operator": "Equal"}],
                "containers": [container],
            }
        },
    )


def test_fake_nodes_offer_cpus_and_gpus(control_plane: ControlPlane, api: Any) -> None:
    core: Any = client.CoreV1Api(api)
    nodes = core.list_node().items
    gpu_nodes = [n for n in nodes if n.metadata.labels.get(GPU_PRESENT_LABEL) == "true"]
    cpu_nodes = [n for n in nodes if n not in gpu_nodes]
    assert len(gpu_nodes) >= 2 and len(cpu_nodes) >= 2
    for node in gpu_nodes:
        assert node.status.allocatable[GPU_RESOURCE] == "4"
        assert [(t.key, t.value, t.effect) for t in node.spec.taints] == [
            (GPU_TAINT["key"], GPU_TAINT["value"], GPU_TAINT["effect"])
        ]
    assert all(GPU_RESOURCE not in n.status.allocatable for n in cpu_nodes)
    # The real kubectl talks to it too.
    assert "kwok-gpu-0" in control_plane.kubectl("get", "nodes", "-o", "name").stdout


def test_indexed_gpu_job_pods_are_scheduled_onto_gpu_nodes(namespace: str, api: Any) -> None:
    core: Any = client.CoreV1Api(api)
    batch: Any = client.BatchV1Api(api)
    gpu_nodes = {n.metadata.name for n in core.list_node(label_selector=f"{GPU_PRESENT_LABEL}=true").items}
    batch.create_namespaced_job(namespace, gpu_job("train", completions=3))

    def running_pods() -> list[Any]:
        pods = core.list_namespaced_pod(namespace, label_selector="job-name=train").items
        if len(pods) == 3 and all(p.status.phase == "Running" for p in pods):
            return list(pods)
        return []

    pods = wait_for("3 running pods", running_pods)
    indexes = sorted(p.metadata.annotations["batch.kubernetes.io/job-completion-index"] for p in pods)
    assert indexes == ["0", "1", "2"]
    for pod in pods:
        assert pod.spec.node_name in gpu_nodes
    # Bound by the real scheduler, which records a Scheduled event per pod.
    events = core.list_namespaced_event(namespace, field_selector="reason=Scheduled").items
    scheduled = {e.involved_object.name for e in events if e.reporting_component == "default-scheduler"}
    assert scheduled == {p.metadata.name for p in pods}

    # Acting as the kubelet, finish every index: the real Job controller completes the Job.
    for pod in pods:
        finish_pod(api, namespace, pod.metadata.name, exit_code=0, message='{"accuracy": 0.9}')

    def job_complete() -> bool:
        job = batch.read_namespaced_job("train", namespace)
        return any(c.type == "Complete" and c.status == "True" for c in job.status.conditions or [])

    wait_for("the Job to complete", job_complete)
    assert batch.read_namespaced_job("train", namespace).status.succeeded == 3


def test_gpu_pod_without_toleration_is_unschedulable(namespace: str, api: Any) -> None:
    core: Any = client.CoreV1Api(api)
    job = gpu_job("untolerated", completions=1)
    pod_spec = job["spec"]["template"]["spec"]
    del pod_spec["tolerations"]
    core.create_namespaced_pod(namespace, {"metadata": {"name": "untolerated"}, "spec": pod_spec})

    def unschedulable() -> bool:
        pod = core.read_namespaced_pod("untolerated", namespace)
        return any(
            c.type == "PodScheduled" and c.reason == "Unschedulable" for c in pod.status.conditions or []
        )

    wait_for("the scheduler to refuse the pod", unschedulable)
    assert core.read_namespaced_pod("untolerated", namespace).spec.node_name is None


def test_garbage_collector_deletes_dependents(namespace: str, api: Any) -> None:
    core: Any = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    reference = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "dependent", "ownerReferences": [reference]}}
    )
    core.delete_namespaced_config_map("owner", namespace)

    def dependent_gone() -> bool:
        try:
            core.read_namespaced_config_map("dependent", namespace)
        except ApiException as error:
            return error.status == 404
        return False

    wait_for("the garbage collector to delete the dependent", dependent_gone)


def token_client(control_plane: ControlPlane, token: str) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = control_plane.server
    configuration.ssl_ca_cert = str(control_plane.layout.ca_cert)
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(configuration)


def test_service_account_without_rbac_is_forbidden(
    control_plane: ControlPlane, namespace: str, api: Any
) -> None:
    core: Any = client.CoreV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "trainer"}})
    token = control_plane.service_account_token(namespace, "trainer", expiration_seconds=600)

    with token_client(control_plane, token) as as_trainer, pytest.raises(ApiException) as refused:
        trainer_core: Any = client.CoreV1Api(as_trainer)
        trainer_core.list_namespaced_pod(namespace)
    # 403, not 401: the token authenticated, and RBAC denied the request.
    assert refused.value.status == 403
    assert f"system:serviceaccount:{namespace}:trainer" in str(refused.value.body)


def test_service_account_kubeconfig_gets_exactly_what_rbac_grants(
    control_plane: ControlPlane, namespace: str
) -> None:
    control_plane.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    kubeconfig = control_plane.service_account_kubeconfig(namespace, "reader")

    def as_reader(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [str(control_plane.bin_dir / "kubectl"), f"--kubeconfig={kubeconfig}", "-n", namespace, *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)

    denied = as_reader("get", "pods")
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
    control_plane.kubectl("create", "role", "pod-reader", "--verb=list", "--resource=pods", "-n", namespace)
    control_plane.kubectl(
        "create",
        "rolebinding",
        "reader",
        "--role=pod-reader",
        f"--serviceaccount={namespace}:reader",
        "-n",
        namespace,
    )
    allowed = as_reader("get", "pods")
    assert allowed.returncode == 0, allowed.stderr
    still_denied = as_reader("get", "configmaps")
    assert still_denied.returncode != 0 and "forbidden" in still_denied.stderr.lower()


def test_audience_bound_token_passes_token_review_only_for_its_audience(namespace: str, api: Any) -> None:
    core: Any = client.CoreV1Api(api)
    authn: Any = client.AuthenticationV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reporter"}})
    request = {"spec": {"audiences": ["optikube.io"], "expirationSeconds": 600}}
    token = core.create_namespaced_service_account_token("reporter", namespace, request).status.token

    def review(audience: str) -> Any:
        body = {"spec": {"token": token, "audiences": [audience]}}
        return authn.create_token_review(body).status

    accepted = review("optikube.io")
    assert accepted.authenticated is True
    assert accepted.user.username == f"system:serviceaccount:{namespace}:reporter"
    assert not review("someone-else").authenticated
