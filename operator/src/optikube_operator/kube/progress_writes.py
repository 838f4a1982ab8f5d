"""Intermediate progress written behind its replies, several steps of a trial in one write.

Writing each intermediate progress to its OptimizationTrial before replying made the apiserver the
endpoint's pace: 3 to 6 ms of its CPU per status write, so 500 messages a second would need more
than the two cores it shares with everything else (docs/benchmarks.md, "Operator at scale"). So
the reply to an intermediate progress comes from memory and says which step of the trial is
durable (`durableStep`); the trainer sends every later step again with its next messages
(`unconfirmed`, Contract 3) until a reply covers it, and an operator killed in between loses
nothing: its successor records those steps from the next message.

A trial with steps to write is written at once if it was not written in the last
`WRITE_INTERVAL`, else when that interval has passed or `MAX_UNWRITTEN` steps wait, whichever
comes first: a trainer with long epochs has each step written as it comes, a busy one a write
every interval for all its steps. All trials together are written at most `WRITES_PER_SECOND`
times a second (a token bucket; the earliest due first): with many trials running each trial's
interval stretches, so the apiserver's share of the cores stays bounded however many pods report,
and the steps of a trial wait longer and share its next write. Each write holds the job's lock,
like every other write of the job's records, and writes what memory holds then. A reconcile
writes the job's waiting steps before it acts (`flush`), so that every action stands on durable
records, and a stopping operator writes them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable

from optikube_operator.api.progress import MAX_UNCONFIRMED
from optikube_operator.kube import detached
from optikube_operator.kube.backend import KubernetesBackend
from optikube_operator.kube.client import ApiError
from optikube_operator.kube.records import JobKey, JobRecords

log = logging.getLogger(__name__)
# seconds between two progress writes of one trial, at least: a trial's status is that fresh
WRITE_INTERVAL = 10.0
# all trials' writes together: at ~6 ms of apiserver CPU each, at most a third of a core; 1,500
# trial pods sending a step every 3 s (500 messages a second) have each trial written every 30 s
WRITES_PER_SECOND = 50.0
BUDGET_WAIT = 0.1  # while writes wait for the budget, the writer starts them in batches this far apart
MAX_UNWRITTEN = 16  # steps of one trial answered and not yet written; the trainer resends them
# steps of one trial that are written ahead of the budget: the trainer keeps MAX_UNCONFIRMED steps
# to send again, so a trial must be written before that many wait, however busy the apiserver is
URGENT_UNWRITTEN = MAX_UNCONFIRMED // 2
RETRY_AFTER_ERROR = 5.0
CONCURRENT_WRITES = 8  # jobs written side by side (each with its trials' writes in parallel)

Clock = Callable[[], float]


class ProgressWrites:
    def __init__(
        self,
        backend: KubernetesBackend,
        *,
        interval: float = WRITE_INTERVAL,
        writes_per_second: float = WRITES_PER_SECOND,
        max_unwritten: int = MAX_UNWRITTEN,
        clock: Clock | None = None,
    ) -> None:
        self.backend = backend
        self.interval = interval
        self.writes_per_second = writes_per_second
        self.max_unwritten = max_unwritten
        self._clock = clock
        self._budget = writes_per_second  # writes that may start now (a second's worth at most)
        self._budget_at: float | None = None  # when the budget was last topped up
        self._jobs: dict[JobKey, JobRecords] = {}  # jobs with a trial waiting or being written
        self._due: dict[tuple[JobKey, int], float] = {}  # when each waiting trial's write is due
        self._steps: dict[tuple[JobKey, int], int] = {}  # steps waiting, per trial
        self._last: dict[tuple[JobKey, int], float] = {}  # when each trial was last written
        self._urgent: set[tuple[JobKey, int]] = set()  # trials written ahead of the budget
        self._wake = asyncio.Event()
        # a write falling due before this wakes the writer early (none while it waits for the budget)
        self._wake_for_due_before = math.inf
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
            if due < self._wake_for_due_before:
                self._wake.set()
        if steps >= URGENT_UNWRITTEN and key not in self._urgent:
            self._urgent.add(key)
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
            self._urgent.discard(entry)

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
        self._steps.clear()
        self._last.clear()
        self._urgent.clear()

    # --- the writer -------------------------------------------------------------------------------

    def _take_budget(self, now: float, wanted: int) -> int:
        """How many of ``wanted`` writes may start now; they are taken from the budget."""
        if self._budget_at is not None:
            topped_up = self._budget + (now - self._budget_at) * self.writes_per_second
            self._budget = min(self.writes_per_second, topped_up)
        self._budget_at = now
        granted = max(0, min(wanted, int(self._budget)))
        self._budget -= granted
        return granted

    async def _run(self) -> None:
        """Starts each due write the budget allows, the earliest due first; sleeps while nothing is
        due (no periodic wake-up)."""
        while True:
            now = self._now()
            # the urgent first, ahead of the budget (they still spend it), then the earliest due
            due_now = sorted(
                (trial not in self._urgent, due, trial) for trial, due in self._due.items() if due <= now
            )
            urgent = sum(1 for ordinary, _, _ in due_now if not ordinary)
            self._budget -= urgent
            granted = urgent + self._take_budget(now, len(due_now) - urgent)
            ready: dict[JobKey, list[int]] = {}
            for _, _, (key, number) in due_now[:granted]:
                del self._due[(key, number)]
                self._urgent.discard((key, number))
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
            if granted < len(due_now):  # the rest wait for the budget: a new due one cannot go sooner
                wait: float | None = max(BUDGET_WAIT, (1 - self._budget) / self.writes_per_second)
                self._wake_for_due_before = -math.inf
            else:
                wait = min((due - now for due in self._due.values()), default=None)
                self._wake_for_due_before = math.inf if wait is None else now + wait
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), None if wait is None else max(wait, 0))

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
            trial = records.trials.get(number)
            if number not in records.unwritten or trial is None:
                records.unwritten.discard(number)  # a reconcile wrote it meanwhile
                self._steps.pop(key, None)
                return
            try:
                await self.backend.write_trial(records, trial)
            except ApiError as error:
                if not error.not_found:
                    raise  # its steps still count towards an early write
                records.unwritten.discard(number)  # its OptimizationTrial went with its job
                self._steps.pop(key, None)
                return
            self._steps.pop(key, None)
            self._due.pop(key, None)
            self._last[key] = now
            self.writes += 1

        await asyncio.gather(*(one(number) for number in numbers))
