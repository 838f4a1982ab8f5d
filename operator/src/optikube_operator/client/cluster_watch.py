"""watch() on a cluster: the apiserver's watch, not polling. The job (by a field selector on its
name) and its trials (by their job label) are each listed once, then watched from the list's
resourceVersion by a thread apiece; every change they deliver makes a new snapshot. A watch the
apiserver ends (its timeout) goes on from the last resourceVersion seen; one it answers 410 Gone
(the version is too old) lists again, as an informer does."""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from optikube_operator.client.errors import ClientError, ErrorReason, not_found
from optikube_operator.client.records import JobSnapshot
from optikube_operator.kube import names

if TYPE_CHECKING:
    from optikube_operator.client.cluster import ClusterJobs

# how long one watch request lasts before the apiserver ends it and it is opened again
WATCH_SECONDS = 300
GONE = 410
Change = tuple[str, str, Any]  # (event type | "RESET" | "ERROR", plural, object | items | error)


class ResourceWatch(threading.Thread):
    """Watches one resource of the namespace with fixed selectors, from `version` on, and puts
    each change on `changes`."""

    def __init__(
        self,
        jobs: ClusterJobs,
        plural: str,
        selectors: Mapping[str, str],
        version: str,
        changes: queue.Queue[Change],
    ) -> None:
        super().__init__(name=f"optikube-watch-{plural}", daemon=True)
        self.jobs = jobs
        self.plural = plural
        self.selectors = dict(selectors)
        self.version: str | None = version
        self.changes = changes
        self.stopped = threading.Event()
        self.response: Any = None

    def stop(self) -> None:
        self.stopped.set()
        # Unblock the read in run() by shutting the socket down: closing the response from this
        # thread would wait for the TLS read that holds it (until the apiserver sends something).
        connection = getattr(self.response, "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def run(self) -> None:
        try:
            while not self.stopped.is_set():
                if self.version is None:
                    listed = self.jobs.list_objects(self.plural, f"list {self.plural}", **self.selectors)
                    self.changes.put(("RESET", self.plural, list(listed.get("items") or [])))
                    self.version = str(listed["metadata"]["resourceVersion"])
                self._watch_once()
        except Exception as error:
            if not self.stopped.is_set():
                self.changes.put(("ERROR", self.plural, self.jobs.failure(error, f"watch {self.plural}")))

    def _watch_once(self) -> None:
        from kubernetes.client import ApiException
        from kubernetes.watch.watch import iter_resp_lines

        response = self.jobs.call(
            f"watch {self.plural}",
            None,
            self.jobs.custom.list_namespaced_custom_object,
            *_resource(self.jobs, self.plural),
            **self.selectors,
            watch=True,
            resource_version=self.version,
            allow_watch_bookmarks=True,
            timeout_seconds=WATCH_SECONDS,
            _preload_content=False,
            _request_timeout=None,
        )
        self.response = response
        try:
            if not 200 <= response.status < 300:
                raise ApiException(status=response.status, reason=response.reason, body=response.data)
            for line in iter_resp_lines(response):
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == GONE:
                        self.version = None
                        return
                    raise ApiException(status=obj.get("code"), reason=obj.get("reason"), body=json.dumps(obj))
                self.version = str(obj.get("metadata", {}).get("resourceVersion") or self.version)
                if kind != "BOOKMARK":
                    self.changes.put((str(kind), self.plural, obj))
        except Exception:
            if self.stopped.is_set():
                return  # closed by stop()
            raise
        finally:
            if self.stopped.is_set():
                response.close()  # its connection is shut down: never back into the pool
            else:
                response.release_conn()


def _resource(jobs: ClusterJobs, plural: str) -> tuple[str, str, str, str]:
    group, version = names.API_VERSION.split("/")
    return group, version, jobs.namespace, plural


def watch_job(jobs: ClusterJobs, name: str, timeout: float | None) -> Iterator[JobSnapshot]:
    deadline = None if timeout is None else time.monotonic() + timeout
    job_selector = {"field_selector": f"metadata.name={name}"}
    trial_selector = {"label_selector": f"{names.JOB_LABEL}={name}"}
    listed_job = jobs.list_objects(names.JOBS, "list optimizationjobs", name, **job_selector)
    if not listed_job.get("items"):
        raise not_found(name, f"namespace {jobs.namespace}", f"`optikube get -n {jobs.namespace}`")
    listed_trials = jobs.list_objects(names.TRIALS, "list optimizationtrials", **trial_selector)
    first: dict[str, Any] = listed_job["items"][0]
    job: dict[str, Any] | None = first
    trials = {t["metadata"]["name"]: t for t in listed_trials.get("items") or []}
    snapshot = jobs.snapshot_of(first, trials.values())
    yield snapshot
    if snapshot.finished:
        return
    changes: queue.Queue[Change] = queue.Queue()
    watches = [
        ResourceWatch(jobs, names.JOBS, job_selector, listed_job["metadata"]["resourceVersion"], changes),
        ResourceWatch(
            jobs, names.TRIALS, trial_selector, listed_trials["metadata"]["resourceVersion"], changes
        ),
    ]
    for watch in watches:
        watch.start()
    try:
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            try:
                pending = [changes.get(timeout=remaining)]
            except queue.Empty:
                return
            while not changes.empty():  # a burst of changes makes one snapshot
                pending.append(changes.get_nowait())
            for kind, plural, payload in pending:
                if kind == "ERROR":
                    raise payload
                if plural == names.JOBS:
                    job = _applied_job(job, kind, payload)
                else:
                    _apply_trial(trials, kind, payload)
            if job is None:
                raise ClientError(
                    ErrorReason.NOT_FOUND,
                    f"job {name} was deleted in namespace {jobs.namespace} while it was watched",
                    "submit it again if that was not meant",
                )
            fresh = jobs.snapshot_of(job, trials.values())
            if fresh.finished:
                # the trials' last changes may still be on their way: read them once, for the end
                fresh = jobs.snapshot_of(job, jobs.trial_objects(name))
            if not fresh.same_as(snapshot):
                snapshot = fresh
                yield snapshot
            if snapshot.finished:
                return
    finally:
        for watch in watches:
            watch.stop()


def _applied_job(job: dict[str, Any] | None, kind: str, payload: Any) -> dict[str, Any] | None:
    if kind == "RESET":
        return payload[0] if payload else None
    return None if kind == "DELETED" else payload


def _apply_trial(trials: dict[str, Any], kind: str, payload: Any) -> None:
    if kind == "RESET":
        trials.clear()
        trials.update({t["metadata"]["name"]: t for t in payload})
    elif kind == "DELETED":
        trials.pop(payload["metadata"]["name"], None)
    else:
        trials[payload["metadata"]["name"]] = payload


def wait_deleted(jobs: ClusterJobs, name: str, timeout: float = 120.0) -> None:
    """Until the job is gone (after foreground deletion: after its trials, Jobs and pods)."""
    selector = {"field_selector": f"metadata.name={name}"}
    listed = jobs.list_objects(names.JOBS, "list optimizationjobs", name, **selector)
    if not listed.get("items"):
        return
    changes: queue.Queue[Change] = queue.Queue()
    watch = ResourceWatch(jobs, names.JOBS, selector, listed["metadata"]["resourceVersion"], changes)
    watch.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                kind, _, payload = changes.get(timeout=max(deadline - time.monotonic(), 0.001))
            except queue.Empty:
                raise ClientError(
                    ErrorReason.TIMEOUT,
                    f"job {name} was still being deleted after {timeout:.0f}s",
                    f"`kubectl get optjob {name} -n {jobs.namespace} -o yaml` shows what holds it"
                    " (metadata.finalizers, or dependents the garbage collector has not removed yet)",
                ) from None
            if kind == "ERROR":
                raise payload
            if kind == "DELETED" or (kind == "RESET" and not payload):
                return
    finally:
        watch.stop()
