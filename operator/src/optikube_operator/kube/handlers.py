"""The kopf handlers: only the decorators, each a line that hands over to the runtime.

There is no kopf timer: after each pass the reconciler sets its own timer per job to the next
moment the clock can move it (`kube.wakeups`).
"""

from __future__ import annotations

from typing import Any

import kopf

from optikube_operator.api import GROUP, VERSION
from optikube_operator.kube import names
from optikube_operator.kube.runtime import OperatorRuntime

JOBS = (GROUP, VERSION, names.JOBS)
OURS = {names.MANAGED_BY: names.MANAGER}
RETRY_SECONDS = 5.0


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


# a failed reconcile (the apiserver busy, say) is retried soon: the next pass is level-triggered
@kopf.on.resume(*JOBS, backoff=RETRY_SECONDS)
@kopf.on.create(*JOBS, backoff=RETRY_SECONDS)
@kopf.on.update(*JOBS, backoff=RETRY_SECONDS)
async def job_changed(body: kopf.Body, memo: Any, **_: Any) -> None:
    await _runtime(memo).job_changed(body)


@kopf.on.event(*JOBS)
async def job_event(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    _runtime(memo).job_event(str(event.get("type")), event["object"])


@kopf.on.event("batch", "v1", "jobs", labels=OURS)
async def run_job_event(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    _runtime(memo).run_changed("Job", str(event.get("type")), event["object"])


@kopf.on.event("", "v1", "pods", labels=OURS)
async def run_pod_event(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    _runtime(memo).run_changed("Pod", str(event.get("type")), event["object"])
