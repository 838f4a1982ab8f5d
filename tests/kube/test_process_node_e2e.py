"""End to end on the process node: the operator's pod specs run the real trainer (torchrun, DDP,
reports with projected tokens), and what the trainer does reaches the OptimizationTrials.

The operator runs in this process, as it would outside a cluster; pods reach its progress endpoint
through a host-backed Service (`optikube.optikube-system.svc`), as trainer pods reach the chart's
Service in a real cluster. Trainer defaults send every pod to the process node.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kube_harness import (
    RunningOperator,
    apply,
    job_status,
    manifest,
    operator_running,
    trial_objects,
    wait_for,
)
from kubernetes import client

from optikube_operator.api.validation import parse_spec
from optikube_operator.core import JobSettings
from optikube_operator.core.study import grid_points
from optikube_operator.kube import names
from optikube_operator.kube.config import TrainerDefaults
from optikube_testcluster import (
    PROCESS_NODE_SELECTOR,
    PROCESS_NODE_TOLERATION,
    ControlPlane,
)
from optikube_testcluster.demo import SYSTEM, progress_service
from optikube_testcluster.ports import free_ports
from optikube_testcluster.processnode.nsinit import resolve_in_root
from optikube_testcluster.processnode.testing import processes_with

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
GOOD, BAD, OTHER = 0.05, 1e-7, 0.02


@pytest.fixture(scope="module")
def pn_operator(crds: ControlPlane) -> Iterator[RunningOperator]:
    report, metrics = free_ports(2)
    crds.kubectl("create", "namespace", SYSTEM, check=False)
    apply(crds, progress_service(report))
    defaults = TrainerDefaults(
        image="optikube/trainer:test",
        node_selector=dict(PROCESS_NODE_SELECTOR),
        tolerations=(dict(PROCESS_NODE_TOLERATION),),
    )
    with operator_running(
        crds,
        progress_bind=f"127.0.0.1:{report}",
        metrics_bind=f"127.0.0.1:{metrics}",
        progress_url=f"http://optikube.{SYSTEM}.svc:8443/v1/progress",
        trainer=defaults,
        namespaces=("pn-*",),
    ) as running:
        yield running


@pytest.fixture
def namespace(crds: ControlPlane) -> str:
    """A namespace only this module's operator watches."""
    return crds.create_namespace(f"pn-{uuid.uuid4().hex[:8]}")


def iris_job(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "data": {"source": {"builtin": "iris"}},
        "model": {"builtin": {"name": "mlp"}, "params": {"width": 16}},
        "objectives": [{"metric": "accuracy", "direction": "maximize"}],
        "training": {"epochs": 3, "batchSize": 16},
        "resources": {"requests": {"cpu": "100m"}},
    }
    body.update(spec)
    return {
        "apiVersion": "optikube.io/v1alpha1",
        "kind": "OptimizationJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def _pods(plane: ControlPlane, namespace: str, selector: str) -> list[Any]:
    with plane.api_client() as api:
        return list(client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector).items)


def _trial(plane: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    """The OptimizationTrial, or {} while it does not exist yet."""
    with plane.api_client() as api:
        try:
            body: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(
                "optikube.io", "v1alpha1", namespace, "optimizationtrials", name
            )
        except client.ApiException as error:
            if error.status == 404:
                return {}
            raise
    return body


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def _seed_with_order(space: dict[str, Any], wanted: list[float]) -> int:
    """A seed whose grid order is ``wanted`` (the grid is shuffled by the seed)."""
    for seed in range(200):
        spec = iris_job(
            "x", "x", seed=seed, tuning={"sampler": {"type": "grid"}, "maxTrials": 3, "searchSpace": space}
        )
        settings = JobSettings.from_spec(parse_spec(spec["spec"]), "x")
        if [p["training.learningRate"] for p in grid_points(settings)] == wanted:
            return seed
    raise AssertionError("no seed gives that order")


def test_trainer_pods_run_as_specified_report_prune_and_fall_back_to_termination_messages(
    crds: ControlPlane, pn_operator: RunningOperator, namespace: str
) -> None:
    space = {"training.learningRate": {"type": "categorical", "choices": [GOOD, BAD, OTHER]}}
    job = iris_job(
        "contract",
        namespace,
        seed=_seed_with_order(space, [GOOD, BAD, OTHER]),
        tuning={
            "sampler": {"type": "grid"},
            "pruner": {"type": "median", "startupTrials": 1, "warmupSteps": 0},
            "maxTrials": 3,
            "parallelTrials": 1,
            "searchSpace": space,
        },
    )
    apply(crds, job)

    # 1. while trial 0 runs: its processes have exactly what the pod spec says
    selector = f"{names.JOB_LABEL}=contract,{names.TRIAL_LABEL}=0"
    pod = wait_for(
        "trial 0 running",
        lambda: [p for p in _pods(crds, namespace, selector) if p.status.phase == "Running"],
        timeout=180,  # after the job's preflight (a real trainer process) passed
    )[0]
    launcher = wait_for("its torchrun", lambda: processes_with("--rdzv-id contract-t0"))[0]
    command = Path(f"/proc/{launcher}/cmdline").read_bytes().decode().split("\0")
    expected_tail = [
        "--nnodes", "1", "--nproc-per-node", "1", "--node-rank", "0", "--rdzv-backend", "c10d",
        "--rdzv-endpoint", "localhost:29500", "--rdzv-id", "contract-t0",  # one worker: no peers
        "-m", "optikube_trainer", "trial", "--config", "/etc/optikube/run.json",
    ]  # fmt: skip
    assert command[-len(expected_tail) - 1 : -1] == expected_tail, command
    environ = _environ(launcher)
    container = pod.spec.containers[0]
    for variable in container.env:
        if variable.value is not None:
            assert environ[variable.name] == variable.value, variable.name
    assert environ["POD_NAME"] == pod.metadata.name and environ["JOB_COMPLETION_INDEX"] == "0"
    root = f"/proc/{launcher}/root"

    def inside(path: str) -> str:  # the file as the container sees it (its symlinks, its root)
        return Path(resolve_in_root(root, path)).read_text()

    with crds.api_client() as api:
        config_map = client.CoreV1Api(api).read_namespaced_config_map("contract-t0-config", namespace)
        assert inside("/etc/optikube/run.json") == config_map.data["run.json"]
        token = inside("/var/run/secrets/optikube/token")
        review = client.AuthenticationV1Api(api).create_token_review(
            {"spec": {"token": token, "audiences": ["optikube.io"]}}
        )
    assert review.status.authenticated
    assert review.status.user.extra["authentication.kubernetes.io/pod-name"] == [pod.metadata.name]

    # 2. trial 0 pushes its reports; trial 1 (a hopeless learning rate) is pruned on a reply
    wait_for(
        "trial 0 done",
        lambda: _trial(crds, namespace, "contract-t0").get("status", {}).get("phase") == "Succeeded",
        timeout=300,
    )
    first = _trial(crds, namespace, "contract-t0")["status"]
    assert [v["step"] for v in first["intermediateValues"]] == [0, 1, 2] and first["finalValues"][
        "accuracy"
    ] > 0.5
    wait_for(
        "trial 1 pruned",
        lambda: _trial(crds, namespace, "contract-t1").get("status", {}).get("phase") == "Pruned",
        timeout=300,
    )

    # 3. the endpoint becomes unreachable: trial 2's result still arrives, by its termination message
    dead = free_ports(1)[0]
    apply(crds, progress_service(dead))
    wait_for(
        "trial 2 done",
        lambda: (
            _trial(crds, namespace, "contract-t2").get("status", {}).get("phase") in ("Succeeded", "Failed")
        ),
        timeout=300,
    )
    third = _trial(crds, namespace, "contract-t2")["status"]
    assert third["phase"] == "Succeeded" and third["finalValues"]["accuracy"] > 0.5
    # no push ever arrived: its epochs came as the unconfirmed steps of its termination message
    assert [v["step"] for v in third["intermediateValues"]] == [0, 1, 2]
    apply(crds, progress_service(int(pn_operator.config.progress_bind.rsplit(":", 1)[1])))

    final = wait_for(
        "the job to finish",
        lambda: (s := job_status(crds, namespace, "contract")).get("phase") in ("Succeeded", "Failed") and s,
        timeout=600,
        interval=2,
    )
    assert final["phase"] == "Succeeded", final.get("message")
    assert final["results"]["optimized"]["metrics"]["accuracy"] > 0.5
    # the real evaluation's runtimes, as the trainer's results document gave them to the status
    tried = {r["runtime"]: r for r in final["results"]["runtimes"]}
    assert "eager" in tried and final["results"]["runtime"] in tried
    assert tried[final["results"]["runtime"]]["optimized"]["batch1P50"] > 0


def test_a_two_worker_trial_rendezvouses_through_the_headless_service_and_trains_with_ddp(
    crds: ControlPlane, pn_operator: RunningOperator, namespace: str
) -> None:
    apply(
        crds,
        iris_job(
            "ddp",
            namespace,
            tuning={
                "sampler": {"type": "random"},
                "maxTrials": 1,
                "searchSpace": {"training.learningRate": {"type": "categorical", "choices": [0.05]}},
            },
            resources={"workers": 2, "processesPerWorker": 1, "requests": {"cpu": "100m"}},
            # both ranks' logs are read below: a finished trial's pods are otherwise deleted
            cleanup={"keepTrialPods": "all"},
        ),
    )
    wait_for(
        "the trial to finish",
        lambda: _trial(crds, namespace, "ddp-t0").get("status", {}).get("phase") in ("Succeeded", "Failed"),
        timeout=400,
        interval=2,
    )
    trial = _trial(crds, namespace, "ddp-t0")["status"]
    assert trial["phase"] == "Succeeded", trial.get("message")
    assert len(trial["intermediateValues"]) == 3  # rank 0 reported every epoch
    selector = f"{names.JOB_LABEL}=ddp,{names.TRIAL_LABEL}=0"
    # the trial is recorded on rank 0's final push; the pods exit right after
    pods = wait_for(
        "both pods Succeeded",
        lambda: (
            (p := _pods(crds, namespace, selector)) and all(x.status.phase == "Succeeded" for x in p) and p
        ),
        timeout=120,
    )
    assert sorted(p.metadata.annotations[names.COMPLETION_INDEX_ANNOTATION] for p in pods) == ["0", "1"]
    for pod in pods:
        log = crds.container_log(namespace, pod.metadata.name, "trainer").read_text()
        index = pod.metadata.annotations[names.COMPLETION_INDEX_ANNOTATION]
        assert f"rank {index} of 2" in log, log[-2000:]  # both ranks ran in one process group
    # the pipeline starts with its own two workers; deleting the job stops every process of it
    wait_for("the pipeline's processes", lambda: processes_with("--rdzv-id ddp-pipeline"), timeout=120)
    crds.kubectl("delete", "optjob", "ddp", "-n", namespace, "--wait=true")
    wait_for("no process left", lambda: not processes_with("--rdzv-id ddp-"), timeout=90)


def test_killing_a_trial_pods_process_fails_the_pod_with_its_exit_code_and_the_trial_with_it(
    crds: ControlPlane, pn_operator: RunningOperator, namespace: str
) -> None:
    apply(
        crds,
        iris_job(
            "doomed",
            namespace,
            training={"epochs": 50, "batchSize": 16},
            tuning={
                "maxTrials": 2,
                "maxFailedTrials": 0,
                "searchSpace": {"training.learningRate": {"type": "categorical", "choices": [0.05]}},
            },
        ),
    )
    launcher = wait_for("the trial's torchrun", lambda: processes_with("--rdzv-id doomed-t0"), timeout=120)[0]
    os.kill(launcher, signal.SIGKILL)
    pods = _pods(crds, namespace, f"{names.JOB_LABEL}=doomed,{names.TRIAL_LABEL}=0")
    pod = wait_for(
        "the pod Failed",
        lambda: (
            (p := _pods(crds, namespace, f"{names.JOB_LABEL}=doomed,{names.TRIAL_LABEL}=0"))
            and p[0].status.phase == "Failed"
            and p[0]
        ),
        timeout=60,
    )
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 137 and pods
    status = wait_for(
        "the job Failed",
        lambda: (s := job_status(crds, namespace, "doomed")).get("phase") == "Failed" and s,
        timeout=60,
    )
    assert next(c for c in status["conditions"] if c["type"] == "Failed")["reason"] == "TooManyFailures"
    trial = _trial(crds, namespace, "doomed-t0")["status"]
    assert trial["phase"] == "Failed" and "137" in trial["message"]
    time.sleep(1)


def test_the_quickstart_with_a_missing_data_file_fails_its_preflight_naming_the_field_with_no_trial(
    crds: ControlPlane, pn_operator: RunningOperator, namespace: str
) -> None:
    source = {"file": {"path": "/data/churn.csv", "format": "csv", "targetColumn": "churned"}}
    apply(crds, manifest("quickstart", namespace, data__source=source))
    status = wait_for(
        "the job to finish",
        lambda: (
            (s := job_status(crds, namespace, "quickstart")).get("phase") in ("Succeeded", "Failed") and s
        ),
        timeout=300,
        interval=1,
    )
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "PreflightFailed", status
    assert failed["message"].startswith("spec.data.source.file.path: "), failed["message"]
    assert "/data/churn.csv" in failed["message"]
    assert status["preflight"]["phase"] == "Failed" and status["preflight"]["message"] == failed["message"]
    with crds.api_client() as api:
        jobs = [j.metadata.name for j in client.BatchV1Api(api).list_namespaced_job(namespace).items]
    # no trial, no trial Job; the failed preflight's Job is kept for its logs
    assert trial_objects(crds, namespace) == [] and jobs == ["quickstart-preflight"]
    (pod,) = _pods(crds, namespace, f"{names.JOB_LABEL}=quickstart")
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 2 and terminated.message == failed["message"]
