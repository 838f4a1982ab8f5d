"""Intermediate progress written behind its replies (`kube.progress_writes`): a trial's steps
coalesce into one status write per interval, all trials together keep to a write budget, a pass or a
stop writes what waits, a failed write is tried again and leaves the steps waiting (the trainer
sends them again meanwhile)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any, cast

import pytest

from optikube_operator.core import ObservedTrial, TrialState
from optikube_operator.kube import progress_writes
from optikube_operator.kube.client import ApiError
from optikube_operator.kube.progress_writes import ProgressWrites
from optikube_operator.kube.records import JobRecords

INTERVAL = 0.3


class FakeBackend:
    """Writes a trial's record as KubernetesBackend.write_trial does, or fails while `failing`."""

    def __init__(self) -> None:
        self.written: list[tuple[int, int | None]] = []  # (trial, its latest step) per write
        self.started: list[float] = []  # when each write began (time.monotonic)
        self.failing = False

    async def write_trial(self, records: JobRecords, trial: ObservedTrial) -> None:
        self.started.append(time.monotonic())
        await asyncio.sleep(0.01)
        if self.failing:
            raise ApiError(503, "ServiceUnavailable", "the apiserver is starting")
        self.written.append((trial.number, trial.latest_step))
        records.trial_written(trial)


def _records(trials: int = 1) -> JobRecords:
    records = JobRecords("ns", "job", "uid", loaded=True)
    for number in range(trials):
        records.trials[number] = ObservedTrial(number, {}, TrialState.RUNNING)
    return records


def _step(writes: ProgressWrites, records: JobRecords, step: int, number: int = 0) -> None:
    """What the progress handler does with an intermediate progress: memory first, the write later."""
    records.trials[number] = replace(records.trials[number], latest_step=step, intermediate={step: 0.5})
    records.unwritten.add(number)
    writes.waiting(records, number)


def _writes(backend: FakeBackend, **kwargs: Any) -> ProgressWrites:
    return ProgressWrites(cast(Any, backend), interval=INTERVAL, **kwargs)


def test_a_busy_trials_steps_are_written_once_per_interval_and_a_quiet_ones_at_once() -> None:
    async def scenario() -> tuple[list[tuple[int, int | None]], dict[int, int]]:
        backend, records = FakeBackend(), _records()
        writes = _writes(backend)
        for step in range(5):  # five steps within one interval
            _step(writes, records, step)
            await asyncio.sleep(0.02)
        await asyncio.sleep(INTERVAL + 0.1)
        assert not records.unwritten
        await asyncio.sleep(INTERVAL + 0.1)  # quiet for an interval: the next step goes at once
        _step(writes, records, 5)
        await asyncio.sleep(0.05)
        return backend.written, records.durable_steps

    written, durable = asyncio.run(scenario())
    assert written == [(0, 0), (0, 4), (0, 5)]
    assert durable == {0: 5}


def test_many_waiting_steps_are_written_before_the_interval_ends() -> None:
    async def scenario() -> list[tuple[int, int | None]]:
        backend, records = FakeBackend(), _records()
        writes = _writes(backend, max_unwritten=3)
        for step in range(4):
            _step(writes, records, step)
            await asyncio.sleep(0.02)
        return backend.written

    assert asyncio.run(scenario()) == [(0, 0), (0, 3)]


def test_a_flush_writes_now_and_a_stop_writes_what_waits() -> None:
    async def scenario() -> list[tuple[int, int | None]]:
        backend, records = FakeBackend(), _records()
        records.trials[1] = ObservedTrial(1, {}, TrialState.RUNNING)
        writes = _writes(backend)
        _step(writes, records, 0)
        await asyncio.sleep(0.05)  # written at once: the trial was not written lately
        _step(writes, records, 1)
        async with records.lock:  # as a reconcile does before it acts
            await writes.flush(records)
        _step(writes, records, 2)
        _step(writes, records, 0, number=1)
        await writes.stop()
        assert not records.unwritten
        return sorted(backend.written)

    assert asyncio.run(scenario()) == [(0, 0), (0, 1), (0, 2), (1, 0)]


def test_a_failed_write_is_tried_again_and_the_steps_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_writes, "RETRY_AFTER_ERROR", 0.2)

    async def scenario() -> list[tuple[int, int | None]]:
        backend, records = FakeBackend(), _records()
        writes = _writes(backend)
        backend.failing = True
        _step(writes, records, 0)
        await asyncio.sleep(0.1)
        assert records.unwritten == {0} and records.durable_steps == {}
        backend.failing = False
        await asyncio.sleep(0.3)
        return backend.written

    assert asyncio.run(scenario()) == [(0, 0)]


def test_all_trials_together_keep_to_the_write_budget() -> None:
    budget, trials = 20.0, 50

    async def scenario() -> tuple[list[float], float]:
        backend, records = FakeBackend(), _records(trials)
        writes = _writes(backend, writes_per_second=budget)
        began = time.monotonic()
        for number in range(trials):  # every trial due at once: more than a second's budget
            _step(writes, records, 0, number)
        for _ in range(100):
            await asyncio.sleep(0.05)
            if not records.unwritten:
                break
        assert not records.unwritten, "every trial is written in the end"
        return backend.started, began

    started, began = asyncio.run(scenario())
    assert len(started) == trials
    # a token bucket: a second's worth at once, then the budget's rate (a slow loop only writes later)
    for count, at in enumerate(sorted(started), start=1):
        assert count <= budget + budget * (at - began) + 1, (count, at - began)
    assert max(started) - began >= (trials - budget) / budget - 0.1


def test_a_trial_with_many_waiting_steps_is_written_ahead_of_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(progress_writes, "URGENT_UNWRITTEN", 4)

    async def scenario() -> tuple[list[tuple[int, int | None]], list[int]]:
        backend, records = FakeBackend(), _records(3)
        writes = _writes(backend, writes_per_second=1.0, max_unwritten=100)
        _step(writes, records, 0, number=1)  # the second's budget goes to trial 1
        _step(writes, records, 0, number=2)  # trial 2 waits for the budget
        await asyncio.sleep(0.05)
        for step in range(4):  # trial 0: written at once, then steps up to the urgent count
            _step(writes, records, step)
            await asyncio.sleep(0.05)
        return backend.written, sorted(records.unwritten)

    written, unwritten = asyncio.run(scenario())
    assert written == [(1, 0), (0, 3)]
    assert unwritten == [2]
