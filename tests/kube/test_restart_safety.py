"""The operator killed (SIGKILL) at random points while 3 jobs x 8 trials run: no trial Job is ever
made twice, no trial result is lost, and every job finishes with all its trials."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from kube_harness import Trainers, apply, job_status, manifest, wait_for
from kubernetes import client

from optikube_operator.envtest import ControlPlane
from optikube_operator.envtest.ports import free_ports
from optikube_operator.kube import names

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
JOBS = ("alpha", "bravo", "charlie")
TRIALS = 8
KILLS = 10


@pytest.fixture
def namespace(crds: ControlPlane) -> str:
    """A namespace only this test's operator watches (the session operator watches kube-*)."""
    return crds.create_namespace(f"restart-{uuid.uuid4().hex[:8]}")


def _operator(
    plane: ControlPlane, namespace: str, report: int, metrics: int, log: Path
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "optikube_operator",
        "operator",
        f"--kubeconfig={plane.kubeconfig}",
        f"--namespace={namespace}",
        f"--report-bind=127.0.0.1:{report}",
        f"--metrics-bind=127.0.0.1:{metrics}",
        "--trainer-image=optikube/trainer:test",
    ]
    with log.open("ab") as stream:
        return subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT, start_new_session=True)


class PlayingTrainers(threading.Thread):
    """Plays every trial pod, whether or not the operator is up to hear the reports."""

    def __init__(self, trainers: Trainers) -> None:
        super().__init__(daemon=True)
        self.trainers = trainers
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.trainers.play_all()
                time.sleep(0.2)
        except BaseException as error:
            self.error = error


def test_killing_the_operator_at_random_points_loses_and_duplicates_nothing(
    crds: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    report, metrics = free_ports(2)
    trainers = Trainers(crds, namespace, f"http://127.0.0.1:{report}/v1/report", tolerant=True)
    for name in JOBS:
        job = manifest("quickstart", namespace)
        job["metadata"]["name"] = name
        job["spec"]["tuning"].update({"maxTrials": TRIALS, "parallelTrials": 2, "pruner": {"type": "none"}})
        job["spec"]["training"]["epochs"] = 2
        apply(crds, job)
    player = PlayingTrainers(trainers)
    player.start()
    rng = random.Random(20261201)
    log = tmp_path / "operator.log"
    try:
        for _ in range(KILLS):
            process = _operator(crds, namespace, report, metrics, log)
            time.sleep(rng.uniform(0.5, 4.0))
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)
        final = _operator(crds, namespace, report, metrics, log)
        try:
            wait_for(
                "every job to finish",
                lambda: all(
                    job_status(crds, namespace, name).get("phase") in ("Succeeded", "Failed") for name in JOBS
                ),
                timeout=300,
                interval=1.0,
            )
        finally:
            os.killpg(final.pid, signal.SIGTERM)
            final.wait(60)
    finally:
        player.stop.set()
        player.join(30)
    assert player.error is None, player.error

    with crds.api_client() as api:
        trials = client.CustomObjectsApi(api).list_namespaced_custom_object(
            "optikube.io", "v1alpha1", namespace, "optimizationtrials"
        )["items"]
    by_job: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for trial in trials:
        by_job[trial["spec"]["jobRef"]["name"]].append(trial)
    pods_per_run: dict[str, set[str]] = defaultdict(set)
    for pod in trainers.handled:
        pods_per_run[pod.rsplit("-", 2)[0]].add(pod)
    for name in JOBS:
        status = job_status(crds, namespace, name)
        assert status["phase"] == "Succeeded", (name, status.get("message"))
        assert status["trialCounts"]["completed"] == TRIALS and status["trialCounts"]["succeeded"] == TRIALS
        numbers = sorted(t["spec"]["number"] for t in by_job[name])
        assert numbers == list(range(TRIALS)), (name, numbers)
        for trial in by_job[name]:
            assert trial["status"]["finalValues"].get("accuracy") is not None, trial["metadata"][
                "name"
            ]  # none lost
            assert trial["status"]["attempts"] == 1, trial["metadata"]["name"]  # launched once
            run = names.run_name(name, trial["spec"]["number"])
            assert len(pods_per_run[run]) == 1, (run, pods_per_run[run])  # one Job, one pod, ever
