"""The progress endpoint under load: every running trial pod sends intermediate progress, each with
its pod's real projected-style token from the TokenRequest API, for a fixed time
(`bench/progress_load.py`, a process of its own at a lower priority)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client

from operator_measures import cpu_by_process, requests_by_kind
from optikube_operator.kube import names
from optikube_testcluster import ControlPlane

LOAD = Path(__file__).with_name("progress_load.py")
TOKEN_REQUESTS = 16  # side by side


def _token(core: Any, pod: Any) -> tuple[int, str] | None:
    request = {
        "spec": {
            "audiences": [names.TOKEN_AUDIENCE],
            "expirationSeconds": 3600,
            "boundObjectRef": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": pod.metadata.name,
                "uid": pod.metadata.uid,
            },
        }
    }
    try:
        token = core.create_namespaced_service_account_token(
            pod.spec.service_account_name, pod.metadata.namespace, request
        )
    except client.ApiException as error:
        if error.status != 404:
            raise
        return None  # the pod went away since it was listed: a token cannot be bound to it
    return int(pod.metadata.labels[names.TRIAL_LABEL]), str(token.status.token)


def _trial_status_writes(metrics_url: str) -> int:
    return requests_by_kind(metrics_url).get("PATCH optimizationtrials/status", 0)


def progress_throughput(
    plane: ControlPlane, url: str, metrics_url: str, operator: int, seconds: float, connections: int
) -> dict[str, Any]:
    """Every running trial pod of the cluster sends progress for ``seconds`` over ``connections``."""
    with plane.api_client() as api:
        core: Any = client.CoreV1Api(api)
        listed = core.list_pod_for_all_namespaces(
            label_selector=f"{names.MANAGED_BY}={names.MANAGER},{names.RUN_LABEL}={names.RunKind.TRIAL}"
        ).items
        trial_pods = Counter(str(p.status.phase) for p in listed)
        running = [p for p in listed if p.status.phase == "Running" and p.metadata.deletion_timestamp is None]
        with ThreadPoolExecutor(TOKEN_REQUESTS) as pool:
            pods = [pod for pod in pool.map(lambda p: _token(core, p), running) if pod is not None]
    request = {"url": url, "pods": pods, "seconds": seconds, "connections": connections}
    with subprocess.Popen(
        ["nice", "-n", "10", sys.executable, str(LOAD)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as load:
        assert load.stdin is not None and load.stdout is not None
        load.stdin.write(json.dumps(request))
        load.stdin.close()
        if load.stdout.readline().strip() != "warm":
            raise SystemExit("the progress load ended before its timed phase")
        writes_before, cpu_before = _trial_status_writes(metrics_url), cpu_by_process(plane, operator)
        result: dict[str, Any] = json.loads(load.stdout.read())
        writes = _trial_status_writes(metrics_url) - writes_before
        after = cpu_by_process(plane, operator)
        cpu = {name: round(seconds - cpu_before[name], 1) for name, seconds in after.items()}
        cpu["progress load"] = result.pop("cpuSeconds")
    result["trialPodsByPhase"] = dict(trial_pods)
    result["trialStatusWrites"] = writes
    result["messagesPerStatusWrite"] = round(result["accepted"] / writes, 1) if writes else None
    result["operatorCpuSeconds"] = cpu["operator"]
    # who had the two cores during the timed phase: where the time of a message goes
    result["cpuSecondsByProcess"] = cpu
    return result
