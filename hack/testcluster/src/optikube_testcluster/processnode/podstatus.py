"""A pod's status as a kubelet reports it: phase, conditions and container statuses. Pure
functions of what the agent observed about the pod's processes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from optikube_testcluster.processnode.nodes import timestamp

WAITING, RUNNING, TERMINATED = "waiting", "running", "terminated"


@dataclass
class ContainerState:
    name: str
    image: str
    state: str = WAITING
    reason: str = "ContainerCreating"
    message: str = ""
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    exit_code: int | None = None
    signal: int | None = None
    restart_count: int = 0
    ready: bool = False
    last_state: dict[str, Any] = field(default_factory=dict)

    def terminated(self) -> dict[str, Any]:
        assert self.exit_code is not None
        state: dict[str, Any] = {"exitCode": self.exit_code, "reason": self.reason}
        if self.signal:
            state["signal"] = self.signal
        if self.message:
            state["message"] = self.message
        if self.started_at:
            state["startedAt"] = timestamp(self.started_at)
        if self.finished_at:
            state["finishedAt"] = timestamp(self.finished_at)
        return state

    def ran_before(self) -> bool:
        return bool(self.last_state) or self.state != WAITING

    def status(self, pod_uid: str) -> dict[str, Any]:
        if self.state == RUNNING:
            assert self.started_at is not None
            state: dict[str, Any] = {"running": {"startedAt": timestamp(self.started_at)}}
        elif self.state == TERMINATED:
            state = {"terminated": self.terminated()}
        else:
            state = {
                "waiting": {"reason": self.reason, **({"message": self.message} if self.message else {})}
            }
        entry: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "ready": self.ready,
            "started": self.state == RUNNING,
            "restartCount": self.restart_count,
            "state": state,
            "lastState": self.last_state,
        }
        if self.ran_before():
            entry["containerID"] = f"process://{pod_uid}/{self.name}/{self.restart_count}"
        return entry


def finished(state: ContainerState) -> dict[str, Any]:
    """The container's terminated state as `lastState` once it restarts."""
    return {"terminated": state.terminated()}


def pod_phase(
    restart_policy: str, init: Sequence[ContainerState], containers: Sequence[ContainerState]
) -> str:
    """Pending until every init container succeeded and each container started once; Succeeded or
    Failed once every container has terminated for good (as restartPolicy decides)."""
    if any(c.state == TERMINATED and c.exit_code != 0 for c in init) and restart_policy == "Never":
        return "Failed"
    if not all(c.state == TERMINATED and c.exit_code == 0 for c in init):
        return "Pending"
    if any(not c.ran_before() for c in containers):
        return "Pending"
    if restart_policy == "Always" or any(c.state != TERMINATED for c in containers):
        return "Running"
    failed = any(c.exit_code != 0 for c in containers)
    if restart_policy == "OnFailure" and failed:
        return "Running"  # the failed ones are about to restart
    return "Failed" if failed else "Succeeded"


def _condition(
    kind: str,
    ok: bool,
    previous: dict[str, dict[str, Any]],
    now: dt.datetime,
    reason: str = "",
    message: str = "",
) -> dict[str, Any]:
    status = "True" if ok else "False"
    before = previous.get(kind)
    since = before["lastTransitionTime"] if before and before.get("status") == status else timestamp(now)
    condition: dict[str, Any] = {
        "type": kind,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": since,
    }
    if not ok and reason:
        condition["reason"] = reason
    if not ok and message:
        condition["message"] = message
    return condition


@dataclass(frozen=True)
class PodFacts:
    pod_ip: str | None
    host_ip: str
    start_time: dt.datetime
    sandbox_ready: bool


def pod_status(
    pod: dict[str, Any],
    facts: PodFacts,
    init: Sequence[ContainerState],
    containers: Sequence[ContainerState],
    now: dt.datetime,
) -> dict[str, Any]:
    spec = pod.get("spec", {})
    uid = pod["metadata"]["uid"]
    phase = pod_phase(spec.get("restartPolicy", "Always"), init, containers)
    existing = (pod.get("status") or {}).get("conditions") or []
    previous = {c["type"]: c for c in existing}
    initialized = all(c.state == TERMINATED and c.exit_code == 0 for c in init)
    unready = [c.name for c in containers if not c.ready]
    gates = [g["conditionType"] for g in spec.get("readinessGates") or []]
    gates_ok = all(previous.get(g, {}).get("status") == "True" for g in gates)
    terminal = phase in ("Succeeded", "Failed")
    reason = "PodCompleted" if terminal else "ContainersNotReady"
    message = "" if terminal else f"containers with unready status: [{' '.join(unready)}]"
    managed = ["PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready"]
    conditions = [c for c in existing if c["type"] not in managed]
    conditions += [
        _condition("PodReadyToStartContainers", facts.sandbox_ready and not terminal, previous, now),
        _condition(
            "Initialized",
            initialized,
            previous,
            now,
            "ContainersNotInitialized",
            ""
            if initialized
            else "containers with incomplete status: "
            f"[{' '.join(c.name for c in init if c.state != TERMINATED or c.exit_code != 0)}]",
        ),
        _condition("ContainersReady", not unready and not terminal, previous, now, reason, message),
        _condition("Ready", not unready and gates_ok and not terminal, previous, now, reason, message),
    ]
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": conditions,
        "hostIP": facts.host_ip,
        "hostIPs": [{"ip": facts.host_ip}],
        "startTime": timestamp(facts.start_time),
        "initContainerStatuses": [c.status(uid) for c in init] or None,
        "containerStatuses": [c.status(uid) for c in containers],
    }
    if facts.pod_ip:
        status["podIP"] = facts.pod_ip
        status["podIPs"] = [{"ip": facts.pod_ip}]
    return status


def termination_message(file_text: str, log_tail: str, policy: str, exit_code: int) -> str:
    """terminationMessagePolicy: the file's content (at most 4 KiB), or with FallbackToLogsOnError
    and a failed, silent container, the end of its log (80 lines, 2 KiB at most)."""
    message = file_text[:4096]
    if not message.strip() and policy == "FallbackToLogsOnError" and exit_code != 0:
        lines = log_tail.splitlines()[-80:]
        message = "\n".join(lines)[-2048:]
    return message
