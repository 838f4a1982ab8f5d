"""What the cluster says about each run: its batch Job and pods, as kopf's watch events deliver them.

Kept in memory (kopf lists and watches these with a server-side label selector, so only the
operator's own objects arrive); the records of trials never depend on it alone, so a cache that
lags after a restart only delays an observation, it cannot lose or duplicate a run.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from optikube_operator.kube import names
from optikube_operator.kube.names import RunRef

RunId = tuple[str, str, RunRef]  # (namespace, job, run)


def run_id(obj: Mapping[str, Any]) -> RunId | None:
    meta = obj.get("metadata", {})
    owner = names.run_of(meta.get("labels") or {})
    if owner is None:
        return None
    return meta.get("namespace", ""), owner[0], owner[1]


_META = ("name", "namespace", "uid", "labels", "annotations", "creationTimestamp", "deletionTimestamp")


def controller_of(meta: Mapping[str, Any]) -> dict[str, Any] | None:
    return next((dict(o) for o in meta.get("ownerReferences") or [] if o.get("controller")), None)


def controlled_by_run(meta: Mapping[str, Any], job: str, run: RunRef) -> bool:
    """Whether the run's batch Job controls the object: labels can be copied onto any pod, the
    controller reference is set by the Job controller."""
    owner = controller_of(meta) or {}
    return (owner.get("apiVersion"), owner.get("kind"), owner.get("name")) == (
        "batch/v1",
        "Job",
        names.run_name(job, run),
    )


def _interned(value: Any) -> Any:
    return sys.intern(value) if isinstance(value, str) and len(value) <= 63 else value


def _meta(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    slim = {key: meta[key] for key in _META if key in meta}
    for labels in ("labels", "annotations"):
        if labels in slim:  # the same few keys and values on every run's objects: shared, not copied
            slim[labels] = {sys.intern(key): _interned(value) for key, value in slim[labels].items()}
    controller = controller_of(meta)
    if controller is not None:
        slim["ownerReferences"] = [
            {
                key: controller[key]
                for key in ("apiVersion", "kind", "name", "uid", "controller")
                if key in controller
            }
        ]
    return slim


def slim_job(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a batch Job the operator reads (a watch delivers far more: managedFields...)."""
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    return {
        "metadata": _meta(obj),
        "spec": {"suspend": spec.get("suspend"), "completions": spec.get("completions")},
        "status": {"conditions": status.get("conditions") or []},
    }


def slim_pod(obj: Mapping[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    return {
        "metadata": _meta(obj),
        "spec": {"serviceAccountName": spec.get("serviceAccountName"), "nodeName": spec.get("nodeName")},
        # of the containers, only the trainer's state is read (running since, exit code, message)
        "status": {
            "phase": status.get("phase"),
            "containerStatuses": [
                {"name": c["name"], "state": c.get("state") or {}}
                for c in status.get("containerStatuses") or []
                if c.get("name") == names.CONTAINER
            ],
        },
    }


@dataclass
class RunObjects:
    job: dict[str, Any] | None = None
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)


class RunCache:
    """Indexed by job and by pod name: a reconcile reads one job's runs and each progress message looks up
    its pod, so neither may cost a scan of every run of every job (hundreds of jobs live)."""

    def __init__(self) -> None:
        self._jobs: dict[tuple[str, str], dict[RunRef, RunObjects]] = {}
        self._pods: dict[tuple[str, str], RunId] = {}  # (namespace, pod name) -> its run

    def update(self, kind: str, event_type: str, obj: Mapping[str, Any]) -> RunId | None:
        """Fold one watch event of a batch Job or a Pod in; returns the run it concerns."""
        key = run_id(obj)
        if key is None:
            return None
        if kind != "Job" and not controlled_by_run(obj["metadata"], key[1], key[2]):
            return None  # a look-alike with the run's labels is not one of its pods
        runs = self._jobs.setdefault(key[:2], {})
        entry = runs.setdefault(key[2], RunObjects())
        deleted = event_type == "DELETED"
        if kind == "Job":
            if deleted:
                if entry.job is None or entry.job["metadata"].get("uid") == obj["metadata"].get("uid"):
                    entry.job = None
            else:
                entry.job = slim_job(obj)
        else:
            name = obj["metadata"]["name"]
            if deleted:
                entry.pods.pop(name, None)
                self._pods.pop((key[0], name), None)
            else:
                entry.pods[name] = slim_pod(obj)
                self._pods[(key[0], name)] = key
        if entry.job is None and not entry.pods:
            del runs[key[2]]
            if not runs:
                del self._jobs[key[:2]]
        return key

    def created(self, job: Mapping[str, Any]) -> None:
        """The operator's own create (or read) of a run's Job, folded in before its watch event
        arrives: the expectations of Kubernetes' own controllers. Under load the watch lags by
        more than the relaunch settle time, and every pass would otherwise create it again (409)."""
        self.update("Job", "ADDED", job)

    def deleted(self, key: RunId, when: str) -> None:
        """The operator deleted the run's Job: it counts as going until the watch says more, so
        the passes in between do not delete it again."""
        entry = self._jobs.get(key[:2], {}).get(key[2])
        if entry is not None and entry.job is not None:
            entry.job["metadata"] = {**entry.job["metadata"], "deletionTimestamp": when}

    def pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        key = self._pods.get((namespace, name))
        return None if key is None else self.get(key).pods.get(name)

    def get(self, key: RunId) -> RunObjects:
        return self._jobs.get(key[:2], {}).get(key[2], RunObjects())

    def of_job(self, namespace: str, job: str) -> dict[RunRef, RunObjects]:
        return dict(self._jobs.get((namespace, job), {}))

    def forget_job(self, namespace: str, job: str) -> None:
        for objects in self._jobs.pop((namespace, job), {}).values():
            for name in objects.pods:
                self._pods.pop((namespace, name), None)
