"""The client's local backend: each job is a folder `<output_dir>/<name>` whose runner process
(`local_runner`, i.e. `optikube run`) runs it on this machine, detached from the caller."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from optikube_operator.client.errors import ClientError, ErrorReason, already_exists, not_found
from optikube_operator.client.local_status import (
    EXIT_FILE,
    RESULTS_FILE,
    RUN_LOG,
    RUNNER_FILE,
    SPEC_FILE,
    SUBMISSION_FILE,
    RunnerState,
    local_snapshot,
    process_identity,
    read_object,
    submitted_job,
)
from optikube_operator.client.records import JobSnapshot
from optikube_operator.client.specs import Submission

RUNNER: tuple[str, ...] = (sys.executable, "-m", "optikube_operator.cli.local_runner")
# how long suspend() and delete() wait for the runner to stop its trainers (each gets 10 s)
STOP_SECONDS = 60.0


class LocalJobs:
    """Jobs under one output folder, run by local runner processes."""

    def __init__(
        self, output_dir: str | Path, runner: Sequence[str] = RUNNER, poll_seconds: float = 0.25
    ) -> None:
        self.root = Path(output_dir)
        self.runner = tuple(runner)
        self.poll_seconds = poll_seconds
        # the runners this process started, reaped as they end (no zombie is left behind)
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def where(self) -> str:
        return str(self.root)

    def _listing(self) -> str:
        return f"list() or `optikube get --local --output {self.root}`"

    def _folder(self, name: str) -> Path:
        folder = self.root / name
        if not (folder / SPEC_FILE).is_file():
            raise not_found(name, str(self.root), self._listing())
        return folder

    def _runner(self, folder: Path) -> RunnerState:
        child = self._children.get(folder.name)
        if child is not None and child.poll() is not None:
            del self._children[folder.name]
        return RunnerState.of(folder)

    # --- jobs ---------------------------------------------------------------------------------

    def submit(self, submission: Submission) -> JobSnapshot:
        folder = self.root / submission.name
        if (folder / SPEC_FILE).exists() or (folder / "state.json").exists():
            raise already_exists(submission.name, str(self.root), f"delete({submission.name!r})")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / SPEC_FILE).write_text(yaml.safe_dump(submission.manifest, sort_keys=False))
        record = {
            "smoke": submission.smoked is not None,
            "submitted": datetime.now(UTC).isoformat(),
            # relative paths in the spec (data files) mean what they meant where it was submitted
            "workingDirectory": str(Path.cwd()),
        }
        (folder / SUBMISSION_FILE).write_text(json.dumps(record))
        self._start(folder, resume=False)
        return self.snapshot(submission.name)

    def _start(self, folder: Path, *, resume: bool) -> None:
        (folder / EXIT_FILE).unlink(missing_ok=True)
        submission = read_object(folder / SUBMISSION_FILE) or {}
        flags = [*(["--smoke"] if submission.get("smoke") else []), *(["--resume"] if resume else [])]
        with (folder / RUN_LOG).open("ab") as log:
            child = subprocess.Popen(
                [*self.runner, str(folder.resolve()), *flags],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=submission.get("workingDirectory") or None,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,  # a Ctrl-C in the notebook or terminal does not reach the job
            )
        self._children[folder.name] = child
        identity = process_identity(child.pid)
        (folder / RUNNER_FILE).write_text(json.dumps({"pid": child.pid, "identity": identity}))

    def snapshot(self, name: str) -> JobSnapshot:
        folder = self._folder(name)
        return local_snapshot(folder, self._runner(folder))

    def snapshots(self) -> list[JobSnapshot]:
        if not self.root.is_dir():
            return []
        folders = sorted(p for p in self.root.iterdir() if (p / SPEC_FILE).is_file())
        return [local_snapshot(folder, self._runner(folder)) for folder in folders]

    def watch(self, name: str, timeout: float | None) -> Iterator[JobSnapshot]:
        """Each new state of the job: its state file is rewritten on every change, so a look at its
        modification time every `poll_seconds` costs next to nothing (the cluster uses a watch)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        folder = self._folder(name)
        seen: tuple[Any, ...] | None = None
        while True:
            runner = self._runner(folder)
            mark = (_mtime(folder / "state.json"), _mtime(folder / RESULTS_FILE), runner)
            if mark != seen:
                seen = mark
                snapshot = local_snapshot(folder, runner)
                yield snapshot
                if snapshot.finished:
                    return
            if deadline is not None and time.monotonic() >= deadline:
                return
            time.sleep(self.poll_seconds)

    def results_document(self, name: str) -> Mapping[str, Any] | None:
        return read_object(self._folder(name) / RESULTS_FILE)

    def spec_of(self, name: str) -> dict[str, Any]:
        job, _ = submitted_job(self._folder(name))
        return job.spec.to_dict()

    # --- logs ---------------------------------------------------------------------------------

    def _log_path(self, name: str, trial: int | None) -> Path:
        folder = self._folder(name)
        path = folder / ("pipeline" if trial is None else f"trials/{trial}") / "trainer.log"
        if not path.exists():
            run = "the final pipeline" if trial is None else f"trial {trial}"
            raise ClientError(
                ErrorReason.NOT_FOUND,
                f"{run} of job {name!r} has no log yet: it has not started",
                f"trials() lists the trials that ran; the runner's own log is {folder / RUN_LOG}",
            )
        return path

    def logs(self, name: str, trial: int | None) -> str:
        return self._log_path(name, trial).read_text(errors="replace")

    def follow_logs(self, name: str, trial: int | None) -> Iterator[str]:
        path = self._log_path(name, trial)
        folder = self._folder(name)
        with path.open(errors="replace") as stream:
            while True:
                line = stream.readline()
                if line:
                    yield line.rstrip("\n")
                    continue
                if not self._runner(folder).alive or self._run_over(folder, trial):
                    yield from (rest.rstrip("\n") for rest in stream)
                    return
                time.sleep(self.poll_seconds)

    def _run_over(self, folder: Path, trial: int | None) -> bool:
        snapshot = local_snapshot(folder, self._runner(folder))
        if trial is None:
            return snapshot.finished
        record = snapshot.trial(trial)
        return record is not None and record.finished

    # --- control ------------------------------------------------------------------------------

    def suspend(self, name: str) -> None:
        """Interrupt the runner as Ctrl-C interrupts `optikube run`: running trials stop and run
        again on resume(); no finished trial runs twice."""
        folder = self._folder(name)
        runner = self._runner(folder)
        if runner.alive and runner.pid is not None:
            os.kill(runner.pid, signal.SIGINT)
            self._wait_stopped(folder)

    def resume(self, name: str) -> None:
        folder = self._folder(name)
        runner = self._runner(folder)
        if runner.alive or local_snapshot(folder, runner).phase == "Succeeded":
            return
        self._start(folder, resume=(folder / "state.json").exists())

    def delete(self, name: str, wait: bool) -> None:
        folder = self._folder(name)
        self.suspend(name)
        shutil.rmtree(folder)

    def _wait_stopped(self, folder: Path) -> None:
        deadline = time.monotonic() + STOP_SECONDS
        while self._runner(folder).alive:
            if time.monotonic() > deadline:
                raise ClientError(
                    ErrorReason.TIMEOUT,
                    f"the runner of {folder.name} did not stop within {STOP_SECONDS:.0f}s",
                    f"see {folder / RUN_LOG}; its pid is in {folder / RUNNER_FILE}",
                )
            time.sleep(self.poll_seconds)


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None
