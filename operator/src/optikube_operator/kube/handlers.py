"""The kopf handlers: only the decorators, each a line that hands over to the runtime.

Only event handlers: the reconciler is level-triggered and keeps its own queue, one pass at a time
per job, and its own timer per job set to the next moment the clock can move it (`kube.wakeups`).
"""

from __future__ import annotations

from typing import Any

import kopf

from optikube_operator.api import GROUP, VERSION
from optikube_operator.kube import names
from optikube_operator.kube.runtime import OperatorRuntime

JOBS = (GROUP, VERSION, names.JOBS)
OURS = {names.MANAGED_BY: names.MANAGER}


def _runtime(memo: Any) -> OperatorRuntime:
    runtime: OperatorRuntime = memo.runtime
    return runtime


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
    _runtime(memo).configure(settings)
    await _runtime(memo).start()


@kopf.on.cleanup()
async def cleanup(memo: Any, **_: Any) -> None:
    await _runtime(memo).stop()


@kopf.on.login()
def login(memo: Any, **_: Any) -> kopf.ConnectionInfo:
    return _runtime(memo).connection


# Every event of a job hands it to the reconciler, which passes over it when the job itself asks for
# one (first seen, a new generation, deletion) and retries a failed pass on its own timer. No kopf
# change handler: kopf's change detection deep-copied every job on each of its status echoes and
# patched its bookkeeping onto it, a quarter of the operator's CPU with hundreds of jobs.
@kopf.on.event(*JOBS)
async def job_event(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    _runtime(memo).job_event(str(event.get("type")), event["object"])


@kopf.on.event("batch", "v1", "jobs", labels=OURS)
async def run_job_event(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    _runtime(memo).run_changed("Job", str(event.get("type")), event["object"])


@kopf.on.event("", "v1", "pods", labels=OURS)
async def run_pod_event(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    _runtime(memo).run_changed("Pod", str(event.get("type")), event["object"])
