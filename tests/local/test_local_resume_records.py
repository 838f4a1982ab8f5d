"""What a SIGKILLed CLI leaves behind, and what `--resume` makes of it: a trial cut off mid-run runs
again from step 0 (its new reports are not refused as replays of the dead attempt), a torn log line
and the temporaries of interrupted writes are cleared, and every output is replaced atomically."""

from __future__ import annotations

import asyncio
import copy
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from local_jobs import fake_backend, log_uniform, mlp_job

from optikube_operator.api import load_job
from optikube_operator.core import ObservedTrial, TrialState
from optikube_operator.local.backend import spec_digest
from optikube_operator.local.state import LocalTrial, RunState, append_line, repair_log, replace_atomically

MANIFEST: dict[str, Any] = mlp_job(
    "resume-records",
    seed=3,
    data={"source": {"builtin": "iris"}},
    tuning={
        "sampler": {"type": "random"},
        "maxTrials": 1,
        "searchSpace": {"training.learningRate": log_uniform(1e-3, 1e-1)},
    },
    training={"epochs": 4, "learningRate": 0.01},
)


def test_a_trial_killed_mid_run_runs_again_from_step_zero(tmp_path: Path) -> None:
    job = load_job(copy.deepcopy(MANIFEST))
    # what the killed CLI saved: trial 0 running (its process gone), steps 0 and 1 reported
    cut_off = ObservedTrial(
        number=0,
        params={"training.learningRate": 0.01},
        state=TrialState.RUNNING,
        attempts=1,
        start_time=datetime(2026, 1, 1, tzinfo=UTC),
    )
    cut_off = replace(
        cut_off, intermediate={0: 0.9, 1: 0.95}, latest_step=1, latest_values={"accuracy": 0.95}
    )
    state = RunState(
        job_name="resume-records",
        spec_digest=spec_digest(job.spec.to_dict()),
        start_time=datetime(2026, 1, 1, tzinfo=UTC),
        trials={0: LocalTrial(cut_off, pid=None)},
    )
    state.save(tmp_path)
    (tmp_path / "launches.jsonl").write_text('{"run": "trial", "number": 0, "attempt": 1}\n{"run": "tri')
    (tmp_path / ".state.json.abc123.tmp").write_text('{"half": ')

    backend = fake_backend(tmp_path, MANIFEST, resume=True)
    assert not (tmp_path / ".state.json.abc123.tmp").exists()
    final = asyncio.run(backend.run())

    trial = final.trials[0].record
    assert trial.state is TrialState.SUCCEEDED, (trial.message, final.trials[0].log_tail)
    assert trial.attempts == 2 and sorted(trial.intermediate) == [0, 1, 2, 3]
    assert (
        trial.intermediate[0] == 0.25
    )  # lr 0.01 at epoch 0: the new attempt's value, not the dead one's 0.9
    launches = [json.loads(line) for line in (tmp_path / "launches.jsonl").read_text().splitlines()]
    assert [entry.get("attempt") for entry in launches if entry.get("run") == "trial"] == [1, 2]


def test_a_torn_last_line_is_dropped_and_whole_lines_kept(tmp_path: Path) -> None:
    log = tmp_path / "progress.jsonl"
    append_line(log, {"a": 1})
    append_line(log, {"b": 2})
    with log.open("ab") as stream:
        stream.write(b'{"c": ')
    repair_log(log)
    assert [json.loads(line) for line in log.read_text().splitlines()] == [{"a": 1}, {"b": 2}]
    repair_log(log)  # a whole log is left as it is
    assert log.read_text().count("\n") == 2


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("old")

    def half_then_fail(temporary: Path) -> None:
        temporary.write_text("new, but only ha")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        replace_atomically(target, half_then_fail)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["report.html"]
    replace_atomically(target, lambda temporary: temporary.write_text("new"))
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["report.html"]
