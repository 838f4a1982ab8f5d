"""The progress endpoint under load: threads post intermediate progress for running trials, each
with its pod's real projected-style token from the TokenRequest API, for a fixed time."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import client

from optikube_operator.kube import names
from optikube_testcluster import ControlPlane


def progress_throughput(
    plane: ControlPlane, namespace: str, url: str, seconds: float, threads: int
) -> dict[str, Any]:
    with plane.api_client() as api:
        core: Any = client.CoreV1Api(api)
        pods: list[Any] = []
        deadline = time.monotonic() + 120
        while not pods:
            listed = core.list_namespaced_pod(namespace).items
            pods = [
                p
                for p in listed
                if p.status.phase == "Running"
                and (p.metadata.labels or {}).get(names.RUN_LABEL) == names.RunKind.TRIAL
            ][:threads]
            if not pods and time.monotonic() > deadline:
                phases = Counter(str(p.status.phase) for p in listed)
                raise SystemExit(f"no running trial pod to report for after 120 s; pods by phase: {phases}")
            if not pods:
                time.sleep(2)
        trial_pods = Counter(
            str(p.status.phase)
            for p in core.list_pod_for_all_namespaces(
                label_selector=f"{names.RUN_LABEL}={names.RunKind.TRIAL}"
            ).items
        )
        tokens = []
        for pod in pods:
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
                    pod.spec.service_account_name, namespace, request
                )
            except client.ApiException as error:
                if error.status != 404:
                    raise
                continue  # the pod went away since it was listed: a token cannot be bound to it
            tokens.append((int(pod.metadata.labels[names.TRIAL_LABEL]), str(token.status.token)))
    counts = [0] * len(tokens)
    refused: dict[int, int] = {}
    stop = time.monotonic() + seconds

    def post(index: int) -> None:
        trial, token = tokens[index]
        step = 0
        while time.monotonic() < stop:
            event = {
                "type": "intermediate",
                "trial": trial,
                "epoch": step,
                "step": step,  # steps only go forward: a replayed step is refused (409)
                "values": {"accuracy": 0.5},
            }
            request = urllib.request.Request(
                url,
                data=json.dumps(event).encode(),
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    response.read()
                counts[index] += 1
            except urllib.error.HTTPError as error:
                refused[error.code] = refused.get(error.code, 0) + 1
            step += 1

    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(tokens)) as pool:
        list(pool.map(post, range(len(tokens))))
    elapsed = time.monotonic() - began
    return {
        "threads": len(tokens),
        "events": sum(counts),
        "eventsPerSecond": round(sum(counts) / elapsed, 1),
        "refused": {str(code): n for code, n in sorted(refused.items())},
        "trialPodsByPhase": dict(trial_pods),
    }
