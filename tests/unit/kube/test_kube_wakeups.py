"""The per-job timers that replaced polling: when a job is woken (and that an idle or finished job
has no timer at all), that a timer fires once, and the one sweep that stands in for lost events."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import weakref
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from optikube_operator.core import ObservedTrial, TrialState
from optikube_operator.kube import names
from optikube_operator.kube.reconcile import Reconciler
from optikube_operator.kube.records import JobKey, JobRecords, RecordStore
from optikube_operator.kube.wakeups import SafetySweep, Wakeups, next_wakeup

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SETTLE = timedelta(seconds=30)
GRACE = timedelta(seconds=30)


def wakeup(
    records: JobRecords, now: datetime, finished: bool = False, expires: datetime | None = None
) -> datetime | None:
    return next_wakeup(records, now, settle=SETTLE, exit_grace=GRACE, finished=finished, expires=expires)


def test_an_idle_job_and_a_finished_one_have_no_timer_but_a_ttl() -> None:
    """No periodic pass of any job: with 750 jobs idle a pass each minute was most of the
    operator's idle CPU (docs/benchmarks.md, "Operator at scale")."""
    records = JobRecords("ns", "job", "uid")
    assert wakeup(records, T0) is None
    records.launched_at[names.trial_run(0)] = T0
    records.trials[0] = ObservedTrial(0, {}, TrialState.SUCCEEDED, end_time=T0)
    assert wakeup(records, T0 + SETTLE, finished=True) is None  # whatever its records say
    assert wakeup(records, T0, finished=True, expires=T0 + timedelta(days=1)) == T0 + timedelta(days=1)


def test_a_fresh_launch_and_a_run_past_its_end_are_rechecked_when_due() -> None:
    records = JobRecords("ns", "job", "uid")
    records.launched_at[names.trial_run(0)] = T0
    assert wakeup(records, T0 + timedelta(seconds=10)) == T0 + SETTLE
    # once settled it no longer counts
    assert wakeup(records, T0 + SETTLE) is None
    records.trials[1] = ObservedTrial(1, {}, TrialState.SUCCEEDED, end_time=T0 + timedelta(seconds=5))
    assert wakeup(records, T0 + SETTLE) == T0 + timedelta(seconds=5) + GRACE


def test_wakeups_fire_once_and_rearming_or_cancelling_replaces_the_timer() -> None:
    async def scenario() -> list[JobKey]:
        woken: list[JobKey] = []
        wakeups = Wakeups(woken.append)
        now = datetime.now(UTC)
        wakeups.arm(("ns", "a"), now + timedelta(milliseconds=20), now)
        wakeups.arm(("ns", "a"), now + timedelta(milliseconds=40), now)  # replaces the first
        wakeups.arm(("ns", "b"), now + timedelta(milliseconds=10), now)
        wakeups.cancel(("ns", "b"))
        wakeups.arm(("ns", "c"), now - timedelta(seconds=1), now)  # overdue: at once
        await asyncio.sleep(0.1)
        assert not wakeups.armed(("ns", "a"))
        return woken

    assert asyncio.run(scenario()) == [("ns", "c"), ("ns", "a")]


CAUSE: contextvars.ContextVar[object] = contextvars.ContextVar("cause")


def test_a_timer_armed_from_a_handlers_context_keeps_nothing_of_it() -> None:
    """kopf runs a handler with the watch event's body in a context variable; a timer armed in that
    context (a pass a pod's event began) kept the body alive until its deadline, hours later."""

    class Body:
        pass

    async def scenario() -> bool:
        wakeups = Wakeups(lambda key: None)
        body = Body()
        kept = weakref.ref(body)

        async def handler(cause: object) -> None:
            CAUSE.set(cause)
            wakeups.arm(("ns", "a"), T0 + timedelta(hours=2), T0)

        await asyncio.get_running_loop().create_task(handler(body))
        await asyncio.sleep(0)  # the loop lets go of the finished handler task
        del body
        gc.collect()
        alive = kept() is not None
        wakeups.cancel_all()
        return alive

    assert asyncio.run(scenario()) is False


def test_the_sweep_asks_for_each_job_once_per_period_one_at_a_time() -> None:
    async def scenario() -> list[tuple[JobKey, float]]:
        asked: list[tuple[JobKey, float]] = []
        loop = asyncio.get_running_loop()
        started = loop.time()
        sweep = SafetySweep(lambda: [("ns", "a"), ("ns", "b")], lambda key: asked.append((key, loop.time())))
        sweep.start(timedelta(seconds=0.2))
        await asyncio.sleep(0.35)
        await sweep.stop()
        return [(key, at - started) for key, at in asked]

    asked = asyncio.run(scenario())
    assert [key for key, _ in asked] == [("ns", "a"), ("ns", "b"), ("ns", "a")]
    assert 0.08 < asked[0][1] < asked[1][1] - 0.08  # spread over the period, not a burst


def test_a_job_event_asks_for_a_pass_only_when_the_job_itself_asks_for_one() -> None:
    """New, a new generation (spec change), deletion: a pass. The echo of the operator's own status
    write (same generation): none."""
    from typing import Any

    reconciler = Reconciler(cast(Any, None), cast(Any, None), RecordStore(), cast(Any, None), cast(Any, None))
    asked: list[JobKey] = []
    reconciler.request = asked.append  # type: ignore[method-assign]

    def job(generation: int, status: dict[str, Any], **meta: Any) -> dict[str, Any]:
        metadata = {"name": "q", "namespace": "ns", "uid": "u", "generation": generation, **meta}
        return {"apiVersion": "optikube.io/v1alpha1", "kind": "OptimizationJob", "metadata": metadata,
                "spec": {}, "status": status}  # fmt: skip

    reconciler.job_seen(job(1, {}))
    reconciler.job_seen(job(1, {"phase": "Tuning"}))  # its own status write coming back
    assert asked == [("ns", "q")] and reconciler.bodies[("ns", "q")]["status"] == {"phase": "Tuning"}
    reconciler.job_seen(job(2, {"phase": "Tuning"}))  # spec changed
    reconciler.job_seen(job(2, {"phase": "Tuning"}, deletionTimestamp="2026-01-01T00:00:00Z"))
    reconciler.job_seen(job(2, {}, uid="another"))  # deleted and made again under its name
    assert len(asked) == 4


def test_a_kept_job_shares_its_spec_across_echoes_and_leaves_its_status_to_the_operators_write() -> None:
    """Hundreds of jobs, each echoing every status write: the kept body shares the spec while the
    generation stays and drops the status once the operator has written one (that write is newer)."""
    from typing import Any

    store = RecordStore()
    reconciler = Reconciler(cast(Any, None), cast(Any, None), store, cast(Any, None), cast(Any, None))
    reconciler.request = lambda key: None  # type: ignore[method-assign]

    def job(generation: int, uid: str = "u") -> dict[str, Any]:
        metadata = {"name": "q", "namespace": "ns", "uid": uid, "generation": generation,
                    "managedFields": [{"manager": "kubectl"}]}  # fmt: skip
        return {"apiVersion": "optikube.io/v1alpha1", "kind": "OptimizationJob", "metadata": metadata,
                "spec": {"tuning": {"maxTrials": 4}}, "status": {"phase": "Tuning"}}  # fmt: skip

    reconciler.job_seen(job(1))
    first = reconciler.bodies[("ns", "q")]
    assert first["status"] == {"phase": "Tuning"} and "managedFields" not in first["metadata"]
    store.of("ns", "q", "u").record_written({"phase": "Tuning"})
    reconciler.job_seen(job(1))  # the echo of that write
    echo = reconciler.bodies[("ns", "q")]
    assert echo["spec"] is first["spec"] and "status" not in echo
    reconciler.job_seen(job(2))  # a spec change is a new copy
    assert reconciler.bodies[("ns", "q")]["spec"] is not first["spec"]
    reconciler.job_seen(job(2, uid="another"))  # made again under its name: nothing written for it yet
    assert reconciler.bodies[("ns", "q")]["status"] == {"phase": "Tuning"}
