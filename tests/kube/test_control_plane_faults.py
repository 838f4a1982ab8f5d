"""The control plane fails under a running job: the apiserver or etcd is killed and comes back, or
every connection the operator holds goes silent (kopf#585/#957: a watch that stalls without an
error). The operator notices within 60 s, resumes, and loses or repeats no trial.

These tests restart components, so they run on a control plane of their own (kwok nodes only),
not on the session's; with that second control plane they take minutes, so they run in
`make test-reliability`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_harness import (
    PlayingTrainers,
    RunningOperator,
    Trainers,
    apply,
    assert_nothing_lost_or_repeated,
    job_status,
    manifest,
    operator_running,
    trial_objects,
    wait_for,
)
from kubernetes import client
from stall_proxy import StallingProxy

from optikube_operator.kube import names
from optikube_testcluster import ControlPlane

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.reliability]
ROOT = Path(__file__).resolve().parents[2]
TRIALS = 8
RECOVERY_LIMIT = 60.0  # seconds from the fault's end to the operator's next action


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    with ControlPlane() as plane:
        plane.install_crds(ROOT / "crds")
        yield plane


def _job(namespace: str, name: str) -> dict[str, Any]:
    job = manifest("quickstart", namespace)
    job["metadata"]["name"] = name
    job["spec"]["tuning"].update({"maxTrials": TRIALS, "parallelTrials": 2, "pruner": {"type": "none"}})
    job["spec"]["training"]["epochs"] = 2
    return job


def _succeeded(plane: ControlPlane, namespace: str) -> int:
    return sum((t.get("status") or {}).get("phase") == "Succeeded" for t in trial_objects(plane, namespace))


def _created(obj: Any) -> float:
    stamp = obj.metadata.creation_timestamp
    return stamp.timestamp() if isinstance(stamp, datetime) else float("inf")


def _run_jobs(trainers: Trainers) -> list[Any]:
    """The batch Jobs the operator made (only it makes them)."""
    with trainers.plane.api_client() as api:
        return list(
            client.BatchV1Api(api)
            .list_namespaced_job(trainers.namespace, label_selector=f"{names.MANAGED_BY}={names.MANAGER}")
            .items
        )


def _next_run_after(trainers: Trainers, moment: float, known: set[str]) -> float:
    """Seconds from `moment` (wall clock) until the operator made a run's Job not in `known`."""

    def made() -> tuple[float, str] | None:
        fresh = [(_created(j), j.metadata.name) for j in _run_jobs(trainers) if j.metadata.name not in known]
        return min(fresh) if fresh else None

    created, name = wait_for("the operator's next run", made, timeout=RECOVERY_LIMIT + 30)
    print(f"{name} created {created - moment:+.1f} s after the fault")
    return max(0.0, created - moment)


def _finish(plane: ControlPlane, trainers: Trainers, name: str) -> None:
    wait_for(
        f"{name} to finish",
        lambda: job_status(plane, trainers.namespace, name).get("phase") in ("Succeeded", "Failed"),
        timeout=240,
        interval=1.0,
    )


@pytest.mark.parametrize("component", ["kube-apiserver", "etcd"])
def test_a_restarted_component_is_noticed_and_the_job_goes_on_without_loss(
    plane: ControlPlane, component: str
) -> None:
    namespace = plane.create_namespace(f"fault-{component.split('-')[-1]}")
    with operator_running(plane, namespaces=(namespace,)) as operator:
        trainers = Trainers(plane, namespace, operator.progress_url, tolerant=True)
        apply(plane, _job(namespace, "restarted"))
        with PlayingTrainers(trainers) as player:
            wait_for("two trials to succeed", lambda: _succeeded(plane, namespace) >= 2, timeout=120)
            known = {j.metadata.name for j in _run_jobs(trainers)}
            down = plane.restart(component, kill=True, down_seconds=5.0)
            back = time.time()
            recovery = _next_run_after(trainers, back, known)
            _finish(plane, trainers, "restarted")
        print(
            f"{component}: down {down:.1f} s, next run {recovery:.1f} s after it served again, "
            f"{player.interruptions} plays cut short"
        )
        assert recovery <= RECOVERY_LIMIT
        assert_nothing_lost_or_repeated(trainers, ["restarted"], TRIALS)


def _kubeconfig_through(plane: ControlPlane, port: int, path: Path) -> Path:
    document = yaml.safe_load(plane.kubeconfig.read_text())
    for cluster in document["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{port}"
    path.write_text(yaml.safe_dump(document))
    return path


def test_a_silently_stalled_watch_is_noticed_within_a_minute(plane: ControlPlane, tmp_path: Path) -> None:
    namespace = plane.create_namespace("fault-stall")
    proxy = StallingProxy("127.0.0.1", int(plane.server.rsplit(":", 1)[1]))
    kubeconfig = _kubeconfig_through(plane, proxy.port, tmp_path / "kubeconfig")
    try:
        operator: RunningOperator
        with operator_running(plane, kubeconfig=kubeconfig, namespaces=(namespace,)) as operator:
            trainers = Trainers(plane, namespace, operator.progress_url, tolerant=True)
            apply(plane, _job(namespace, "stalled"))
            wait_for("two trial pods", lambda: len(trainers.running()) == 2, timeout=120)
            # the trainer's result travels only in the termination message (no report): the
            # operator can learn that the pod ended only from its watch
            frozen = proxy.freeze()
            assert frozen > 0
            known = {j.metadata.name for j in _run_jobs(trainers)}
            ended = time.time()
            for pod in trainers.running():
                trial = trainers.config_of(pod)["trial"]["number"]
                final = {"type": "final", "trial": trial, "values": {"accuracy": 0.9}, "results": {}}
                trainers.handled.add(pod.metadata.name)
                trainers.finish(pod, 0, json.dumps(final))
            recovery = _next_run_after(trainers, ended, known)
            print(f"{frozen} connections frozen; next run {recovery:.1f} s after the pods ended")
            assert recovery <= RECOVERY_LIMIT
            with PlayingTrainers(trainers):
                _finish(plane, trainers, "stalled")
        assert_nothing_lost_or_repeated(trainers, ["stalled"], TRIALS)
    finally:
        proxy.close()
