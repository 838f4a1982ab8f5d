"""Local trainer processes: `torchrun` in its own process group, logged to a file.

Each run gets its own session (process group) so that stopping it reaches torchrun and every
worker it spawned, and so that a Ctrl-C in the terminal reaches only the CLI, which then stops
the runs itself. On Linux the runs also die with the CLI (parent-death signal), so a CLI killed
with SIGKILL leaves no trainer behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def trainer_command(stage: str, config_path: Path, processes: int) -> list[str]:
    """A run under torchrun; the preflight, one process that only reads, without it."""
    if stage == "preflight":
        return [sys.executable, "-m", "optikube_trainer", stage, "--config", str(config_path)]
    return torchrun_command(stage, config_path, processes)


def torchrun_command(stage: str, config_path: Path, processes: int) -> list[str]:
    """The command line the Kubernetes backend runs in a pod, with a standalone rendezvous."""
    launcher = Path(sys.executable).with_name("torchrun")
    prefix = [str(launcher)] if launcher.exists() else [shutil.which("torchrun") or "torchrun"]
    return [
        *prefix,
        "--standalone",
        "--nproc-per-node",
        str(processes),
        "-m",
        "optikube_trainer",
        stage,
        "--config",
        str(config_path),
    ]


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


async def launch(
    argv: Sequence[str], env: Mapping[str, str], log_path: Path, cwd: Path | None = None
) -> asyncio.subprocess.Process:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )


def signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


async def terminate(process: asyncio.subprocess.Process, grace_seconds: float = 10.0) -> int:
    """SIGTERM to the whole group (torchrun forwards it to its workers), SIGKILL after the grace."""
    if process.returncode is not None:
        return process.returncode
    signal_group(process.pid, signal.SIGTERM)
    try:
        return await asyncio.wait_for(process.wait(), grace_seconds)
    except TimeoutError:
        signal_group(process.pid, signal.SIGKILL)
        return await process.wait()


def kill_leftover(pid: int | None) -> None:
    """Kill a run a previous CLI started, if it is still a trainer (guards against reused pids)."""
    if pid is None:
        return
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if b"optikube_trainer" in command:
        signal_group(pid, signal.SIGKILL)


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        with path.open(errors="replace") as stream:
            return "".join(deque(stream, maxlen=lines))
    except OSError:
        return ""
