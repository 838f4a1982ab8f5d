"""One run of one container: its launcher process (nsinit.py `container`, the process node's
shim), how it is stopped, and what its end means for the container's status."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from optikube_testcluster.processnode.paths import PodDirs
from optikube_testcluster.processnode.podstatus import TERMINATED, ContainerState, termination_message
from optikube_testcluster.processnode.probing import ExecTarget
from optikube_testcluster.processnode.spawner import Spawner

START_ERROR_CODE = 128
START_TIMEOUT_SECONDS = 30.0


def _time(value: Any) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(float(value), dt.UTC) if value else None


def _tail(path: Path, size: int = 16384) -> str:
    try:
        with path.open("rb") as log:
            log.seek(max(0, path.stat().st_size - size))
            return log.read().decode(errors="replace")
    except OSError:
        return ""


class ContainerRun:
    def __init__(self, spawner: Spawner, dirs: PodDirs, container: dict[str, Any], log_path: Path) -> None:
        self.spawner = spawner
        self.dirs = dirs
        self.container = container
        self.name = str(container["name"])
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = dt.datetime.now(dt.UTC)
        self.kill_deadline: float | None = None
        self.spec: dict[str, Any] = {}

    def exec_target(self) -> ExecTarget | None:
        """For exec probes: the running command's host pid, user and environment."""
        pid = self.result().get("pid")
        if pid is None or not self.running():
            return None
        return ExecTarget(
            int(pid), int(self.spec.get("uid", 0)), int(self.spec.get("gid", 0)), dict(self.spec["env"])
        )

    def start(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        directory = self.dirs.container(self.name)
        directory.mkdir(parents=True, exist_ok=True)
        for path in (self.dirs.rootfs(self.name), self.dirs.scratch(self.name)):
            path.mkdir(exist_ok=True)
        self.dirs.result(self.name).unlink(missing_ok=True)
        termination = self.dirs.termination_log(self.name)
        termination.write_bytes(b"")
        termination.chmod(0o666)  # whatever user the container runs as may write it
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = self.spawner.nsinit(
                "container", spec, self.dirs.launch_spec(self.name), output=log
            )
        # Running means exec'd, as for a runtime: wait for the launcher to say so (or to end).
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline and self.process.poll() is None:
            if "startedAt" in self.result():
                break
            time.sleep(0.01)
        self.started_at = _time(self.result().get("startedAt")) or dt.datetime.now(dt.UTC)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, signum: int) -> None:
        # The launcher forwards it to the command's process group; SIGKILL kills the launcher, and
        # the command with it (its parent-death signal).
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)

    def stop(self, grace_seconds: float, now: float) -> None:
        """Starts a graceful stop: SIGTERM now, SIGKILL once grace_seconds have passed."""
        if self.kill_deadline is None:
            self.signal(signal.SIGTERM)
            self.kill_deadline = now + grace_seconds

    def enforce_deadline(self, now: float) -> None:
        if self.kill_deadline is not None and now >= self.kill_deadline:
            self.signal(signal.SIGKILL)

    def result(self) -> dict[str, Any]:
        try:
            result: dict[str, Any] = json.loads(self.dirs.result(self.name).read_text())
        except (OSError, ValueError):
            result = {}
        if "exitCode" not in result and self.process is not None and self.process.returncode is not None:
            code = self.process.returncode  # the launcher itself was killed (SIGKILL: 137)
            result["exitCode"] = 128 - code if code < 0 else code
            result.setdefault("signal", -code if code < 0 else None)
        return result

    def record_exit(self, state: ContainerState) -> None:
        """Fills state with this run's end: exit code, reason, termination message."""
        result = self.result()
        state.state = TERMINATED
        state.ready = False
        state.exit_code = int(result.get("exitCode", 137))
        state.signal = result.get("signal")
        state.started_at = _time(result.get("startedAt")) or self.started_at
        state.finished_at = _time(result.get("finishedAt")) or dt.datetime.now(dt.UTC)
        if result.get("error"):
            state.exit_code, state.reason, state.message = START_ERROR_CODE, "StartError", result["error"]
            return
        state.reason = "Completed" if state.exit_code == 0 else "Error"
        try:
            text = self.dirs.termination_log(self.name).read_text(errors="replace")
        except OSError:
            text = ""
        policy = self.container.get("terminationMessagePolicy") or "File"
        state.message = termination_message(text, _tail(self.log_path), policy, state.exit_code)

    def reap(self) -> None:
        if self.process is not None:
            self.process.poll()
