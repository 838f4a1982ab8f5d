"""The operator killed (SIGKILL) at random points while jobs run (3 jobs x 8 trials x 10 kills in
make test, 20 x 10 x 50 in make test-reliability): no trial Job is ever made twice, no trial result
is lost, and every job finishes with all its trials. And killed while the progress it answered
waits for its write (`kube.progress_writes`): no answered step is lost, none is recorded twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kube_harness import (
    PlayingTrainers,
    Trainers,
    apply,
    assert_nothing_lost_or_repeated,
    job_status,
    manifest,
    trial_objects,
    wait_for,
)

from optikube_operator.kube import names
from optikube_operator.kube.progress_writes import MAX_UNWRITTEN
from optikube_testcluster import ControlPlane
from optikube_testcluster.ports import free_ports
from optikube_trainer.progress import ProgressSender

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


STEPS = 150


def _value(trial: int, step: int) -> float:
    return round(0.5 + trial / 10 + step / 10_000, 6)


class RecordingSender(ProgressSender):
    """The trainer's own sender, noting each step the endpoint answered 200."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.answered: list[int] = []

    def _post(self, progress: Any) -> tuple[int | None, dict[str, Any]]:
        status, reply = super()._post(progress)
        if status == 200 and progress.get("type") == "intermediate":
            self.answered.append(int(progress["step"]))
        return status, reply


def _send_steps(trial: int, sender: RecordingSender, done: threading.Event) -> None:
    for step in range(STEPS):
        sender.intermediate(step, {"accuracy": _value(trial, step)})
        time.sleep(0.02)
    done.set()


def _answer_more(senders: list[tuple[int, RecordingSender, threading.Event]], steps: int) -> None:
    """Waits until some trial has ``steps`` more answered steps (or all trials sent every step)."""
    assert steps < MAX_UNWRITTEN
    before = [len(sender.answered) for _, sender, _ in senders]
    wait_for(
        f"the operator to answer {steps} more steps",
        lambda: (
            all(done.is_set() for _, _, done in senders)
            or any(
                len(sender.answered) - count >= steps
                for (_, sender, _), count in zip(senders, before, strict=True)
            )
        ),
        timeout=120,
        interval=0.005,
    )


def _durable_steps(plane: ControlPlane, namespace: str) -> dict[int, int | None]:
    return {
        int(t["spec"]["number"]): (t.get("status") or {}).get("latestStep")
        for t in trial_objects(plane, namespace)
    }


def test_killing_the_operator_before_it_wrote_the_progress_it_answered_loses_and_duplicates_nothing(
    crds: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    """Two trials send 150 steps each, 20 ms apart, with the trainer's ProgressSender, while the
    operator is killed 6 times, each time after it answered a few steps more of a trial; it answers
    steps before writing them (16 steps in a write), so each kill finds answered steps unwritten.
    Every step ends up recorded exactly once, with its value: the trainer sent the unconfirmed
    ones again with its next messages."""
    report, metrics = free_ports(2)
    log = tmp_path / "operator.log"
    url = f"http://127.0.0.1:{report}/v1/progress"
    trainers = Trainers(crds, namespace, url, tolerant=True)
    job = manifest("quickstart", namespace)
    job["spec"]["tuning"].update({"maxTrials": 2, "parallelTrials": 2, "pruner": {"type": "none"}})
    job["spec"]["tuning"]["trialTimeout"] = "1h"
    job["spec"]["training"]["epochs"] = STEPS
    apply(crds, job)
    process = _operator(crds, namespace, report, metrics, log)
    try:
        pods = wait_for(
            "both trial pods running", lambda: len(trainers.running()) == 2 and trainers.running()
        )
        senders: list[tuple[int, RecordingSender, threading.Event]] = []
        for pod in pods:
            trial = int(pod.metadata.labels[names.TRIAL_LABEL])
            token = tmp_path / f"token-{trial}"
            token.write_text(trainers.token(pod, seconds=3600))
            # retries: a send waits out an operator's restart (503, refused connections)
            sender = RecordingSender(
                rank=0, trial=trial, url=url, token_file=str(token), output_dir=tmp_path / str(trial),
                termination_log=tmp_path / "no-termination-log", timeout_s=5.0, retries=6,
            )  # fmt: skip
            senders.append((trial, sender, threading.Event()))
        threads = [threading.Thread(target=_send_steps, args=entry, daemon=True) for entry in senders]
        for thread in threads:
            thread.start()
        rng = random.Random(20261207)
        unwritten_at_a_kill = 0
        for _ in range(6):
            # each kill lands after this operator answered 2 to 12 more steps of a trial: after a
            # (re)start its first step is written at once and the next ones wait for
            # MAX_UNWRITTEN, so the kill always finds answered steps unwritten. A timed kill
            # could land before a slow restart answered anything, and the test proved nothing.
            _answer_more(senders, rng.randint(2, 12))
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)
            durable = _durable_steps(crds, namespace)
            answered = {trial: max(sender.answered, default=-1) for trial, sender, _ in senders}
            unwritten_at_a_kill += sum(
                1
                for trial, step in answered.items()
                if (-1 if durable[trial] is None else durable[trial]) < step
            )
            process = _operator(crds, namespace, report, metrics, log)
        for thread in threads:
            thread.join(120)
        assert all(done.is_set() for _, _, done in senders)
        for trial, sender, _ in senders:
            sender.final({"accuracy": _value(trial, STEPS - 1)}, {"trial": trial})
        statuses = {int(t["spec"]["number"]): t["status"] for t in trial_objects(crds, namespace)}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(60)
    assert unwritten_at_a_kill > 0, "no kill found an answered step unwritten: the test proves nothing"
    for trial, sender, _ in senders:
        status = statuses[trial]
        assert status["phase"] == "Succeeded", status
        recorded = [(entry["step"], entry["value"]) for entry in status["intermediateValues"]]
        assert recorded == [(step, _value(trial, step)) for step in range(STEPS)]  # each once, in order
        assert set(sender.answered) <= set(range(STEPS))
