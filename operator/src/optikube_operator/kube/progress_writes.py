"""Intermediate progress written behind its replies, several steps of a trial in one write.

Writing each intermediate progress to its OptimizationTrial before replying made the apiserver the
endpoint's pace: about 3 ms of its CPU per status write, so 500 messages a second would need more
than the two cores it shares with everything else (docs/benchmarks.md, "Operator at scale"). So
the reply to an intermediate progress comes from memory and says which step of the trial is
durable (`durableStep`); the trainer sends every later step again with its next messages
(`unconfirmed`, Contract 3) until a reply covers it, and an operator killed in between loses
nothing: its successor records those steps from the next message.

A trial with steps to write is written at once if it was not written in the last
`WRITE_INTERVAL`, else when that interval has passed or `MAX_UNWRITTEN` steps wait, whichever
comes first: a trainer with long epochs has each step written as it comes, a busy one a write
every interval for all its steps. Each write holds the job's lock, like every other write of the
job's records, and writes what memory holds then. A reconcile writes the job's waiting steps
before it acts (`flush`), so that every action stands on durable records, and a stopping operator
writes them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from optikube_operator.kube import detached
from optikube_operator.kube.backend import KubernetesBackend
from optikube_operator.kube.client import ApiError
from optikube_operator.kube.records import JobKey, JobRecords

log = logging.getLogger(__name__)
# seconds between two progress writes of one trial: 1,500 trial pods sending a step every 3 s
# (500 messages a second) make 150 writes a second, not 500
WRITE_INTERVAL = 10.0
MAX_UNWRITTEN = 16  # steps of one trial answered and not yet written; the trainer resends them
RETRY_AFTER_ERROR = 5.0
CONCURRENT_WRITES = 8  # jobs written side by side (each with its trials' writes in parallel)

Clock = Callable[[], float]


class ProgressWrites:
    def __init__(
        self,
        backend: KubernetesBackend,
        *,
        interval: float = WRITE_INTERVAL,
        max_unwritten: int = MAX_UNWRITTEN,
        clock: Clock | None = None,
    ) -> None:
        self.backend = backend
        self.interval = interval
        self.max_unwritten = max_unwritten
        self._clock = clock
        self._jobs: dict[JobKey, JobRecords] = {}  # jobs with a trial waiting or being written
        self._due: dict[tuple[JobKey, int], float] = {}  # when each waiting trial's write is due
        self._steps: dict[tuple[JobKey, int], int] = {}  # steps waiting, per trial
        self._last: dict[tuple[JobKey, int], float] = {}  # when each trial was last written
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(CONCURRENT_WRITES)
        self._task: asyncio.Task[None] | None = None
        self._writing: set[asyncio.Task[None]] = set()
        self.writes = 0  # status writes made, for the tests and the benchmark

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    def waiting(self, records: JobRecords, number: int) -> None:
        """Trial ``number``'s record in memory is one step ahead of its status (the caller holds
        the job's lock and has marked it in ``records.unwritten``)."""
        key = (records.key, number)
        now = self._now()
        steps = self._steps.get(key, 0) + 1
        self._steps[key] = steps
        last = self._last.get(key)
        due = now if last is None or steps >= self.max_unwritten else max(now, last + self.interval)
        self._jobs[records.key] = records
        if key not in self._due or due < self._due[key]:
            self._due[key] = due
            self._wake.set()
        if self._task is None or self._task.done():
            self._task = detached.task(self._run())

    async def flush(self, records: JobRecords) -> None:
        """Write the job's waiting trials now (the caller holds the job's lock)."""
        numbers = sorted(records.unwritten)
        if numbers:
            await self._write(records, numbers)

    def forget_job(self, key: JobKey) -> None:
        self._jobs.pop(key, None)
        for entry in [entry for entry in (*self._due, *self._steps, *self._last) if entry[0] == key]:
            self._due.pop(entry, None)
            self._steps.pop(entry, None)
            self._last.pop(entry, None)

    async def stop(self) -> None:
        """Write everything that waits (a stopping operator leaves no step to resend), then stop."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        await asyncio.gather(*self._writing, return_exceptions=True)
        for records in list(self._jobs.values()):
            try:
                async with records.lock:
                    await self.flush(records)
            except (ApiError, OSError, TimeoutError):
                log.warning("the progress of %s/%s was not written before stopping", *records.key)
        self._jobs.clear()
        self._due.clear()

    # --- the writer -------------------------------------------------------------------------------

    async def _run(self) -> None:
        """Starts each due write; sleeps while nothing is due (no periodic wake-up)."""
        while True:
            now = self._now()
            ready: dict[JobKey, list[int]] = {}
            for (key, number), due in list(self._due.items()):
                if due <= now:
                    del self._due[(key, number)]
                    ready.setdefault(key, []).append(number)
            for trial in [trial for trial, last in self._last.items() if now - last > self.interval]:
                del self._last[trial]  # written long enough ago: its next step is written at once
            for key, numbers in ready.items():
                records = self._jobs.get(key)
                if records is None:
                    continue  # nothing of that job waits any more
                task = detached.task(self._write_job(records, numbers))
                self._writing.add(task)
                task.add_done_callback(self._writing.discard)
            self._wake.clear()
            timeout = min(self._due.values(), default=None)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), None if timeout is None else max(timeout - now, 0))

    async def _write_job(self, records: JobRecords, numbers: list[int]) -> None:
        async with self._slots:
            try:
                async with records.lock:
                    await self._write(records, numbers)
            except Exception as error:  # the apiserver is busy or gone: the steps wait, try again
                log.warning("cannot write the progress of %s/%s now: %s", *records.key, error)
                retry = self._now() + RETRY_AFTER_ERROR
                for number in numbers:
                    if number in records.unwritten:
                        self._due[(records.key, number)] = retry
                self._wake.set()
            finally:
                if not records.unwritten:
                    self._jobs.pop(records.key, None)

    async def _write(self, records: JobRecords, numbers: list[int]) -> None:
        """Each of ``numbers`` still ahead of its status written as memory holds it now."""
        now = self._now()

        async def one(number: int) -> None:
            key = (records.key, number)
            self._steps.pop(key, None)
            trial = records.trials.get(number)
            if number not in records.unwritten or trial is None:
                records.unwritten.discard(number)  # a reconcile wrote it meanwhile
                return
            try:
                await self.backend.write_trial(records, trial)
            except ApiError as error:
                if not error.not_found:
                    raise
                records.unwritten.discard(number)  # its OptimizationTrial went with its job
                return
            self._due.pop(key, None)
            self._last[key] = now
            self.writes += 1

        await asyncio.gather(*(one(number) for number in numbers))
