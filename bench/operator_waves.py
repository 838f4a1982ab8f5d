"""The waves of `bench/operator_scale.py`: OptimizationJobs applied at once in a namespace of their
own, the watches that time them (each job's Jobs as they appear; its preflight pod, ended as a
passing preflight as soon as it runs, since kwok runs nothing) and the wait for a wave to settle."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, watch
from rich.console import Console

from operator_measures import cpu_by_process, latency_summary
from optikube_operator.kube import names
from optikube_testcluster import ControlPlane, FakeNode
from optikube_testcluster.kubelet import terminated_status_patch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
FIRST_WAVE = 2
TRIAL_CPU = 1  # what a quickstart trial pod requests
PODS_PER_NODE = 250


def job_manifest(name: str, namespace: str) -> dict[str, Any]:
    job: dict[str, Any] = next(yaml.safe_load_all((ROOT / "examples" / "quickstart.yaml").read_text()))
    job["metadata"] = {"name": name, "namespace": namespace}
    job["spec"].pop("artifacts", None)  # kwok's pods mount nothing
    # kwok's nodes take any number of these; the scheduler is not what is measured
    job["spec"]["resources"]["requests"] = {"cpu": "10m", "memory": "16Mi"}
    job["spec"]["tuning"]["parallelTrials"] = FIRST_WAVE
    # kwok's trial pods run until deleted: the quickstart's 5 minutes would stop the first jobs'
    # trials (and start their next ones) while later scenarios are being measured
    job["spec"]["tuning"]["trialTimeout"] = "2h"
    return job


def bench_nodes(jobs: int) -> list[FakeNode]:
    """kwok CPU nodes with room for every first-wave trial pod (and the preflight pods)."""
    pods = jobs * (FIRST_WAVE + 1)
    count = max(2, -(-pods // PODS_PER_NODE))
    cpu = str(PODS_PER_NODE * TRIAL_CPU)
    return [FakeNode(f"kwok-bench-{i}", cpu=cpu, memory="4Ti", pods=PODS_PER_NODE) for i in range(count)]


class NamespaceWatch(threading.Thread):
    """A thread that watches one kind of object of a namespace until stopped."""

    def __init__(self, plane: ControlPlane, namespace: str) -> None:
        super().__init__(daemon=True)
        self.plane = plane
        self.namespace = namespace
        self.stop = threading.Event()

    def objects(self, list_objects: Callable[..., Any], selector: str) -> Iterator[dict[str, Any]]:
        """Each object as a watch event delivers it, watching again when a watch times out."""
        while not self.stop.is_set():
            stream = watch.Watch()
            for event in stream.stream(
                list_objects,
                self.namespace,
                label_selector=selector,
                timeout_seconds=5,
                # plain JSON: the client's model objects would cost cores the plane needs
                deserialize=False,
            ):
                yield event["object"]
                if self.stop.is_set():
                    stream.stop()
                    break


class JobWatch(NamespaceWatch):
    """Records when each Job of a namespace is first seen."""

    def __init__(self, plane: ControlPlane, namespace: str) -> None:
        super().__init__(plane, namespace)
        self.seen: dict[str, float] = {}

    def run(self) -> None:
        with self.plane.api_client() as api:
            batch: Any = client.BatchV1Api(api)
            for job in self.objects(batch.list_namespaced_job, f"{names.MANAGED_BY}={names.MANAGER}"):
                self.seen.setdefault(job["metadata"]["name"], time.monotonic())


class PreflightFinisher(NamespaceWatch):
    """Ends every running preflight pod of a namespace as a passing preflight does (exit 0), as the
    kubelets of its nodes would: side by side, each from the pod it watched (no read first)."""

    KUBELETS = 8

    def __init__(self, plane: ControlPlane, namespace: str) -> None:
        super().__init__(plane, namespace)
        self.ended: dict[str, float] = {}  # job name -> when its preflight pod was ended

    def _finish(self, core: Any, pod: dict[str, Any]) -> None:
        containers = {c["name"]: c["image"] for c in pod["spec"]["containers"]}
        patch = terminated_status_patch(containers, 0, "")
        try:
            core.patch_namespaced_pod_status(
                pod["metadata"]["name"], self.namespace, patch, _preload_content=False
            )
        except client.ApiException as error:
            if error.status != 404:
                raise
        self.ended.setdefault(pod["metadata"]["labels"][names.JOB_LABEL], time.monotonic())

    def run(self) -> None:
        selector = f"{names.MANAGED_BY}={names.MANAGER},{names.RUN_LABEL}={names.RunKind.PREFLIGHT}"
        finished: set[str] = set()
        with self.plane.api_client() as api, ThreadPoolExecutor(self.KUBELETS) as kubelets:
            core: Any = client.CoreV1Api(api)
            for pod in self.objects(core.list_namespaced_pod, selector):
                name = pod["metadata"]["name"]
                if (pod.get("status") or {}).get("phase") == "Running" and name not in finished:
                    finished.add(name)
                    kubelets.submit(self._finish, core, pod)


def start_latency(plane: ControlPlane, count: int, console: Console, operator: int) -> dict[str, Any]:
    namespace = plane.create_namespace(f"bench-{count}")
    cpu_before = cpu_by_process(plane, operator)
    jobs = [job_manifest(f"job-{i}", namespace) for i in range(count)]
    watcher = JobWatch(plane, namespace)
    watcher.start()
    preflights = PreflightFinisher(plane, namespace)
    preflights.start()
    time.sleep(1.0)  # the watch is established
    applied: dict[str, float] = {}

    def create(job: dict[str, Any]) -> None:
        with plane.api_client() as api:
            applied[job["metadata"]["name"]] = time.monotonic()
            client.CustomObjectsApi(api).create_namespaced_custom_object(
                "optikube.io", "v1alpha1", namespace, "optimizationjobs", job
            )

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=min(count, 16)) as pool:
        list(pool.map(create, jobs))
    deadline = started + 300 + count  # the control plane's Job controller paces large bursts

    def first_wave(name: str) -> float | None:
        times = [watcher.seen.get(names.run_name(name, names.trial_run(k))) for k in range(FIRST_WAVE)]
        return max(times) if all(t is not None for t in times) else None  # type: ignore[type-var]

    while time.monotonic() < deadline and any(first_wave(n) is None for n in applied):
        time.sleep(0.2)
    watcher.stop.set()
    preflights.stop.set()
    latencies = [wave - applied[name] for name in applied if (wave := first_wave(name)) is not None]
    everything = max(latencies) if len(latencies) == count else None
    # The operator's share: create -> preflight Job, then preflight pod ended -> both trial Jobs;
    # between them the control plane runs the preflight (Job controller, scheduler, kwok) and
    # the preflight's own work (here: none, its pod is ended as soon as it runs).
    operator_share: list[float] = []
    preflight_round_trip: list[float] = []
    for name in applied:
        created = watcher.seen.get(names.run_name(name, names.PREFLIGHT))
        ended = preflights.ended.get(name)
        wave = first_wave(name)
        if created is not None and ended is not None and wave is not None:
            operator_share.append((created - applied[name]) + (wave - ended))
            preflight_round_trip.append(ended - created)
    cpu = {
        name: round(seconds - cpu_before[name], 1)
        for name, seconds in cpu_by_process(plane, operator).items()
    }
    console.log(f"{count} jobs: {len(latencies)}/{count} started, all within {everything}; CPU s {cpu}")
    return {
        "jobs": count,
        "started": len(latencies),
        **latency_summary(latencies),
        "allStartedWithinSeconds": round(everything, 3) if everything is not None else None,
        "operatorShare": latency_summary(operator_share),
        "preflightJobRoundTrip": latency_summary(preflight_round_trip),
        "namespace": namespace,
        "cpuSecondsByProcess": cpu,
    }


def running_trial_pods(plane: ControlPlane, namespace: str | None = None) -> int:
    selector = f"{names.MANAGED_BY}={names.MANAGER},{names.RUN_LABEL}={names.RunKind.TRIAL}"
    with plane.api_client() as api:
        core: Any = client.CoreV1Api(api)
        if namespace is None:
            listed = core.list_pod_for_all_namespaces(label_selector=selector, _preload_content=False)
        else:
            listed = core.list_namespaced_pod(namespace, label_selector=selector, _preload_content=False)
    items = json.loads(listed.data)["items"]
    return sum(1 for pod in items if (pod.get("status") or {}).get("phase") == "Running")


def settle(
    plane: ControlPlane, expected_pods: int, requests: Callable[[], float], timeout: float = 180
) -> float:
    """Wait until ``expected_pods`` trial pods run and the operator has been quiet for 5 s (at most
    one request to the apiserver a second: what it does with every pod running and recorded);
    returns the seconds waited."""
    began = time.monotonic()
    while time.monotonic() - began < timeout and running_trial_pods(plane) < expected_pods:
        time.sleep(2)
    before = requests()
    while time.monotonic() - began < timeout:
        time.sleep(5)
        now = requests()
        if now - before <= 5:
            break
        before = now
    return time.monotonic() - began
