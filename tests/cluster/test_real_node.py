"""The chart's own images in real containers on a real kubelet (the real node real-0: kubelet
v1.36.3, Debian's containerd and runc, CNI bridge, CoreDNS; docs/development.md, "The real node").

One cluster for the whole module (module-scoped fixture): the control plane, the process node
(whose provisioner binds the quickstart's claim) and real-0, whose containerd starts from the
image store holding the operator and trainer images built here without Docker. The chart is
installed with `helm install` (its defaults, placed on real-0) into a namespace that enforces the
restricted Pod Security profile, as is every namespace a job runs in here.

What only a real node can show: containerd container IDs, the kernel's memcg OOM killer, cluster
DNS for the headless Service of a 2-worker trial, tokens a real kubelet projected, `kubectl logs`
through the kubelet's API. The full quickstart (not its smoke form) is `long`; `make node-demo`
runs it too.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from optikube_operator.client import Client
from optikube_testcluster import ControlPlane, KubectlError, ProcessNodeSpec
from optikube_testcluster.helm import run_helm
from optikube_testcluster.nodedemo import RESTRICTED, real_node_values
from optikube_testcluster.realnode.artifacts import chart_image_archives
from optikube_testcluster.realnode.spec import REAL_NODE_SELECTOR, REAL_NODE_TOLERATION, RealNodeSpec

# the fixture (the images' project layer when the code changed, the cluster, the chart) and the
# smoke quickstart take most of it; a machine shared with other work can double it
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1800)]
ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "optikube"
QUICKSTART = ROOT / "examples" / "quickstart.yaml"
NODE = "real-0"
RELEASE = "optikube"
SYSTEM = "optikube-system"
OPERATOR_IMAGE_PREFIX = "ghcr.io/optikube/operator:"


@dataclass
class RealCluster:
    plane: ControlPlane
    system: str

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return self.plane.kubectl(*args, input=input).stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json"))

    def helm(self, *args: str, values: dict[str, Any] | None = None, timeout: float = 600) -> str:
        return run_helm(
            self.plane.bin_dir / "helm", self.plane.kubeconfig, *args, values=values, timeout=timeout
        )

    def restricted_namespace(self, prefix: str) -> str:
        namespace = self.plane.create_namespace(f"{prefix}-{uuid.uuid4().hex[:6]}")
        self.kubectl("label", "namespace", namespace, RESTRICTED, "--overwrite")
        return namespace

    def wait_job(self, namespace: str, name: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status: dict[str, Any] = self.json("get", "optjob", name, "-n", namespace).get("status") or {}
            if status.get("phase") in ("Succeeded", "Failed"):
                return status
            assert time.monotonic() < deadline, f"{name} still {status.get('phase')} after {timeout:.0f}s"
            time.sleep(1)

    def pods(self, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        args = ("get", "pods", "-n", namespace, *((f"-l={selector}",) if selector else ()))
        pods: list[dict[str, Any]] = self.json(*args)["items"]
        return pods

    def operator_metrics(self) -> str:
        return self.kubectl(
            "get", "--raw", f"/api/v1/namespaces/{self.system}/services/{RELEASE}:8080/proxy/metrics"
        )


@pytest.fixture(scope="module")
def real() -> Iterator[RealCluster]:
    images = chart_image_archives()  # builds what changed since `make images-local`, else at once
    nodes = [RealNodeSpec(NODE, images=images)]
    with ControlPlane(process_nodes=[ProcessNodeSpec("process-0", taint=True)], real_nodes=nodes) as plane:
        cluster = RealCluster(plane, SYSTEM)
        plane.create_namespace(SYSTEM)
        cluster.kubectl("label", "namespace", SYSTEM, RESTRICTED, "--overwrite")
        install = ("install", RELEASE, str(CHART), f"--namespace={SYSTEM}", "--wait", "--timeout=5m")
        cluster.helm(*install, values=real_node_values())
        yield cluster


def _container_ids(pods: list[dict[str, Any]]) -> list[str]:
    return [
        str(status.get("containerID", ""))
        for pod in pods
        for status in (pod.get("status") or {}).get("containerStatuses") or []
    ]


def _on_real_node(pod: dict[str, Any], name: str, command: list[str], **container: Any) -> dict[str, Any]:
    """A pod of the operator image on real-0 that the restricted profile admits."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": dict(REAL_NODE_SELECTOR),
            "tolerations": [dict(REAL_NODE_TOLERATION)],
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "main",
                    "image": pod["spec"]["containers"][0]["image"],
                    "imagePullPolicy": "Never",
                    "command": command,
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                    **container,
                }
            ],
        },
    }


def _operator_pod(real: RealCluster) -> dict[str, Any]:
    (pod,) = real.pods(real.system, "app.kubernetes.io/component=operator")
    return pod


def _finished_pod(real: RealCluster, namespace: str, name: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (pod := real.json("get", "pod", name, "-n", namespace))["status"].get("phase") not in (
        "Succeeded",
        "Failed",
    ):
        assert time.monotonic() < deadline, f"pod {name} still {pod['status'].get('phase')}"
        time.sleep(0.5)
    return dict(pod)


def test_the_chart_runs_the_operator_in_a_container_on_containerd(real: RealCluster) -> None:
    node = real.json("get", "node", NODE)
    info = node["status"]["nodeInfo"]
    assert info["containerRuntimeVersion"].startswith("containerd://1.6"), info
    assert info["kubeletVersion"] == "v1.36.3" and info["osImage"].startswith("Debian GNU/Linux 12"), info
    pod = _operator_pod(real)
    assert pod["spec"]["nodeName"] == NODE and pod["status"]["phase"] == "Running"
    assert pod["spec"]["containers"][0]["image"].startswith(OPERATOR_IMAGE_PREFIX)
    (container_id,) = _container_ids([pod])
    assert container_id.startswith("containerd://") and len(container_id) == len("containerd://") + 64
    # the image's user (the Dockerfile's 1000), as the restricted profile requires a non-root one
    assert (
        real.kubectl("exec", "-n", real.system, pod["metadata"]["name"], "--", "id", "-u").strip() == "1000"
    )


def test_helm_test_passes(real: RealCluster) -> None:
    output = real.helm("test", RELEASE, f"--namespace={real.system}", "--timeout=3m")
    assert "Phase:          Succeeded" in output, output


def test_the_restricted_profile_refuses_a_privileged_pod(real: RealCluster) -> None:
    namespace = real.restricted_namespace("pss")
    pod = _on_real_node(_operator_pod(real), "privileged", ["true"])
    pod["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    with pytest.raises(KubectlError) as refused:
        real.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(pod))
    message = str(refused.value)
    assert 'violates PodSecurity "restricted:latest"' in message and "privileged" in message, message


@pytest.fixture(scope="module")
def quickstart(real: RealCluster) -> tuple[str, dict[str, Any]]:
    """The quickstart's smoke form (2 trials of 1 epoch, then the whole pipeline) submitted with the
    client, in a restricted namespace, through the chart's operator; returns (namespace, status)."""
    namespace = real.restricted_namespace("quickstart")
    claim = [
        d for d in yaml.safe_load_all(QUICKSTART.read_text()) if d and d["kind"] == "PersistentVolumeClaim"
    ]
    real.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(claim[0]))
    Client.cluster(namespace=namespace, kubeconfig=real.plane.kubeconfig).submit(QUICKSTART, smoke=True)
    return namespace, real.wait_job(namespace, "quickstart", 900)


def test_the_quickstart_succeeds_in_real_containers(real: RealCluster, quickstart: tuple[str, Any]) -> None:
    namespace, status = quickstart
    assert status["phase"] == "Succeeded", status.get("message")
    assert status["results"]["optimized"]["metrics"]["accuracy"] > 0
    pods = real.pods(namespace)
    assert pods and {pod["spec"]["nodeName"] for pod in pods} == {NODE}
    assert all(cid.startswith("containerd://") for cid in _container_ids(pods)), _container_ids(pods)
    # the model and results.json are on the claim (a hostPath volume the real kubelet mounted)
    location = status["artifacts"]["location"].removeprefix("pvc://")
    folder = real.plane.claim_dir(namespace, location.split("/")[0]) / location.split("/", 1)[1] / "pipeline"
    results = json.loads((folder / "results.json").read_text())
    assert results["optimized"] and (folder / "model").exists(), sorted(results)


def test_the_trainers_projected_tokens_authenticate_through_tokenreview(
    real: RealCluster, quickstart: tuple[str, Any]
) -> None:
    namespace, _ = quickstart
    metrics = {
        line.split("{")[1].split("}")[0]: float(line.rsplit(" ", 1)[1])
        for line in real.operator_metrics().splitlines()
        if line.startswith("optikube_progress_requests_total{")
    }
    # every progress message of the trainer pods, bearing the token the real kubelet projected
    assert metrics['outcome="accepted"'] > 0, metrics
    # a pod of the same namespace and the same audience, but no trainer: its token is genuine
    # (the apiserver's TokenReview says so) and the endpoint still refuses it
    url = f"http://{RELEASE}.{real.system}.svc:8443/v1/progress"
    script = (
        "import urllib.request, urllib.error, sys\n"
        "token = open('/var/run/optikube/token').read()\n"
        "print(token)\n"
        "headers = {'Authorization': 'Bearer ' + token}\n"
        f"request = urllib.request.Request({url!r}, data=b'{{}}', headers=headers)\n"
        "try:\n    urllib.request.urlopen(request, timeout=30)\nexcept urllib.error.HTTPError as e:\n"
        "    print(e.code)\n"
    )
    pod = _on_real_node(
        _operator_pod(real),
        "not-a-trainer",
        ["python", "-c", script],
        volumeMounts=[{"name": "token", "mountPath": "/var/run/optikube", "readOnly": True}],
    )
    pod["spec"]["volumes"] = [
        {
            "name": "token",
            "projected": {
                "sources": [
                    {
                        "serviceAccountToken": {
                            "audience": "optikube.io",
                            "path": "token",
                            "expirationSeconds": 3600,
                        }
                    }
                ]
            },
        }
    ]
    real.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(pod))
    finished = _finished_pod(real, namespace, "not-a-trainer")
    assert finished["status"]["phase"] == "Succeeded", finished["status"]
    token, code = real.kubectl("logs", "-n", namespace, "not-a-trainer").split()
    assert code == "401"
    review = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": token, "audiences": ["optikube.io"]},
    }
    answer = json.loads(real.kubectl("create", "-o", "json", "-f", "-", input=json.dumps(review)))["status"]
    assert answer["authenticated"] is True, answer
    assert answer["user"]["extra"]["authentication.kubernetes.io/pod-name"] == ["not-a-trainer"]


def test_the_clients_logs_come_from_the_real_kubelet(real: RealCluster, quickstart: tuple[str, Any]) -> None:
    namespace, _ = quickstart
    handle = Client.cluster(namespace=namespace, kubeconfig=real.plane.kubeconfig).get("quickstart")
    text = handle.logs()  # the pipeline's pod, read through the apiserver from the kubelet
    assert text.strip(), "empty log"
    (pipeline,) = [p for p in real.pods(namespace) if p["metadata"]["name"].startswith("quickstart-pipeline")]
    assert text == real.kubectl("logs", "-n", namespace, pipeline["metadata"]["name"])


def _job(name: str, **spec: Any) -> dict[str, Any]:
    """A one-trial job on the digits: whatever spec adds is what the test is about."""
    body: dict[str, Any] = {
        "seed": 1,
        "data": {"source": {"builtin": "digits"}, "validationSplit": 0.2, "testSplit": 0.2},
        "model": {"builtin": {"name": "mlp"}, "params": {"width": 32, "depth": 2}},
        "objectives": [{"metric": "accuracy", "direction": "maximize"}],
        "tuning": {
            "maxTrials": 1,
            "parallelTrials": 1,
            "maxFailedTrials": 0,
            "searchSpace": {"training.learningRate": {"type": "categorical", "choices": [0.003]}},
        },
        "training": {"epochs": 1, "batchSize": 64},
        "cleanup": {"keepTrialPods": "all"},
    }
    for key, value in spec.items():
        body[key] = {**body.get(key, {}), **value}
    return {
        "apiVersion": "optikube.io/v1alpha1",
        "kind": "OptimizationJob",
        "metadata": {"name": name},
        "spec": body,
    }


def test_a_trial_over_its_memory_limit_is_oom_killed_by_the_kernel(real: RealCluster) -> None:
    namespace = real.restricted_namespace("oom")
    # the preflight builds the spec's model (width 32) and passes in 600Mi; the trial's searched
    # width 8192 (67M parameters, with AdamW's state about 1 GB) does not fit
    job = _job(
        "oom",
        tuning={"searchSpace": {"model.params.width": {"type": "categorical", "choices": [8192]}}},
        resources={"requests": {"cpu": "500m", "memory": "600Mi"}, "limits": {"memory": "600Mi"}},
    )
    real.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(job))
    status = real.wait_job(namespace, "oom", 600)
    assert status["phase"] == "Failed" and status["preflight"]["phase"] == "Passed", status
    trial = real.json("get", "optimizationtrial", "oom-t0", "-n", namespace)["status"]
    assert trial["phase"] == "Failed" and "(OOMKilled)" in trial["message"], trial
    (pod,) = real.pods(namespace, "optikube.io/trial=0")
    (state,) = [s["state"]["terminated"] for s in pod["status"]["containerStatuses"]]
    # containerd read the container's memory cgroup: the kernel's OOM killer ended it
    assert state["reason"] == "OOMKilled" and pod["status"]["phase"] == "Failed", state
    limits = pod["spec"]["containers"][0]["resources"]["limits"]
    assert limits["memory"] == "600Mi"


def test_a_two_worker_trial_rendezvouses_through_the_headless_services_dns(real: RealCluster) -> None:
    namespace = real.restricted_namespace("workers")
    job = _job("pair", resources={"workers": 2, "requests": {"cpu": "500m", "memory": "768Mi"}})
    real.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(job))
    deadline = time.monotonic() + 300
    headless: list[dict[str, Any]] = []
    while not headless:  # the run's Service lives while the run does
        assert time.monotonic() < deadline, "no headless Service for the 2-worker run"
        services = real.json("get", "services", "-n", namespace)["items"]
        headless = [s for s in services if s["spec"].get("clusterIP") == "None"]
        time.sleep(0.5)
    (service,) = headless
    assert service["spec"].get("publishNotReadyAddresses") is True, service["spec"]
    # the trial is what needs the rendezvous; the job's pipeline after it is the quickstart's story
    deadline = time.monotonic() + 600
    while (
        trial := real.json("get", "optimizationtrial", "pair-t0", "-n", namespace).get("status") or {}
    ).get("phase") not in ("Succeeded", "Failed"):
        assert time.monotonic() < deadline, f"trial 0 still {trial.get('phase')}"
        time.sleep(1)
    assert trial["phase"] == "Succeeded", trial
    assert trial["finalValues"]["accuracy"] > 0, trial
    # rank 0 reports the result before the processes exit: the pods end just after the record
    deadline = time.monotonic() + 120
    while True:
        pods = real.pods(namespace, "optikube.io/trial=0")
        if [p["status"]["phase"] for p in pods] == ["Succeeded", "Succeeded"]:
            break
        assert time.monotonic() < deadline, [p["status"] for p in pods]
        time.sleep(0.5)
    assert all(cid.startswith("containerd://") for cid in _container_ids(pods)), _container_ids(pods)
    assert len({p["status"]["podIP"] for p in pods}) == 2  # two pods, two addresses on the node's bridge
    # worker 0's name under the headless Service (the search path completes it), which CoreDNS on
    # the node answers: both pods resolved it before torchrun's c10d rendezvous started
    name = service["metadata"]["name"]
    for pod in pods:
        env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
        assert env["OPTIKUBE_RDZV_HOST"] == f"{name}-0.{name}", env
        assert pod["spec"]["subdomain"] == name
    real.kubectl("delete", "optjob", "pair", "-n", namespace, "--wait=false")


@pytest.mark.long
def test_the_full_quickstart_succeeds_in_real_containers(real: RealCluster) -> None:
    """examples/quickstart.yaml as it is (6 trials, 2 at a time, 5 epochs): what make node-demo runs."""
    namespace = real.restricted_namespace("quickstart-full")
    real.kubectl("apply", "-n", namespace, "-f", str(QUICKSTART))
    status = real.wait_job(namespace, "quickstart", 1500)
    assert status["phase"] == "Succeeded", status.get("message")
    assert status["trialCounts"]["succeeded"] >= 1
    assert all(cid.startswith("containerd://") for cid in _container_ids(real.pods(namespace)))
