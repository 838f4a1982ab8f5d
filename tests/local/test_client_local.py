"""`optikube.Client.local`: jobs run by a process of their own (the client's local runner, i.e.
`optikube run`), here with the torch-free stand-in trainer; everything else is the real code."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from local_jobs import log_uniform, median_search, mlp_job

import optikube
from optikube import Client, ClientError, ErrorReason, JobHandle
from optikube_operator.client.local import LocalJobs
from optikube_operator.client.local_status import RUNNER_FILE
from optikube_operator.client.updates import UPDATE_KINDS

RUNNER = [sys.executable, str(Path(__file__).with_name("client_fake_runner.py"))]


def _job(name: str, trials: int = 4, epochs: int = 3, **tuning: Any) -> dict[str, Any]:
    search = median_search(
        {"type": "random"},
        trials=trials,
        parallel=2,
        space={"training.learningRate": log_uniform(1e-4, 1e-1)},
        **tuning,
    )
    return mlp_job(
        name,
        seed=3,
        data={"source": {"builtin": "digits"}},
        params={"width": 32},
        tuning=search,
        training={"epochs": epochs, "learningRate": 0.01},
    )


@pytest.fixture
def client(tmp_path: Path) -> Client:
    return Client(LocalJobs(tmp_path, runner=RUNNER, poll_seconds=0.1))


def test_a_local_job_is_submitted_watched_and_answers_with_typed_records(
    client: Client, tmp_path: Path
) -> None:
    handle = client.submit(_job("watched"))
    assert (handle.name, handle.phase) == ("watched", "Pending")
    updates = list(handle.watch(timeout=120))
    assert handle.phase == "Succeeded", handle.snapshot.status.message
    kinds = {type(update) for update in updates}
    assert set(UPDATE_KINDS) <= kinds
    phases = [u.phase for u in updates if isinstance(u, optikube.PhaseChanged)]
    assert phases[0] == "Pending" and phases[-1] == "Succeeded" and "Tuning" in phases
    started = [u.trial.number for u in updates if isinstance(u, optikube.TrialStarted)]
    assert sorted(started) == [0, 1, 2, 3]
    assert all(isinstance(str(update), str) and "\x1b" not in str(update) for update in updates)

    trials = handle.trials()
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert {t.state for t in trials} <= {"Succeeded", "Pruned"}
    best = handle.best_trial()
    assert best is not None and best.state == "Succeeded"
    assert best.values["accuracy"] == max(t.values.get("accuracy", 0) for t in trials)
    results = handle.results()
    document = json.loads((tmp_path / "watched" / "results.json").read_text())
    # the same results.json `optikube run` writes, and its summary in the status' shape
    assert results.document == document and results.location == str(tmp_path / "watched" / "results.json")
    assert results.optimized is not None and results.optimized.size_bytes == 4000
    assert results.to_dict()["bestTrial"]["number"] == document["bestTrial"]["number"] == best.number
    assert [h.name for h in client.list()] == ["watched"]
    assert client.get("watched").phase == "Succeeded"
    html = handle._repr_html_()
    assert "Succeeded" in html and f"best trial {best.number}" in html and "Baseline vs optimized" in html


def test_wait_raises_on_failure_and_timeout_and_submit_refuses_what_is_not_valid(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRAINER_CRASH", "0,1,2,3")
    failing = client.submit(_job("failing"))
    with pytest.raises(ClientError) as failed:
        failing.wait(timeout=120)
    assert failed.value.reason is ErrorReason.JOB_FAILED
    assert "Failed (TooManyFailures)" in str(failed.value) and "maxFailedTrials" in failed.value.hint
    with pytest.raises(ClientError) as no_results:
        failing.results()
    assert no_results.value.reason is ErrorReason.JOB_FAILED
    assert "RuntimeError: fake trainer crashed" in failing.logs(trial=0)

    monkeypatch.setenv("FAKE_TRAINER_CRASH", "")
    monkeypatch.setenv("FAKE_TRAINER_EPOCH_SECONDS", "5")
    slow = client.submit(_job("slow"))
    with pytest.raises(ClientError) as late:
        slow.wait(timeout=1.0)
    assert late.value.reason is ErrorReason.TIMEOUT and "still" in str(late.value)
    with pytest.raises(ClientError) as early:
        slow.results()
    assert early.value.reason is ErrorReason.NOT_READY and "wait()" in early.value.hint
    with pytest.raises(ClientError) as twice:
        client.submit(_job("slow"))
    assert twice.value.reason is ErrorReason.ALREADY_EXISTS
    slow.delete()
    assert [h.name for h in client.list()] == ["failing"]

    bad = _job("bad")
    bad["spec"]["training"]["epochs"] = 0
    with pytest.raises(ClientError) as invalid:
        client.submit(bad)
    assert invalid.value.reason is ErrorReason.INVALID_SPEC
    assert [str(e) for e in invalid.value.errors] == [
        "spec.training.epochs: must be greater than or equal to 1"
    ]
    with pytest.raises(ClientError) as unknown:
        client.get("bad")
    assert unknown.value.reason is ErrorReason.NOT_FOUND


def test_suspend_stops_the_runner_and_resume_continues_without_running_a_trial_twice(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRAINER_EPOCH_SECONDS", "0.5")
    handle = client.submit(_job("paused", trials=4, epochs=2))
    for update in handle.watch(timeout=60):
        if isinstance(update, optikube.TrialFinished | optikube.TrialPruned):
            break
    handle.suspend()
    assert handle.phase == "Suspended"
    finished = {t.number for t in handle.trials() if t.finished}
    assert finished
    handle.resume()
    assert handle.wait(timeout=120).phase == "Succeeded"
    runs = [
        line
        for path in sorted((tmp_path / "paused").glob("trials/*/fake-runs.log"))
        for line in path.read_text().splitlines()
    ]
    for number in finished:
        assert runs.count(f"trial {number}") == 1, runs  # what had finished did not run again


def test_a_killed_runner_fails_the_job_saying_how_to_continue(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRAINER_EPOCH_SECONDS", "5")
    handle = client.submit(_job("killed"))
    pid = json.loads((Path(handle.snapshot.where) / RUNNER_FILE).read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while handle.refresh().phase != "Failed" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert handle.snapshot.reason == "RunnerExited"
    assert "resume()" in str(handle.snapshot.status.message)
    monkeypatch.setenv("FAKE_TRAINER_EPOCH_SECONDS", "0.05")
    assert handle.resume().wait(timeout=120).phase == "Succeeded"


def test_logs_follow_a_trial_until_it_ends(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_TRAINER_CRASH", "0")
    handle: JobHandle = client.submit(_job("logged", trials=2, maxFailedTrials=2))
    deadline = time.monotonic() + 30
    while True:
        try:
            lines = list(handle.logs(trial=0, follow=True))
            break
        except ClientError as error:  # not started yet
            assert error.reason is ErrorReason.NOT_FOUND and time.monotonic() < deadline
            time.sleep(0.1)
    assert any("fake trainer crashed on purpose" in line for line in lines)
    handle.wait(timeout=120)
