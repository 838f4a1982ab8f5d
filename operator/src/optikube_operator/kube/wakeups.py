"""When the clock, not an event, next moves a job: its timer is set after each pass to the
earliest of a trial's timeout, the search's deadline, a launch whose Job has not shown up, a run
that reported its end but has not exited, a failed pass to retry, a finished job's
ttlSecondsAfterFinished. A job that only waits for events (its trials running, or finished with no
TTL) has no timer at all.

A periodic pass of every job (kopf's timers, then a safety pass of each job every 60 s) cost a
sixth of a core with 750 jobs idle, for answers that almost never changed. What remains of it is
one `SafetySweep` for the whole operator, in case an event is ever lost: it asks for a pass of
one unfinished job at a time, each of them once per `SWEEP_PERIOD`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from optikube_operator.core.wakeup import next_deadline
from optikube_operator.kube import detached
from optikube_operator.kube.records import JobKey, JobRecords

RETRY_AFTER_ERROR = timedelta(seconds=5)
SWEEP_PERIOD = timedelta(minutes=10)


def next_wakeup(
    records: JobRecords,
    now: datetime,
    *,
    settle: timedelta,
    exit_grace: timedelta,
    finished: bool,
    expires: datetime | None = None,
) -> datetime | None:
    """When to reconcile ``records`` again if no event comes first; None when only an event can
    change what a pass would do. ``expires``: when a finished job is to be deleted (its TTL)."""
    if finished:
        return expires
    moments: list[datetime] = []
    if records.settings is not None:
        deadline = next_deadline(records.settings, records.observed(), now)
        if deadline is not None:
            moments.append(deadline)
    # a launch not yet seen by the watch is re-checked once it has had time to show up
    moments += _future((at + settle for at in records.launched_at.values()), now)
    # a run that reported its end is stopped if it has not exited by the end of its grace period
    ends = (trial.end_time for trial in records.trials.values() if trial.end_time is not None)
    moments += _future((end + exit_grace for end in ends), now)
    return min(moments, default=None)


def _future(moments: Iterable[datetime], now: datetime) -> list[datetime]:
    return [moment for moment in moments if moment > now]


class Wakeups:
    """The armed timers: arming a job replaces its timer; forgetting it cancels it."""

    def __init__(self, wake: Callable[[JobKey], None]) -> None:
        self._wake = wake
        self._handles: dict[JobKey, asyncio.TimerHandle] = {}

    def arm(self, key: JobKey, at: datetime | None, now: datetime) -> None:
        """Wake ``key`` at ``at``; None: not at all (until armed again)."""
        self.cancel(key)
        if at is None:
            return
        delay = max((at - now).total_seconds(), 0.0)
        self._handles[key] = detached.timer(delay, self._fire, key)

    def cancel(self, key: JobKey) -> None:
        handle = self._handles.pop(key, None)
        if handle is not None:
            handle.cancel()

    def cancel_all(self) -> None:
        for key in list(self._handles):
            self.cancel(key)

    def armed(self, key: JobKey) -> bool:
        return key in self._handles

    def _fire(self, key: JobKey) -> None:
        self._handles.pop(key, None)
        self._wake(key)


class SafetySweep:
    """One task for the whole operator that asks for a pass of each unfinished job once per
    ``period``, one job at a time, evenly spread: a lost event costs at most a period, and a
    thousand idle jobs cost a pass every 0.6 s, not a burst."""

    def __init__(self, jobs: Callable[[], list[JobKey]], wake: Callable[[JobKey], None]) -> None:
        self._jobs = jobs
        self._wake = wake
        self._task: asyncio.Task[None] | None = None

    def start(self, period: timedelta = SWEEP_PERIOD) -> None:
        if self._task is None:
            self._task = detached.task(self._run(period.total_seconds()))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self, period: float) -> None:
        while True:
            jobs = self._jobs()
            if not jobs:
                await asyncio.sleep(period)
            for key in jobs:
                await asyncio.sleep(period / len(jobs))
                self._wake(key)
