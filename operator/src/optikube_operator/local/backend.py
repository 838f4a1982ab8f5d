"""LocalBackend: the core's actions carried out as `torchrun` subprocesses on this machine."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from optikube_operator.api import OptimizationJob, SpecError
from optikube_operator.core import (
    Action,
    Finish,
    PipelineState,
    StartPipeline,
    StartTrial,
    StopTrial,
    TrialState,
    decide,
    should_prune,
)
from optikube_operator.core.actions import StopReason
from optikube_operator.local import events as record
from optikube_operator.local.processes import kill_leftover, launch, log_tail, terminate, torchrun_command
from optikube_operator.local.server import ReportServer, RunKey
from optikube_operator.local.state import STATE_FILE, RunState, TrialRecord, iso, write_json_atomic
from optikube_operator.runconfig import JobIdentity, Stage, render_run_config

PIPELINE = RunKey(trial=None)
CommandBuilder = Callable[[str, Path, int], list[str]]


class Progress(Protocol):
    def update(self, state: RunState) -> None: ...


class RunExistsError(RuntimeError):
    """The output directory already holds a run (use --resume) or a different job."""


@dataclass
class LocalOptions:
    output_dir: Path
    parallel: int | None = None
    resume: bool = False
    grace_seconds: float = 10.0
    poll_seconds: float = 1.0
    command: CommandBuilder = torchrun_command
    extra_env: dict[str, str] = field(default_factory=dict)


def spec_digest(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def now_utc() -> datetime:
    return datetime.now(UTC)


class LocalBackend:
    def __init__(self, job: OptimizationJob, options: LocalOptions, progress: Progress | None = None) -> None:
        self.job = JobIdentity.of(job)
        self.spec = job.spec.to_dict()
        self.options = options
        self.out = options.output_dir
        self.progress = progress
        # what the core decides on: --parallel overrides spec.tuning.parallelTrials
        self.effective_spec = json.loads(json.dumps(self.spec))
        if options.parallel is not None and self.effective_spec.get("tuning"):
            self.effective_spec["tuning"]["parallelTrials"] = options.parallel
        self.processes: dict[RunKey, asyncio.subprocess.Process] = {}
        self.watchers: set[asyncio.Task[None]] = set()
        self.stopping: set[RunKey] = set()
        self.server = ReportServer(self._on_event)
        self.wake = asyncio.Event()
        self.interrupted = False
        self.state = self._load_or_create()

    # --- state ----------------------------------------------------------------------------------

    def _load_or_create(self) -> RunState:
        digest = spec_digest(self.spec)
        if (self.out / STATE_FILE).exists():
            if not self.options.resume:
                raise RunExistsError(f"{self.out} already holds a run: pass --resume to continue it")
            state = RunState.load(self.out)
            if state.spec_digest != digest or state.job_name != self.job.name:
                raise RunExistsError(f"{self.out} holds a run of another spec: use a new --output")
            if not state.finished.get("succeeded"):
                # The decision is made again from the records; a failed pipeline gets another
                # attempt (it resumes from its last finished stage's checkpoint).
                state.finished = {}
                if state.pipeline.state == PipelineState.FAILED.value:
                    state.pipeline.state = PipelineState.PENDING.value
                    state.pipeline.message = state.pipeline.log_tail = ""
            return state
        self.out.mkdir(parents=True, exist_ok=True)
        return RunState(job_name=self.job.name, spec_digest=digest, start_time=iso(now_utc()))

    def _save(self) -> None:
        self.state.save(self.out)
        if self.progress is not None:
            self.progress.update(self.state)

    def _log(self, name: str, entry: dict[str, Any]) -> None:
        with (self.out / name).open("a") as stream:
            stream.write(json.dumps(entry, default=str) + "\n")

    # --- the loop -------------------------------------------------------------------------------

    async def run(self) -> RunState:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.interrupt)
        await self.server.start()
        try:
            while not self.state.finished and not self.interrupted:
                self.wake.clear()
                now = now_utc()
                for action in decide(self.effective_spec, self.state.observed(), now, self.job.name):
                    await self._apply(action, now)
                await self._ensure_running(now)
                self._save()
                if self.state.finished or self.interrupted:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), self.options.poll_seconds)
            if self.interrupted:
                await self._stop_all_for_resume()
        finally:
            for key in list(self.processes):
                await self._terminate(key)
            await self.server.stop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            self._save()
        return self.state

    def interrupt(self) -> None:
        self.interrupted = True
        self.wake.set()

    async def _apply(self, action: Action, now: datetime) -> None:
        if isinstance(action, StartTrial):
            trial = TrialRecord(
                number=action.number, params=dict(action.params), sampler_attrs=dict(action.sampler_attrs)
            )
            self.state.trials[action.number] = trial
            await self._launch_trial(trial, now)
        elif isinstance(action, StopTrial):
            await self._stop_trial(action, now)
        elif isinstance(action, StartPipeline):
            pipeline = self.state.pipeline
            pipeline.state = PipelineState.PENDING.value
            pipeline.params = dict(action.params)
            pipeline.trial_number = action.trial_number
            pipeline.search_ended = action.search_ended.value
            await self._launch_pipeline(now)
        elif isinstance(action, Finish):
            self.state.finished = {
                "reason": action.reason.value,
                "succeeded": action.succeeded,
                "message": action.message,
                "time": iso(now),
            }

    async def _stop_trial(self, action: StopTrial, now: datetime) -> None:
        trial = self.state.trials[action.number]
        if trial.state not in record.ACTIVE:
            return
        trial.state = {
            StopReason.PRUNED: TrialState.PRUNED,
            StopReason.TIMED_OUT: TrialState.TIMED_OUT,
            StopReason.JOB_FINISHED: TrialState.STOPPED,
        }[action.reason].value
        if action.reason is StopReason.TIMED_OUT:
            trial.message = "ran longer than spec.tuning.trialTimeout"
        trial.end_time = iso(now)
        self._save()
        await self._terminate(RunKey(action.number))

    async def _ensure_running(self, now: datetime) -> None:
        """Runs recorded as pending or running without a process (after --resume) start again."""
        for trial in self.state.trials.values():
            if trial.state in record.ACTIVE and RunKey(trial.number) not in self.processes:
                kill_leftover(trial.pid)
                await self._launch_trial(trial, now)
        pipeline = self.state.pipeline
        if pipeline.state in (PipelineState.PENDING.value, PipelineState.RUNNING.value) and (
            PIPELINE not in self.processes
        ):
            kill_leftover(pipeline.pid)
            await self._launch_pipeline(now)

    async def _stop_all_for_resume(self) -> None:
        for key in list(self.processes):
            await self._terminate(key)
        for trial in self.state.trials.values():
            if trial.state in record.ACTIVE:
                trial.state, trial.start_time = TrialState.PENDING.value, None
                trial.message = "interrupted: runs again on --resume"
        if self.state.pipeline.state == PipelineState.RUNNING.value:
            self.state.pipeline.state = PipelineState.PENDING.value
        self.state.interruptions += 1

    # --- processes ------------------------------------------------------------------------------

    def _env(self, key: RunKey, run_dir: Path) -> dict[str, str]:
        token_dir = self.out / ".tokens"
        token_dir.mkdir(mode=0o700, exist_ok=True)
        token_file = token_dir / ("pipeline" if key.trial is None else f"trial-{key.trial}")
        token_file.write_text(self.server.issue_token(key))
        token_file.chmod(0o600)
        tuning = self.effective_spec.get("tuning") or {}
        parallel = int(tuning.get("parallelTrials", 1)) if key.trial is not None else 1
        threads = max(1, (os.cpu_count() or 1) // (parallel * self._processes()))
        return {
            **os.environ,
            "OPTIKUBE_REPORT_URL": self.server.url,
            "OPTIKUBE_REPORT_TOKEN_FILE": str(token_file),
            "OMP_NUM_THREADS": str(threads),
            "PYTHONUNBUFFERED": "1",
            **self.options.extra_env,
        }

    def _processes(self) -> int:
        resources = self.spec.get("resources") or {}
        return max(1, int(resources.get("processesPerWorker", 1)))

    async def _start(self, key: RunKey, stage: Stage, run_dir: Path, config: dict[str, Any]) -> int:
        run_dir.mkdir(parents=True, exist_ok=True)
        config_path = run_dir / "run.json"
        write_json_atomic(config_path, config)
        argv = self.options.command(stage, config_path, self._processes())
        process = await launch(argv, self._env(key, run_dir), run_dir / "trainer.log")
        self.processes[key] = process
        task = asyncio.create_task(self._watch(key, process, run_dir))
        self.watchers.add(task)
        task.add_done_callback(self.watchers.discard)
        return process.pid

    async def _launch_trial(self, trial: TrialRecord, now: datetime) -> None:
        run_dir = self.out / "trials" / str(trial.number)
        try:
            config = render_run_config(
                job=self.job,
                spec=self.spec,
                stage="trial",
                output_dir=str(run_dir),
                trial_number=trial.number,
                params=trial.params,
            )
        except (SpecError, ValueError) as error:
            trial.state, trial.message, trial.end_time = TrialState.FAILED.value, str(error), iso(now)
            return
        trial.attempts += 1
        trial.start_time, trial.state = iso(now), TrialState.RUNNING.value
        trial.pid = await self._start(RunKey(trial.number), "trial", run_dir, config)
        self._log(
            "launches.jsonl",
            {"run": "trial", "number": trial.number, "attempt": trial.attempts, "time": iso(now)},
        )

    async def _launch_pipeline(self, now: datetime) -> None:
        pipeline = self.state.pipeline
        run_dir = self.out / "pipeline"
        resume_from = str(run_dir) if pipeline.attempts else None
        try:
            config = render_run_config(
                job=self.job,
                spec=self.spec,
                stage="pipeline",
                output_dir=str(run_dir),
                params=pipeline.params,
                resume_from=resume_from,
            )
        except (SpecError, ValueError) as error:
            pipeline.state, pipeline.message = PipelineState.FAILED.value, str(error)
            return
        pipeline.attempts += 1
        pipeline.start_time, pipeline.state = iso(now), PipelineState.RUNNING.value
        pipeline.pid = await self._start(PIPELINE, "pipeline", run_dir, config)
        self._log("launches.jsonl", {"run": "pipeline", "attempt": pipeline.attempts, "time": iso(now)})

    async def _terminate(self, key: RunKey) -> None:
        process = self.processes.get(key)
        if process is None:
            return
        self.stopping.add(key)
        await terminate(process, self.options.grace_seconds)

    async def _watch(self, key: RunKey, process: asyncio.subprocess.Process, run_dir: Path) -> None:
        code = await process.wait()
        self.processes.pop(key, None)
        self.server.revoke(key)
        if key in self.stopping:
            self.stopping.discard(key)
        else:
            tail = log_tail(run_dir / "trainer.log", lines=60)
            now = iso(now_utc())
            if key.trial is None:
                record.record_pipeline_exit(self.state.pipeline, code, tail, now)
            else:
                results = _read_json(run_dir / "results.json")
                record.record_trial_exit(self.state.trials[key.trial], code, results, tail, now)
        self._save()
        self.wake.set()

    # --- the report endpoint --------------------------------------------------------------------

    async def _on_event(self, key: RunKey, event: dict[str, Any]) -> dict[str, Any]:
        self._log("events.jsonl", {"received": iso(now_utc()), **event})
        reply: dict[str, Any] = {}
        if key.trial is None:
            record.record_pipeline_event(self.state.pipeline, event)
        else:
            trial = self.state.trials.get(key.trial)
            if trial is None:
                return {"error": "unknown trial"}
            record.record_trial_event(trial, event, iso(now_utc()))
            if event.get("type") == "intermediate":
                prune = trial.state in record.ACTIVE and should_prune(
                    self.effective_spec, self.state.observed(), key.trial, self.job.name
                )
                reply = {"prune": prune}
        self._save()
        self.wake.set()
        return reply


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
