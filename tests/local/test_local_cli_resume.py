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

pytestmark = pytest.mark.slow

JOB: dict[str, Any] = {
    "apiVersion": "optikube.io/v1alpha1",
    "kind": "OptimizationJob",
    "metadata": {"name": "resume-test"},
    "spec": {
        "seed": 5,
        "data": {"source": {"builtin": "digits"}, "validationSplit": 0.2, "testSplit": 0.2},
        "model": {"builtin": {"name": "mlp"}, "params": {"width": 32, "depth": 1}},
        "objectives": [{"metric": "accuracy", "direction": "maximize"}],
        "tuning": {
            "sampler": {"type": "tpe", "startupTrials": 2},
            "pruner": {"type": "median", "startupTrials": 2, "warmupSteps": 1},
            "maxTrials": 5,
            "parallelTrials": 2,
            "maxFailedTrials": 1,
            "trialTimeout": "5m",
            "searchSpace": {
                "training.learningRate": {"type": "float", "low": 1e-4, "high": 3e-2, "log": True},
                "model.params.width": {"type": "int", "low": 16, "high": 64, "step": 16},
            },
        },
        # The pipeline is train + evaluate + export: this test is about the search and resume.
        "training": {"epochs": 4, "batchSize": 64, "learningRate": 0.003},
    },
}


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
