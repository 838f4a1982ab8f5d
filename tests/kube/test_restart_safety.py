"""The operator killed (SIGKILL) at random points while jobs run (3 jobs x 8 trials x 10 kills in
make test, 20 x 10 x 50 in make test-reliability): no trial Job is ever made twice, no trial result
is lost, and every job finishes with all its trials."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from kube_harness import (
    PlayingTrainers,
    Trainers,
    apply,
    assert_nothing_lost_or_repeated,
    job_status,
    manifest,
    wait_for,
)

from optikube_testcluster import ControlPlane
from optikube_testcluster.ports import free_ports

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


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
        f"--progress-bind=127.0.0.1:{report}",
        f"--metrics-bind=127.0.0.1:{metrics}",
        "--trainer-image=optikube/trainer:test",
    ]
    with log.open("ab") as stream:
        return subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT, start_new_session=True)


def _kill_at_random_points(
    crds: ControlPlane, namespace: str, log: Path, jobs: int, trials: int, kills: int
) -> None:
    job_names = [f"job-{i}" for i in range(jobs)]
    report, metrics = free_ports(2)
    trainers = Trainers(crds, namespace, f"http://127.0.0.1:{report}/v1/progress", tolerant=True)
    for name in job_names:
        job = manifest("quickstart", namespace)
        job["metadata"]["name"] = name
        job["spec"]["tuning"].update({"maxTrials": trials, "parallelTrials": 2, "pruner": {"type": "none"}})
        job["spec"]["training"]["epochs"] = 2
        apply(crds, job)
    rng = random.Random(20261201)
    with PlayingTrainers(trainers):
        for _ in range(kills):
            process = _operator(crds, namespace, report, metrics, log)
            time.sleep(rng.uniform(0.5, 4.0))
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)
        final = _operator(crds, namespace, report, metrics, log)
        try:
            wait_for(
                "every job to finish",
                lambda: all(
                    job_status(crds, namespace, name).get("phase") in ("Succeeded", "Failed")
                    for name in job_names
                ),
                timeout=300 + 30 * jobs,
                interval=1.0,
            )
        finally:
            os.killpg(final.pid, signal.SIGTERM)
            final.wait(60)

    assert_nothing_lost_or_repeated(trainers, job_names, trials)


def test_killing_the_operator_at_random_points_loses_and_duplicates_nothing(
    crds: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    _kill_at_random_points(crds, namespace, tmp_path / "operator.log", jobs=3, trials=8, kills=10)


@pytest.mark.reliability
def test_fifty_kills_across_twenty_jobs_of_ten_trials_lose_and_duplicate_nothing(
    crds: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    _kill_at_random_points(crds, namespace, tmp_path / "operator.log", jobs=20, trials=10, kills=50)
