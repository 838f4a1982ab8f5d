"""The life of one pod on a process node, on its own thread: sandbox and network, volumes, init
containers in order, containers with probes and restarts, status reports, and graceful deletion
(SIGTERM, SIGKILL after the grace period, clean-up, then the pod object's final delete)."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

from optikube_testcluster.processnode.containers import START_ERROR_CODE, ContainerRun
from optikube_testcluster.processnode.context import AgentContext
from optikube_testcluster.processnode.downward import NodeFacts
from optikube_testcluster.processnode.envvars import (
    ConfigError,
    StartError,
    command_line,
    container_env,
    runtime_env,
)
from optikube_testcluster.processnode.hosts import pod_hostname
from optikube_testcluster.processnode.nodes import capacity
from optikube_testcluster.processnode.podstatus import (
    RUNNING,
    TERMINATED,
    WAITING,
    ContainerState,
    PodFacts,
    finished,
    pod_phase,
    pod_status,
)
from optikube_testcluster.processnode.podvolumes import PodVolumes
from optikube_testcluster.processnode.probing import ContainerProbes, monotonic
from optikube_testcluster.processnode.rest import ApiError, pod_path
from optikube_testcluster.processnode.rootplan import identity, launch_spec
from optikube_testcluster.processnode.sandbox import PodSandbox

log = logging.getLogger(__name__)
SETUP, INIT, MAIN, DONE = "setup", "init", "main", "done"
TICK_SECONDS = 0.2
VOLUME_SYNC_SECONDS = 10.0
MAX_BACKOFF_SECONDS = 300.0


class PodWorker:
    def __init__(self, ctx: AgentContext, pod: dict[str, Any]) -> None:
        self.ctx = ctx
        self.pod = pod
        metadata, spec = pod["metadata"], pod["spec"]
        self.uid, self.namespace, self.name = metadata["uid"], metadata["namespace"], metadata["name"]
        self.node = spec["nodeName"]
        self.dirs = ctx.layout.pod(self.uid)
        self.host_ip = ctx.network.gateway(self.node)
        self.start_time = dt.datetime.now(dt.UTC)
        self.sandbox = PodSandbox(ctx, pod, self.dirs)
        self.init_specs = list(spec.get("initContainers") or [])
        self.specs = list(spec.get("containers") or [])
        self.init_states = [ContainerState(c["name"], c.get("image", "")) for c in self.init_specs]
        self.states = [ContainerState(c["name"], c.get("image", "")) for c in self.specs]
        self.runs: dict[str, ContainerRun] = {}
        self.retry_at: dict[str, float] = {}
        self.crashes: dict[str, int] = {}
        self.probes: dict[str, ContainerProbes] = {}
        self.volumes = PodVolumes(ctx.rest, self.dirs, identity(pod, {}).fs_group, ctx.claim_path)
        self.volume_paths: dict[str, Path] = {}
        self.stage = DONE if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") else SETUP
        self.last_status: dict[str, Any] | None = None
        self.gone = False
        self.shutdown_grace: float | None = None
        self.wake = threading.Event()
        self.finished = threading.Event()
        self._setup_retry = 0.0
        self._logs_started = False
        self._last_sync = 0.0
        self.thread = threading.Thread(
            target=self._main, name=f"pod {self.namespace}/{self.name}", daemon=True
        )

    # ---- called by the agent ---------------------------------------------------------------------

    def start(self) -> None:
        self.thread.start()

    def notify(self, pod: dict[str, Any] | None) -> None:
        if pod is None:
            self.gone = True
        else:
            self.pod = pod
        self.wake.set()

    def shutdown(self, grace_seconds: float) -> None:
        self.shutdown_grace = grace_seconds
        self.wake.set()

    @property
    def pod_ip(self) -> str | None:
        return self.sandbox.pod_ip

    def refresh_hosts(self) -> None:
        if self.stage != DONE:
            self.sandbox.refresh_hosts(self.pod)

    # ---- the loop ----------------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            self._loop()
        except Exception:
            log.exception("pod %s/%s", self.namespace, self.name)
        finally:
            self._kill_all()
            self.sandbox.stop()
            self.finished.set()

    def _loop(self) -> None:
        while True:
            now = monotonic()
            if self.shutdown_grace is not None:
                self._stop_all(self.shutdown_grace)
                return
            if self.gone or self.pod["metadata"].get("deletionTimestamp"):
                self._delete()
                return
            if self.stage == SETUP and now >= self._setup_retry:
                self._setup(now)
            if self.stage in (INIT, MAIN) and self.sandbox.died():
                # Its processes died with it; the next container start makes a new one.
                log.warning("pod %s/%s: the sandbox died", self.namespace, self.name)
                self.sandbox.stop()
            if self.stage == INIT:
                self._step_init(now)
            if self.stage == MAIN:
                self._step_main(now)
            if self.stage in (INIT, MAIN) and now - self._last_sync >= VOLUME_SYNC_SECONDS:
                self._last_sync = now
                self._sync_volumes()
            if self.stage != DONE and pod_phase(self._policy(), self.init_states, self.states) in (
                "Succeeded",
                "Failed",
            ):
                self.stage = DONE
            self._push_status()
            if self.stage == DONE and self.sandbox.running:
                self.sandbox.stop()
            self.wake.wait(TICK_SECONDS)
            self.wake.clear()

    def _policy(self) -> str:
        return str(self.pod["spec"].get("restartPolicy", "Always"))

    def _facts(self) -> NodeFacts:
        return NodeFacts(self.pod_ip or "", self.host_ip, capacity(self.ctx.nodes[self.node]))

    # ---- sandbox, network, volumes -----------------------------------------------------------------

    def _setup(self, now: float) -> None:
        try:
            if not self.sandbox.running:
                self._fresh_logs()
                self.sandbox.start(self.pod)
            self.volume_paths = self.volumes.prepare(self.pod, self._facts())
        except Exception as error:  # retried, as the kubelet retries a pod it cannot set up yet
            config = isinstance(error, ConfigError)
            if not config:
                log.warning("pod %s/%s: setup: %s", self.namespace, self.name, error)
                self.sandbox.stop()
            for state in [*self.init_states, *self.states]:
                state.reason = "CreateContainerConfigError" if config else "CreateContainerError"
                state.message = str(error)
            self._setup_retry = now + (1.0 if config else 2.0)
            return
        for state in [*self.init_states, *self.states]:
            state.reason, state.message = ("PodInitializing" if self.init_specs else "ContainerCreating"), ""
        self._last_sync = now
        self.stage = INIT

    def _fresh_logs(self) -> None:
        if self._logs_started:
            return
        self._logs_started = True
        for container in [*self.init_specs, *self.specs]:  # a new pod: a fresh log
            path = self.ctx.layout.log(self.namespace, self.name, container["name"])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")

    def _sync_volumes(self) -> None:
        try:
            self.volumes.sync(self.pod, self._facts())
        except (ConfigError, ApiError, OSError) as error:
            log.warning("pod %s/%s: volume sync: %s", self.namespace, self.name, error)

    # ---- containers ----------------------------------------------------------------------------------

    def _step_init(self, now: float) -> None:
        policy = self._policy()
        for container, state in zip(self.init_specs, self.init_states, strict=True):
            if state.state == TERMINATED and state.exit_code == 0:
                continue
            self._step(container, state, now, restart=lambda code: code != 0 and policy != "Never")
            return  # one at a time, in order
        self.stage = MAIN

    def _step_main(self, now: float) -> None:
        policy = self._policy()
        restart = {"Always": lambda code: True, "OnFailure": lambda code: code != 0}.get(
            policy, lambda code: False
        )
        for container, state in zip(self.specs, self.states, strict=True):
            self._step(container, state, now, restart)
            if state.state == RUNNING:
                self._probe(container, state, now)

    def _step(self, container: dict[str, Any], state: ContainerState, now: float, restart: Any) -> None:
        name = container["name"]
        run = self.runs.get(name)
        if state.state == RUNNING and run is not None:
            run.enforce_deadline(now)
            if run.running():
                return
            run.reap()
            run.record_exit(state)
            self.probes.pop(name, None)
            if run.started_at and (dt.datetime.now(dt.UTC) - run.started_at).total_seconds() > 600:
                self.crashes[name] = 0  # ran long enough: the back-off starts over
            if restart(state.exit_code):
                self._schedule_restart(name, state, now)
            return
        if state.state == WAITING and now >= self.retry_at.get(name, 0.0):
            self._start(container, state, now)
            if state.state == TERMINATED and restart(state.exit_code):
                self._schedule_restart(name, state, now)

    def _schedule_restart(self, name: str, state: ContainerState, now: float) -> None:
        crashes = self.crashes.get(name, 0)
        delay = min(self.ctx.restart_backoff * (2**crashes), MAX_BACKOFF_SECONDS)
        self.crashes[name] = crashes + 1
        state.last_state = finished(state)
        state.restart_count += 1
        state.state, state.reason = WAITING, "CrashLoopBackOff"
        state.message = (
            f"back-off {delay:g}s restarting failed container={name} pod={self.name}_{self.namespace}"
        )
        self.retry_at[name] = now + delay

    def _start(self, container: dict[str, Any], state: ContainerState, now: float) -> None:
        name = container["name"]
        if not self.sandbox.running:
            try:
                self.sandbox.start(self.pod)
            except Exception as error:
                state.reason, state.message = "CreateContainerError", f"sandbox: {error}"
                self.sandbox.stop()
                self.retry_at[name] = now + 2.0
                return
        assert self.sandbox.pid is not None
        try:
            env = container_env(
                self.pod,
                container,
                self._facts(),
                self.volumes.config_map(),
                self.volumes.secret(),
                self.ctx.services(),
            )
            env = runtime_env(
                env, pod_hostname(self.pod), identity(self.pod, container).uid, self.ctx.path_prefix
            )
            argv = command_line(container, env)
            self.volumes.make_sub_paths(self.pod, container, env)
            spec = launch_spec(
                pod=self.pod,
                container=container,
                dirs=self.dirs,
                volume_paths=self.volume_paths,
                env=env,
                argv=argv,
                sandbox_pid=self.sandbox.pid,
                state_dir=self.ctx.layout.root,
                traversable=self.ctx.image_paths,
                image=self.ctx.image_paths,
            )
        except StartError as error:
            state.state, state.exit_code, state.reason, state.message = (
                TERMINATED,
                START_ERROR_CODE,
                "StartError",
                str(error),
            )
            state.started_at = state.finished_at = dt.datetime.now(dt.UTC)
            return
        except ConfigError as error:
            state.reason, state.message = "CreateContainerConfigError", str(error)
            self.retry_at[name] = now + 2.0
            return
        run = ContainerRun(
            self.ctx.spawner, self.dirs, container, self.ctx.layout.log(self.namespace, self.name, name)
        )
        try:
            run.start(spec)
        except OSError as error:
            log.warning("pod %s/%s: starting %s: %s", self.namespace, self.name, name, error)
            state.reason, state.message = "CreateContainerError", str(error)
            self.retry_at[name] = now + 2.0
            return
        self.runs[name] = run
        state.state, state.reason, state.message = RUNNING, "", ""
        state.started_at, state.exit_code, state.signal, state.ready = run.started_at, None, None, False
        self.probes[name] = ContainerProbes(container, monotonic(), self.ctx.probes)
        state.ready = not self.probes[name].trackers
        log.info("pod %s/%s: started %s: %s", self.namespace, self.name, name, argv)

    def _probe(self, container: dict[str, Any], state: ContainerState, now: float) -> None:
        name = container["name"]
        probes, run = self.probes.get(name), self.runs.get(name)
        if probes is None or run is None or not self.sandbox.running:
            return
        probes.tick(now, self.sandbox.netns, self.pod_ip or "", run.exec_target())
        failing = probes.failing()
        if failing is not None:
            if run.kill_deadline is None:
                log.warning("pod %s/%s: %s failed its probe, stopping it", self.namespace, self.name, name)
            grace = failing.probe.get("terminationGracePeriodSeconds")
            run.stop(float(grace if grace is not None else self._grace()), now)
        ready = probes.ready()
        if ready != state.ready:  # a Service's endpoints follow this; say when it flips
            log.info("pod %s/%s: %s ready %s", self.namespace, self.name, name, ready)
        state.ready = ready

    # ---- stopping ----------------------------------------------------------------------------------

    def _grace(self) -> float:
        metadata, spec = self.pod["metadata"], self.pod["spec"]
        value = metadata.get("deletionGracePeriodSeconds")
        if value is None:
            value = spec.get("terminationGracePeriodSeconds", 30)
        return float(value)

    def _stop_all(self, grace: float) -> None:
        now = monotonic()
        for run in self.runs.values():
            if run.running():
                run.stop(grace, now)
        while any(run.running() for run in self.runs.values()):
            for run in self.runs.values():
                run.enforce_deadline(monotonic())
            time.sleep(0.05)
        for container, state in zip(
            [*self.init_specs, *self.specs], [*self.init_states, *self.states], strict=True
        ):
            stopped = self.runs.get(container["name"])
            if state.state == RUNNING and stopped is not None:
                stopped.record_exit(state)

    def _kill_all(self) -> None:
        for run in self.runs.values():
            run.signal(signal.SIGKILL)
            run.reap()

    def _delete(self) -> None:
        grace = 0.0 if self.gone else self._grace()
        self._stop_all(grace)
        if not self.gone:
            with contextlib.suppress(ApiError):
                self._push_status()
        self.sandbox.stop()
        # The directory goes before the object: whoever sees the pod gone sees nothing left of it.
        shutil.rmtree(self.dirs.root, ignore_errors=True)
        if not self.gone:
            body = {"gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}}
            try:
                self.ctx.rest.delete(pod_path(self.namespace, self.name), body)
            except ApiError as error:
                if error.status not in (404, 409):
                    raise
        log.info("pod %s/%s: deleted", self.namespace, self.name)

    def _push_status(self) -> None:
        if self.stage == DONE and self.last_status is None and not self.sandbox.running and not self.runs:
            return  # a finished pod from before this agent: nothing new to say
        facts = PodFacts(self.pod_ip, self.host_ip, self.start_time, self.sandbox.running)
        status = pod_status(self.pod, facts, self.init_states, self.states, dt.datetime.now(dt.UTC))
        if status == self.last_status:
            return
        try:
            self.ctx.rest.patch(f"{pod_path(self.namespace, self.name)}/status", {"status": status})
        except (ApiError, OSError) as error:
            if isinstance(error, ApiError) and error.status == 404:
                self.gone = True
            else:  # the next tick tries again
                log.warning("pod %s/%s: status update: %s", self.namespace, self.name, error)
            return
        self.last_status = status
