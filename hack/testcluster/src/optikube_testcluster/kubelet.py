"""Acting as the kubelet: kwok takes pods to Running and stops there, so a test decides how a
pod ends (exit code, termination message) by writing the status a kubelet would write."""

from __future__ import annotations

import datetime as dt
from typing import Any


def terminated_status_patch(
    containers: dict[str, str],
    exit_code: int,
    message: str = "",
    now: dt.datetime | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """The status of a pod whose containers (name -> image) all exited with exit_code.

    message is each container's termination message, as the kubelet reads it from
    terminationMessagePath; reason overrides the kubelet's Completed/Error (e.g. OOMKilled).
    """
    if not containers:
        raise ValueError("containers must name at least one container")
    timestamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    terminated: dict[str, Any] = {
        "exitCode": exit_code,
        "reason": reason or ("Completed" if exit_code == 0 else "Error"),
        "startedAt": timestamp,
        "finishedAt": timestamp,
    }
    if message:
        terminated["message"] = message
    not_ready = {"status": "False", "lastTransitionTime": timestamp, "reason": "PodCompleted"}
    return {
        "status": {
            "phase": "Succeeded" if exit_code == 0 else "Failed",
            "conditions": [{"type": "Ready", **not_ready}, {"type": "ContainersReady", **not_ready}],
            "containerStatuses": [
                {
                    "name": name,
                    "ready": False,
                    "started": False,
                    "restartCount": 0,
                    "image": image,
                    "imageID": "",
                    "state": {"terminated": terminated},
                }
                for name, image in containers.items()
            ],
        }
    }


def finish_pod(
    api_client: Any,
    namespace: str,
    name: str,
    exit_code: int = 0,
    message: str = "",
    reason: str | None = None,
) -> Any:
    """Marks a pod Succeeded (exit_code 0) or Failed, as its kubelet would; returns the pod."""
    from kubernetes import client

    core: Any = client.CoreV1Api(api_client)
    pod = core.read_namespaced_pod(name, namespace)
    containers = {container.name: container.image for container in pod.spec.containers}
    patch = terminated_status_patch(containers, exit_code, message, reason=reason)
    return core.patch_namespaced_pod_status(name, namespace, patch)
