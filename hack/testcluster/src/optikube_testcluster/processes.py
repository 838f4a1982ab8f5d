"""Starting and stopping the control plane's processes so that none outlives its owner.

Each child runs in its own process group (so a component's own children die with it) and, unless
it is meant to outlive us (`make cluster-up`), gets PR_SET_PDEATHSIG=SIGKILL: the kernel kills it
even when the Python process is SIGKILLed and no cleanup code can run. atexit and SIGTERM/SIGINT
handlers stop everything on the ordinary ways out.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

PR_SET_PDEATHSIG = 1
# Looked up once here: the child must not load libraries between fork and exec. Linux only;
# elsewhere the atexit and signal handlers are the only safety net.
_prctl = getattr(ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True), "prctl", None)


def _die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    if _prctl is None:
        return None
    prctl = _prctl

    # Runs in the child between fork and exec: only async-signal-safe calls, nothing imported.
    def setup() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return setup


def spawn(argv: list[str], log_path: Path, *, detached: bool = False) -> subprocess.Popen[bytes]:
    """Starts argv with stdout and stderr appended to log_path.

    detached=False: own process group, killed by the kernel when this process dies.
    detached=True: own session, survives this process (for a cluster started by `up`).
    """
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            close_fds=True,
            start_new_session=detached,
            process_group=None if detached else 0,
            preexec_fn=None if detached else _die_with_parent(os.getpid()),
        )


def pid_alive(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    if not Path("/proc/self/stat").exists():  # no procfs: existence is all we can tell
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # The state letter follows the command name, which is in parentheses and may hold spaces.
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def pid_runs(pid: int, executable: Path) -> bool:
    """True when pid is alive and runs `executable`: guards against killing a recycled pid."""
    if not pid_alive(pid):
        return False
    try:
        return Path(f"/proc/{pid}/exe").readlink() == executable.resolve()
    except OSError:
        return False


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)  # every child leads its own group, so its pgid is its pid
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def kill_group(pid: int) -> None:
    """SIGKILL a component and its process group at once (a crash, for fault-injection tests)."""
    _signal_group(pid, signal.SIGKILL)


def terminate_all(
    pids: list[int], grace_seconds: float = 10.0, reap: Callable[[], object] | None = None
) -> None:
    """SIGTERM every process group, wait up to grace_seconds, then SIGKILL what is left."""
    for pid in pids:
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        if reap is not None:
            reap()
        if not any(pid_alive(pid) for pid in pids):
            return
        time.sleep(0.05)
    for pid in pids:
        _signal_group(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(pid_alive(pid) for pid in pids):
        if reap is not None:
            reap()
        time.sleep(0.05)


# ---- stop everything on the ways out ------------------------------------------------------------

_cleanups: dict[int, Callable[[], None]] = {}
# Reentrant: a signal handler may run cleanups while this thread holds the lock.
_lock = threading.RLock()
_installed = False


def run_cleanups() -> None:
    with _lock:
        pending = list(_cleanups.values())
        _cleanups.clear()
    for cleanup in pending:
        with contextlib.suppress(Exception):
            cleanup()


def _on_signal(previous: Callable[[int, FrameType | None], object] | int | None) -> Callable[..., None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        run_cleanups()
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_IGN:
            return
        else:  # the default action: die of the same signal, as the caller expects
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    return handler


def _install_handlers() -> None:
    global _installed
    if _installed:
        return
    atexit.register(run_cleanups)
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, _on_signal(signal.getsignal(signum)))
    _installed = True


def register_cleanup(key: int, cleanup: Callable[[], None]) -> None:
    with _lock:
        _install_handlers()
        _cleanups[key] = cleanup


def unregister_cleanup(key: int) -> None:
    with _lock:
        _cleanups.pop(key, None)
