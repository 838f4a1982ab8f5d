"""LocalBackend: the core's actions carried out as `torchrun` subprocesses on this machine.

It only acts: the core decides (`decide`), the shared rules record what runs report and how they
end (`core.recording`) and what a resumed run continues from (`core.recovery`); this class starts
and stops processes, serves the progress endpoint on 127.0.0.1 and saves the state file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from optikube_operator.api import OptimizationJob, SpecError
from optikube_operator.api.progress import AnyProgress, FinalProgress, IntermediateProgress
from optikube_operator.core import (
    Action,
    Finish,
    JobSettings,
    ObservedPreflight,
    ObservedTrial,
    PipelineState,
    PreflightState,
    StartPipeline,
    StartPreflight,
    StartTrial,
    StopPipeline,
    StopTrial,
    TrialState,
    decide,
    should_prune,
)
from optikube_operator.core.recording import (
    record_pipeline_exit,
    record_pipeline_progress,
    record_preflight_exit,
    record_trial_exit,
    record_trial_progress,
    stale_progress,
)
from optikube_operator.core.recovery import interrupted, launched, needs_launch, pipeline_launched, resumed
from optikube_operator.endpoint import BearerTokens, ProgressEndpoint, ProgressRejectedError, RunKey
from optikube_operator.local.preflight import run_preflight
from optikube_operator.local.processes import kill_leftover, launch, log_tail, terminate, trainer_command
from optikube_operator.local.state import (
    STATE_FILE,
    LocalTrial,
    RunState,
    append_line,
    read_json_object,
    remove_temporaries,
    repair_log,
    write_json_atomic,
)
from optikube_operator.runconfig import JobIdentity, Stage, render_run_config

PIPELINE = RunKey(trial=None)
LOGS = ("launches.jsonl", "progress.jsonl")
CommandBuilder = Callable[[str, Path, int], list[str]]


class StateView(Protocol):
    """What shows a run's state as it changes (the CLI's live view)."""

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
    command: CommandBuilder = trainer_command
    extra_env: dict[str, str] = field(default_factory=dict)


def spec_digest(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def now_utc() -> datetime:
    return datetime.now(UTC)


class LocalBackend:
    def __init__(self, job: OptimizationJob, options: LocalOptions, view: StateView | None = None) -> None:
        self.job = JobIdentity.of(job)
        self.spec = job.spec.to_dict()
        self.options = options
        self.out = options.output_dir
        self.view = view
        # read once: --parallel overrides spec.tuning.parallelTrials
        self.settings = JobSettings.from_spec(job.spec, self.job.name).with_parallel_trials(options.parallel)
        self.processes_per_run = job.spec.resources.processes_per_worker
        self.processes: dict[RunKey, asyncio.subprocess.Process] = {}
        self.watchers: set[asyncio.Task[None]] = set()
        self.stopping: set[RunKey] = set()
        self.tokens = BearerTokens()
        self.endpoint = ProgressEndpoint(self._on_progress, self.tokens)
        self.wake = asyncio.Event()
        self.interrupted = False
        self.stopped = asyncio.Event()  # set with `interrupted`: ends an awaited preflight
        # what the preflight found (samples, classes, parameters), once it passed in this run
        self.preflight_findings: dict[str, Any] = {}
        self.state = self._load_or_create()

    # --- state ----------------------------------------------------------------------------------

    def _load_or_create(self) -> RunState:
        digest = spec_digest(self.spec)
        if (self.out / STATE_FILE).exists():
            if not self.options.resume:
                raise RunExistsError(f"{self.out} already holds a run: pass --resume to continue it")
            # what a kill left half-written: temporaries never renamed into place, a torn last line
            remove_temporaries(self.out)
            for name in LOGS:
                repair_log(self.out / name)
            state = RunState.load(self.out, read_json_object(self.out / "pipeline" / "results.json"))
            if state.spec_digest != digest or state.job_name != self.job.name:
                raise RunExistsError(f"{self.out} holds a run of another spec: use a new --output")
            if not state.finished.get("succeeded"):
                # The decision is made again from the records.
                state.finished = {}
                state.adopt(resumed(state.observed()))
            return state
        self.out.mkdir(parents=True, exist_ok=True)
        return RunState(job_name=self.job.name, spec_digest=digest, start_time=now_utc())

    def _save(self) -> None:
        self.state.save(self.out)
        if self.view is not None:
            self.view.update(self.state)

    def _log(self, name: str, entry: dict[str, Any]) -> None:
        append_line(self.out / name, entry)

    # --- the loop -------------------------------------------------------------------------------

    async def run(self) -> RunState:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.interrupt)
        await self.endpoint.start("127.0.0.1", 0)
        try:
            while not self.state.finished and not self.interrupted:
                self.wake.clear()
                now = now_utc()
                for action in decide(self.settings, self.state.observed(), now):
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
            await self.endpoint.stop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            self._save()
        return self.state

    def interrupt(self) -> None:
        self.interrupted = True
        self.stopped.set()
        self.wake.set()

    async def _apply(self, action: Action, now: datetime) -> None:
        if isinstance(action, StartPreflight):
            await self._preflight(now)
        elif isinstance(action, StartTrial):
            existing = self.state.trials.get(action.number)
            record = ObservedTrial(
                number=action.number,
                params=dict(action.params),
                state=TrialState.PENDING,
                sampler_attrs=dict(action.sampler_attrs),
                attempts=existing.record.attempts if existing else 0,
            )
            self.state.trials[action.number] = LocalTrial(record)
            await self._launch_trial(self.state.trials[action.number], now)
        elif isinstance(action, StopTrial):
            trial = self.state.trials[action.number]
            if not trial.record.state.active:
                return
            state = action.reason.trial_state
            trial.record = replace(trial.record, state=state, message=action.reason.message, end_time=now)
            self._save()
            await self._terminate(RunKey(action.number))
        elif isinstance(action, StartPipeline):
            self.state.pipeline = replace(
                self.state.pipeline,
                state=PipelineState.PENDING,
                params=dict(action.params),
                trial_number=action.trial_number,
                search_ended=action.search_ended.value,
            )
            await self._launch_pipeline(now)
        elif isinstance(action, StopPipeline):
            self.state.pipeline = replace(self.state.pipeline, state=action.pipeline_state)
            await self._terminate(PIPELINE)
        elif isinstance(action, Finish):
            self.state.finished = {
                "reason": action.reason.value,
                "succeeded": action.succeeded,
                "message": action.message,
                "time": now.isoformat(),
            }

    async def _preflight(self, now: datetime) -> None:
        """Awaited: nothing else runs before it passes, and it takes seconds."""
        self.state.preflight = ObservedPreflight(PreflightState.RUNNING, start_time=now)
        self._save()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.options.extra_env}
        outcome = await run_preflight(self.job, self.spec, self.out, self.options.command, env, self.stopped)
        if outcome is None:  # interrupted: it runs again on resume
            self.state.preflight = ObservedPreflight()
            return
        self.preflight_findings = dict(outcome.findings)
        self.state.preflight = record_preflight_exit(
            self.state.preflight, outcome.exit_code, outcome.message, now_utc()
        )
        self.wake.set()  # decide again now, not at the next poll

    async def _ensure_running(self, now: datetime) -> None:
        """Runs recorded as pending or running without a process (after --resume) start again."""
        for trial in self.state.trials.values():
            if needs_launch(trial.record, RunKey(trial.record.number) in self.processes):
                kill_leftover(trial.pid)
                await self._launch_trial(trial, now)
        if self.state.pipeline.state.active and PIPELINE not in self.processes:
            kill_leftover(self.state.pipeline_pid)
            await self._launch_pipeline(now)

    async def _stop_all_for_resume(self) -> None:
        for key in list(self.processes):
            await self._terminate(key)
        self.state.adopt(interrupted(self.state.observed()))
        self.state.interruptions += 1

    # --- processes ------------------------------------------------------------------------------

    def _env(self, key: RunKey) -> dict[str, str]:
        token_dir = self.out / ".tokens"
        token_dir.mkdir(mode=0o700, exist_ok=True)
        token_file = token_dir / ("pipeline" if key.trial is None else f"trial-{key.trial}")
        token_file.write_text(self.tokens.issue(key))
        token_file.chmod(0o600)
        parallel = self.settings.parallel_trials if key.trial is not None else 1
        threads = max(1, (os.cpu_count() or 1) // (parallel * self.processes_per_run))
        return {
            **os.environ,
            "OPTIKUBE_PROGRESS_URL": self.endpoint.url,
            "OPTIKUBE_PROGRESS_TOKEN_FILE": str(token_file),
            "OMP_NUM_THREADS": str(threads),
            "PYTHONUNBUFFERED": "1",
            **self.options.extra_env,
        }

    async def _start(self, key: RunKey, stage: Stage, run_dir: Path, config: dict[str, Any]) -> int:
        run_dir.mkdir(parents=True, exist_ok=True)
        config_path = run_dir / "run.json"
        write_json_atomic(config_path, config)
        argv = self.options.command(stage, config_path, self.processes_per_run)
        process = await launch(argv, self._env(key), run_dir / "trainer.log")
        self.processes[key] = process
        task = asyncio.create_task(self._watch(key, process, run_dir))
        self.watchers.add(task)
        task.add_done_callback(self.watchers.discard)
        return process.pid

    def _run_config(self, stage: Stage, run_dir: Path, **run: Any) -> dict[str, Any]:
        """The run config of this job's ``stage`` run in ``run_dir``; SpecError or ValueError when
        the run's params make the spec invalid."""
        return render_run_config(job=self.job, spec=self.spec, stage=stage, output_dir=str(run_dir), **run)

    async def _launch_trial(self, trial: LocalTrial, now: datetime) -> None:
        number = trial.record.number
        run_dir = self.out / "trials" / str(number)
        try:
            config = self._run_config("trial", run_dir, trial_number=number, params=trial.record.params)
        except (SpecError, ValueError) as error:
            trial.record = replace(trial.record, state=TrialState.FAILED, message=str(error), end_time=now)
            return
        trial.record = launched(trial.record, now, running=True)
        trial.pid = await self._start(RunKey(number), "trial", run_dir, config)
        attempt = trial.record.attempts
        self._log("launches.jsonl", {"run": "trial", "number": number, "attempt": attempt, "time": now})

    async def _launch_pipeline(self, now: datetime) -> None:
        run_dir = self.out / "pipeline"
        pipeline = self.state.pipeline
        try:
            resume_from = str(run_dir) if pipeline.attempts else None
            config = self._run_config("pipeline", run_dir, params=pipeline.params, resume_from=resume_from)
        except (SpecError, ValueError) as error:
            self.state.pipeline = replace(pipeline, state=PipelineState.FAILED, message=str(error))
            return
        self.state.pipeline = pipeline_launched(pipeline, now, running=True)
        self.state.pipeline_pid = await self._start(PIPELINE, "pipeline", run_dir, config)
        self._log("launches.jsonl", {"run": "pipeline", "attempt": self.state.pipeline.attempts, "time": now})

    async def _terminate(self, key: RunKey) -> None:
        process = self.processes.get(key)
        if process is None:
            return
        self.stopping.add(key)
        await terminate(process, self.options.grace_seconds)

    async def _watch(self, key: RunKey, process: asyncio.subprocess.Process, run_dir: Path) -> None:
        code = await process.wait()
        self.processes.pop(key, None)
        self.tokens.revoke(key)
        if key in self.stopping:
            self.stopping.discard(key)
        else:
            tail = log_tail(run_dir / "trainer.log", lines=60)
            now = now_utc()
            results = read_json_object(run_dir / "results.json")
            if key.trial is None:
                self.state.pipeline = record_pipeline_exit(self.state.pipeline, code, now, results)
                self.state.pipeline_pid = None
                if self.state.pipeline.state is PipelineState.FAILED:
                    self.state.pipeline_log_tail = tail
            else:
                trial = self.state.trials[key.trial]
                trial.record = record_trial_exit(trial.record, code, results, now)
                trial.pid = None
                if trial.record.state is TrialState.FAILED:
                    trial.log_tail = tail
        self._save()
        self.wake.set()

    # --- the progress endpoint --------------------------------------------------------------------

    async def _on_progress(self, key: RunKey, progress: AnyProgress) -> dict[str, Any]:
        now = now_utc()
        self._log("progress.jsonl", {"received": now, **progress.model_dump(mode="json", by_alias=True)})
        reply: dict[str, Any] = {}
        if key.trial is None:
            if not self.state.pipeline.state.active:
                raise ProgressRejectedError(409, "the pipeline is not running", "conflict")
            self.state.pipeline = record_pipeline_progress(self.state.pipeline, progress, now)
        else:
            trial = self.state.trials.get(key.trial)
            if trial is None or not trial.record.state.active:
                state = "unknown" if trial is None else trial.record.state.value
                raise ProgressRejectedError(409, f"trial {key.trial} is not running ({state})", "conflict")
            if stale_progress(trial.record, progress):
                raise ProgressRejectedError(409, f"step already reported for trial {key.trial}", "conflict")
            trial.record = record_trial_progress(trial.record, progress, self.settings.primary.metric, now)
            if isinstance(progress, FinalProgress):
                trial.results = dict(progress.results)
            if isinstance(progress, IntermediateProgress):
                reply = {"prune": should_prune(self.settings, self.state.observed(), key.trial)}
                # the state file is written before the reply: every step recorded is durable
                if trial.record.latest_step is not None:
                    reply["durableStep"] = trial.record.latest_step
        self._save()
        self.wake.set()
        return reply
