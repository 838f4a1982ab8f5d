"""Data safety of `optikube run`: SIGKILLed at random points, each time followed by `--resume`, a run
ends with exactly the trials of an uninterrupted run of the same spec and seed (same numbers,
params, states and values), no finished trial is ever launched again, and after every kill the
output directory is one `--resume` reads (the state file loads, every log line is whole).

The trainer is the torch-free stand-in (deterministic values from the params), so that many kills
fit in minutes; the CLI, LocalBackend, state file and outputs are the real code
(kill_resume_cli.py). The core sample runs in `make test`; the full 20 kills behind `reliability`.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from local_jobs import log_uniform, median_search, mlp_job

from optikube_operator.local.state import STATE_FILE, RunState

CLI = Path(__file__).with_name("kill_resume_cli.py")
# long enough that many kills land while a trainer runs (start-up and outputs take seconds too)
EPOCH_SECONDS = "0.5"
JOB: dict[str, Any] = mlp_job(
    "kill-resume",
    seed=11,
    data={"source": {"builtin": "iris"}},
    params={"width": 16, "depth": 1},
    # one trial at a time: the sampler then sees the same history in every run, so the
    # uninterrupted run is a reference (each suggestion is seeded by job seed and number)
    tuning=median_search(
        {"type": "tpe", "startupTrials": 3},
        trials=8,
        parallel=1,
        space={
            "training.learningRate": log_uniform(1e-4, 1e-1),
            "model.params.width": {"type": "int", "low": 8, "high": 32, "step": 8},
        },
    ),
    training={"epochs": 5, "learningRate": 0.01},
)


def _start(manifest: Path, out: Path, resume: bool) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CLI), str(manifest), "--output", str(out), *(["--resume"] if resume else [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "FAKE_TRAINER_EPOCH_SECONDS": EPOCH_SECONDS},
    )


def _finish(process: subprocess.Popen[str], timeout: float = 300) -> str:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output
    return output


def _trial_set(out: Path) -> dict[int, tuple[str, dict[str, Any], dict[str, float]]]:
    results = json.loads((out / "results.json").read_text())
    return {t["number"]: (t["state"], t["params"], t["values"]) for t in results["trials"]}


def _jsonl(path: Path) -> list[dict[str, Any]]:
    """Every line of a log, each of which must be whole JSON."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _finished_trials(out: Path) -> set[int]:
    if not (out / STATE_FILE).exists():
        return set()
    state = RunState.load(out)  # raises when --resume could not read it
    return {number for number, trial in state.trials.items() if not trial.record.state.active}


def _trainers_of(out: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (
                    str(out).encode() in (proc / "cmdline").read_bytes()
                    and b"fake_trainer" in (proc / "cmdline").read_bytes()
                ):
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


@dataclass
class KillLog:
    kills: int = 0
    completed_before_kill: int = 0
    kills_with_trainers: int = 0
    relaunched: list[int | str] = field(default_factory=list)  # interrupted runs, run again (allowed)
    seconds: float = 0.0


def _reference(tmp_path: Path, manifest: Path) -> tuple[dict[int, Any], float, float]:
    """The uninterrupted run: its trials, its duration and the CLI's start-up time."""
    out = tmp_path / "reference"
    started = time.monotonic()
    process = _start(manifest, out, resume=False)
    while not (out / STATE_FILE).exists() and process.poll() is None:
        time.sleep(0.02)
    startup = time.monotonic() - started
    _finish(process)
    return _trial_set(out), time.monotonic() - started, startup


def _await(
    process: subprocess.Popen[str], condition: Callable[[], bool], seconds: float, step: float = 0.01
) -> None:
    """Until ``condition`` holds, ``seconds`` pass or the process exits."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None and not condition():
        time.sleep(step)


def _kill_and_resume(manifest: Path, out: Path, kills: int, duration: float, startup: float) -> KillLog:
    rng = random.Random(int(os.environ.get("OPTIKUBE_KILL_SEED", "20")))
    log = KillLog()
    started = time.monotonic()
    # a kill lands in start-up, mid-trial, mid-save or in the outputs: each run gets a random slice
    # of about twice its share of the work, so that the kills spread over the whole run
    window = startup + 2 * max(duration - startup, 1.0) / kills
    while log.kills < kills:
        finished_before = _finished_trials(out)
        launches_before = len(_jsonl(out / "launches.jsonl"))
        process = _start(manifest, out, resume=(out / STATE_FILE).exists())
        if (log.kills + log.completed_before_kill) % 2 == 0:
            # every other kill waits for a trainer to run, then strikes mid-run: the trial is cut off
            # after some of its reports (the search and pipeline are a small part of the wall time)
            _await(process, lambda: bool(_trainers_of(out)), 2 * window, step=0.05)
            _await(process, lambda: False, rng.uniform(0.0, 2.5))
        else:
            _await(process, lambda: False, rng.uniform(0.3 * startup, window))
        if process.poll() is not None:
            log.completed_before_kill += 1  # done early: the next --resume of the finished run is killed
            _finish(process, timeout=10)
        else:
            log.kills_with_trainers += bool(_trainers_of(out))
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=30)
            log.kills += 1
        # whatever the kill interrupted, --resume can read what is left
        _finished_trials(out)
        _jsonl(out / "progress.jsonl")
        if (out / "results.json").exists():
            json.loads((out / "results.json").read_text())
        # and no trial recorded as finished before this run was launched again by it
        launched_now = [e.get("number", "pipeline") for e in _jsonl(out / "launches.jsonl")[launches_before:]]
        assert not finished_before & set(launched_now), (finished_before, launched_now)
        earlier = {e.get("number", "pipeline") for e in _jsonl(out / "launches.jsonl")[:launches_before]}
        log.relaunched += [n for n in launched_now if n in earlier]
    _finish(_start(manifest, out, resume=True))
    log.seconds = time.monotonic() - started
    return log


def _kill_resume_scenario(tmp_path: Path, kills: int) -> None:
    manifest = tmp_path / "job.yaml"
    manifest.write_text(yaml.safe_dump(JOB))
    reference, duration, startup = _reference(tmp_path, manifest)
    assert len(reference) == 8 and {state for state, _, _ in reference.values()} <= {"Succeeded", "Pruned"}

    out = tmp_path / "killed"
    log = _kill_and_resume(manifest, out, kills, duration, startup)
    print(f"kill/resume: {log} (reference run {duration:.1f} s, start-up {startup:.1f} s)")
    assert log.kills == kills and log.kills_with_trainers >= 1, log
    assert _trial_set(out) == reference  # nothing lost, nothing run twice with other results
    results = json.loads((out / "results.json").read_text())
    assert results["outcome"]["reason"] == "Succeeded"
    assert results["search"]["interruptions"] == 0  # SIGKILL leaves no chance to count itself
    assert (out / "model" / "weights.txt").exists() and (out / "report.html").stat().st_size > 0
    assert not _trainers_of(out)
    leftovers = [p.name for p in out.rglob("*.tmp")]
    assert leftovers == [], leftovers


@pytest.mark.slow
def test_five_kills_at_random_points_lose_and_repeat_nothing(tmp_path: Path) -> None:
    _kill_resume_scenario(tmp_path, kills=5)


@pytest.mark.reliability
@pytest.mark.timeout(2400)  # 20 CLI start-ups and resumes: past the suite's 900 s on a busy machine
def test_twenty_kills_at_random_points_lose_and_repeat_nothing(tmp_path: Path) -> None:
    _kill_resume_scenario(tmp_path, kills=20)
