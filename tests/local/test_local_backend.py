"""LocalBackend with a torch-free stand-in trainer: process handling, reports, crashes, resume."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import optuna
import pytest
from local_jobs import fake_backend, log_uniform, median_search, mlp_job
from optuna.storages.journal import JournalFileBackend

from optikube_operator.core import PipelineState, TrialState
from optikube_operator.local.backend import LocalBackend, RunExistsError
from optikube_operator.local.outputs import write_outputs
from optikube_operator.local.state import RunState

MANIFEST: dict[str, Any] = mlp_job(
    "local-test",
    seed=3,
    data={"source": {"builtin": "digits"}},
    params={"width": 32},
    tuning=median_search(
        {"type": "random"}, trials=4, parallel=2, space={"training.learningRate": log_uniform(1e-4, 1e-1)}
    ),
    training={"epochs": 4, "learningRate": 0.01},
)


def _backend(
    out: Path, manifest: dict[str, Any] | None = None, resume: bool = False, **env: str
) -> LocalBackend:
    return fake_backend(out, manifest or MANIFEST, resume=resume, **env)


def _runs(out: Path) -> list[str]:
    return [line for p in sorted(out.glob("trials/*/fake-runs.log")) for line in p.read_text().splitlines()]


def test_a_job_runs_its_trials_then_the_pipeline(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    state = asyncio.run(backend.run())
    assert state.finished["reason"] == "Succeeded", state.finished
    assert sorted(state.trials) == list(range(4))
    assert all(t.record.state in (TrialState.SUCCEEDED, TrialState.PRUNED) for t in state.trials.values())
    results = write_outputs(backend.settings, state, tmp_path, report=False)  # the CLI test checks the report
    best = results["bestTrial"]
    assert best["values"]["accuracy"] == max(
        t.record.values.get("accuracy", 0) for t in state.trials.values()
    )
    # The pipeline trained with the chosen trial's learning rate, and its model was exported.
    assert json.loads((tmp_path / "model" / "weights.txt").read_text())["learningRate"] == pytest.approx(
        best["params"]["training.learningRate"]
    )
    # `optuna-dashboard <file>` opens a non-SQLite file as an Optuna journal: read it the same way
    study_file = tmp_path / "study.log"
    assert not study_file.read_bytes().startswith(b"SQLite format 3")
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(study_file)))
    (summary,) = storage.get_all_studies()
    assert len(storage.get_all_trials(summary._study_id)) == 4
    assert len(_runs(tmp_path)) == 4  # every trial ran exactly once


def test_a_crashed_trial_fails_with_its_log_and_the_search_goes_on(tmp_path: Path) -> None:
    state = asyncio.run(_backend(tmp_path, FAKE_TRAINER_CRASH="1").run())
    crashed = state.trials[1]
    assert crashed.record.state is TrialState.FAILED and "crashed on purpose" in crashed.log_tail
    assert state.finished["reason"] == "Succeeded"  # one failure is within maxFailedTrials: 1
    assert len(state.trials) == 4


def test_too_many_crashes_stop_the_job(tmp_path: Path) -> None:
    state = asyncio.run(_backend(tmp_path, FAKE_TRAINER_CRASH="0,1,2,3").run())
    assert state.finished["reason"] == "TooManyFailures" and not state.finished["succeeded"]
    assert state.pipeline.state is PipelineState.NOT_STARTED


def test_a_trial_past_its_timeout_is_stopped(tmp_path: Path) -> None:
    manifest = copy.deepcopy(MANIFEST)
    # 3 s: the other trials (a stand-in trainer) must start and end well within it, even on a busy machine
    manifest["spec"]["tuning"].update({"trialTimeout": "3s", "maxTrials": 3})
    state = asyncio.run(_backend(tmp_path, manifest, FAKE_TRAINER_HANG="0").run())
    assert state.trials[0].record.state is TrialState.TIMED_OUT
    assert state.finished["reason"] == "Succeeded"


def test_interrupt_then_resume_reruns_only_unfinished_trials(tmp_path: Path) -> None:
    first = _backend(tmp_path, FAKE_TRAINER_EPOCH_SECONDS="0.3")

    async def interrupt_after_two() -> RunState:
        task = asyncio.create_task(first.run())
        while sum(t.record.end_time is not None for t in first.state.trials.values()) < 2:
            await asyncio.sleep(0.05)
        first.interrupt()
        return await task

    state = asyncio.run(interrupt_after_two())
    finished_before = {
        n for n, t in state.trials.items() if t.record.state in (TrialState.SUCCEEDED, TrialState.PRUNED)
    }
    assert finished_before and not state.finished
    assert all(
        t.record.state is TrialState.PENDING for n, t in state.trials.items() if n not in finished_before
    )
    with pytest.raises(RunExistsError):
        _backend(tmp_path)
    resumed = asyncio.run(_backend(tmp_path, resume=True).run())
    assert resumed.finished["reason"] == "Succeeded"
    assert resumed.interruptions == 1
    runs = _runs(tmp_path)
    for number in finished_before:
        assert runs.count(f"trial {number}") == 1


def test_resume_retries_a_failed_pipeline_without_rerunning_trials(tmp_path: Path) -> None:
    failed = asyncio.run(_backend(tmp_path, FAKE_TRAINER_CRASH="None").run())
    assert failed.finished["reason"] == "PipelineFailed" and "crashed on purpose" in failed.pipeline_log_tail
    resumed = asyncio.run(_backend(tmp_path, resume=True).run())
    assert resumed.finished["reason"] == "Succeeded" and resumed.pipeline.attempts == 2
    assert len(_runs(tmp_path)) == 4
