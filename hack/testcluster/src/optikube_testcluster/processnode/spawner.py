"""Starting the agent's long-lived children (namespace holders, sandboxes, container launchers).

Every child sets PR_SET_PDEATHSIG=SIGKILL itself (nsinit.py), and that signal fires when the
*thread* that forked it ends, not the process: so all of them are forked by one thread that
lives as long as the agent.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any, TypeVar

NSINIT = Path(__file__).with_name("nsinit.py")
T = TypeVar("T")


class WorkThread:
    """A thread that runs the work it is given, in order, handing each result (or error) back
    through a Future, so that what only a thread has (the children it forked, the namespace it
    entered) serves the whole agent. ``enter`` runs on it first; its error is the constructor's."""

    def __init__(self, name: str, enter: Callable[[], None] | None = None) -> None:
        self._requests: queue.Queue[tuple[Callable[[], Any], Future[Any]] | None] = queue.Queue()
        entered: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, args=(enter, entered), name=name, daemon=True)
        self._thread.start()
        entered.result()

    def _run(self, enter: Callable[[], None] | None, entered: Future[None]) -> None:
        try:
            if enter is not None:
                enter()
        except BaseException as error:
            entered.set_exception(error)
            return
        entered.set_result(None)
        while (request := self._requests.get()) is not None:
            work, future = request
            try:
                future.set_result(work())
            except BaseException as error:
                future.set_exception(error)

    def submit(self, work: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self._requests.put((work, future))
        return future

    def stop(self) -> None:
        self._requests.put(None)


class Spawner(WorkThread):
    def __init__(self) -> None:
        super().__init__("spawner")

    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        return self.submit(lambda: subprocess.Popen(argv, close_fds=True, **kwargs)).result()

    def nsinit(
        self, mode: str, spec: dict[str, Any], spec_path: Path, output: IO[bytes] | int | None = None
    ) -> subprocess.Popen[bytes]:
        """Starts nsinit.py in `mode`; its stdout is a pipe unless output is given."""
        spec_path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(spec_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            json.dump({**spec, "parent": os.getpid()}, out)
        # -S -E: no site packages, no PYTHON* variables: the standard library only, started in
        # milliseconds, whatever the environment of the agent.
        argv = [sys.executable, "-S", "-E", str(NSINIT), mode, str(spec_path)]
        stdout = subprocess.PIPE if output is None else output
        return self.popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT if output is not None else None,
        )


def read_ready(process: subprocess.Popen[bytes], what: str) -> int:
    """The pid an nsinit holder or sandbox prints once its namespaces exist."""
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait()
        raise RuntimeError(f"{what} exited with code {process.returncode} before it was ready")
    return int(json.loads(line)["pid"])
