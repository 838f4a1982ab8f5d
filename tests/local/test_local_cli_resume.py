"""`optikube run` end to end with real torchrun trials: killed mid-search, resumed, finished."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from local_jobs import log_uniform, median_search, mlp_job

pytestmark = pytest.mark.slow

JOB: dict[str, Any] = mlp_job(
    "resume-test",
    seed=5,
    data={"source": {"builtin": "digits"}, "validationSplit": 0.2, "testSplit": 0.2},
    params={"width": 32, "depth": 1},
    tuning=median_search(
        {"type": "tpe", "startupTrials": 2},
        trials=5,
        parallel=2,
        space={
            "training.learningRate": log_uniform(1e-4, 3e-2),
            "model.params.width": {"type": "int", "low": 16, "high": 64, "step": 16},
        },
        trialTimeout="5m",
    ),
    # The pipeline is train + evaluate + export: this test is about the search and resume.
    training={"epochs": 4, "batchSize": 64, "learningRate": 0.003},
)


def _cli(manifest: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            str(Path(sys.executable).with_name("optikube")),
            "run",
            str(manifest),
            "--output",
            str(out),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _finished(out: Path) -> set[int]:
    try:
        state = json.loads((out / "state.json").read_text())
    except (OSError, json.JSONDecodeError):
        return set()
    return {t["number"] for t in state["trials"] if t["status"]["phase"] in ("Succeeded", "Pruned", "Failed")}


def _trainers_of(out: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(out).encode() in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def test_killed_run_resumes_without_rerunning_finished_trials(tmp_path: Path) -> None:
    manifest = tmp_path / "job.yaml"
    manifest.write_text(yaml.safe_dump(JOB))
    out = tmp_path / "out"
    first = _cli(manifest, out)
    deadline = time.monotonic() + 400
    while len(_finished(out)) < 2:
        assert first.poll() is None, first.communicate()[0]
        assert time.monotonic() < deadline, "no two trials finished in time"
        time.sleep(0.5)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    finished_before = _finished(out)
    # The trainers die with the CLI (parent-death signal), even after SIGKILL.
    for _ in range(60):
        if not _trainers_of(out):
            break
        time.sleep(0.5)
    assert not _trainers_of(out)

    second = _cli(manifest, out, "--resume")
    output, _ = second.communicate(timeout=900)
    assert second.returncode == 0, output

    launches = [json.loads(line) for line in (out / "launches.jsonl").read_text().splitlines()]
    for number in finished_before:
        assert sum(1 for entry in launches if entry.get("number") == number) == 1, (number, launches)
    results = json.loads((out / "results.json").read_text())
    assert results["outcome"]["reason"] == "Succeeded"
    assert len(results["trials"]) == 5 and results["bestTrial"] is not None
    assert results["optimized"]["metrics"] and results["baseline"]["metrics"]
    assert any((out / "model").iterdir())
    report = (out / "report.html").read_text()
    assert "Baseline vs optimized" in report and "plotly" in report
    assert (out / "study.log").stat().st_size > 0
