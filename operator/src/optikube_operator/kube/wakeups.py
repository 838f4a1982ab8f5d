"""One timer per job, set after each reconcile to the next moment the clock (not an event) can
move that job: a trial's timeout, the search's deadline, a launch whose Job has not shown up, a
run that reported its end but has not exited, a failed pass to retry. A periodic safety pass
remains, so a lost event costs at most `SAFETY_RESYNC`.

Polling every job every few seconds (kopf's timers) cost a third of a core with 750 jobs, for
answers that almost never changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from optikube_operator.core.wakeup import next_deadline
from optikube_operator.kube.records import JobKey, JobRecords

SAFETY_RESYNC = timedelta(seconds=60)
RETRY_AFTER_ERROR = timedelta(seconds=5)


def next_wakeup(
    records: JobRecords, now: datetime, *, settle: timedelta, exit_grace: timedelta, finished: bool
) -> datetime:
    """When to reconcile ``records`` again if no event comes first."""
    moments: list[datetime] = [now + SAFETY_RESYNC]
    if not finished and records.settings is not None:
        deadline = next_deadline(records.settings, records.observed(), now)
        if deadline is not None:
            moments.append(deadline)
    # a launch not yet seen by the watch is re-checked once it has had time to show up
    moments += _future((at + settle for at in records.launched_at.values()), now)
    # a run that reported its end is stopped if it has not exited by the end of its grace period
    ends = (trial.end_time for trial in records.trials.values() if trial.end_time is not None)
    moments += _future((end + exit_grace for end in ends), now)
    return min(moments)


def _future(moments: Iterable[datetime], now: datetime) -> list[datetime]:
    return [moment for moment in moments if moment > now]


class Wakeups:
    """The armed timers: arming a job replaces its timer; forgetting it cancels it."""

    def __init__(self, wake: Callable[[JobKey], None]) -> None:
        self._wake = wake
        self._handles: dict[JobKey, asyncio.TimerHandle] = {}

    def arm(self, key: JobKey, at: datetime, now: datetime) -> None:
        self.cancel(key)
        delay = max((at - now).total_seconds(), 0.0)
        self._handles[key] = asyncio.get_running_loop().call_later(delay, self._fire, key)

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
