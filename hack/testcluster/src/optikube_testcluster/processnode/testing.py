"""Helpers for tests that run pods on a process node: a pod manifest that lands there, waiting
for a pod's phase, and finding a pod's processes on the host."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from optikube_testcluster.processnode.spec import PROCESS_NODE_SELECTOR, PROCESS_NODE_TOLERATION


def on_process_node(pod_spec: dict[str, Any]) -> dict[str, Any]:
    """pod_spec with the process node's label selected and its taint tolerated."""
    spec = dict(pod_spec)
    spec["nodeSelector"] = {**(spec.get("nodeSelector") or {}), **PROCESS_NODE_SELECTOR}
    spec["tolerations"] = [*(spec.get("tolerations") or []), dict(PROCESS_NODE_TOLERATION)]
    return spec


def process_pod(name: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    """A pod for the process node: restartPolicy Never unless given, images ignored."""
    labels = spec.pop("labels", {})
    containers = [{"image": "process-node", **c} for c in containers]
    if "initContainers" in spec:
        spec["initContainers"] = [{"image": "process-node", **c} for c in spec["initContainers"]]
    body = {"restartPolicy": "Never", **spec, "containers": containers}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": on_process_node(body),
    }


def wait_for_pod(
    core: Any,
    namespace: str,
    name: str,
    phases: tuple[str, ...] = ("Succeeded", "Failed"),
    timeout: float = 60.0,
) -> Any:
    """Polls until the pod's phase is one of phases; returns the pod (a kubernetes client model)."""
    deadline = time.monotonic() + timeout
    while True:
        pod = core.read_namespaced_pod(name, namespace)
        if pod.status.phase in phases:
            return pod
        if time.monotonic() > deadline:
            raise AssertionError(
                f"pod {namespace}/{name} is {pod.status.phase} after {timeout}s, not {phases}"
            )
        time.sleep(0.2)


def processes_with(marker: str) -> list[int]:
    """The pids of host processes whose command line contains marker."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in command:
            pids.append(int(entry.name))
    return pids
