"""Operator benchmark: how fast `kubectl apply` turns into trial Jobs, what the operator costs, and how
many progress messages per second its endpoint records.

A fresh control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok nodes) on this
machine, the operator as a subprocess (`python -m optikube_operator operator`), and for 1, 50 and
500 OptimizationJobs applied at once (each tuning with 2 parallel trials): the time from a job's
create call to the moment both of its first-wave trial Jobs exist (a watch sees them),
p50/p95/p99/max; each job's preflight comes first, and its pod is ended (passing) as soon as a
watch sees it running, since kwok runs nothing. That time is split into the operator's own share
(create -> preflight Job, and preflight pod ended -> both trial Jobs) and the preflight's round
trip through the control plane (Job controller, scheduler, kwok) in between. The kwok nodes
have room for every trial pod, so that each job idles with its trials running. The operator's RSS
after each wave; then, with every job live: the operator's CPU time, the requests it sent (its own
count, by verb and resource) and the requests the apiserver served on the resources the operator
works with (the apiserver's count, everyone's: an upper bound), per job and minute while idle, the
largest status of an OptimizationJob and of an OptimizationTrial (etcd refuses objects over 1.5
MiB; the target is 64 KiB), and the progress endpoint's throughput: threads post intermediate events
for running trials with their pods' real tokens for a fixed time.

    .venv/bin/python bench/operator_scale.py                # 1, 50, 500 jobs (minutes on 2 cores)
    .venv/bin/python bench/operator_scale.py --jobs 1 20    # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, watch
from rich.console import Console
from rich.table import Table

from operator_measures import (
    apiserver_requests,
    cpu_by_process,
    cpu_seconds,
    largest_status,
    latency_summary,
    metric_total,
    requests_by_kind,
    rss_bytes,
)
from operator_progress import progress_throughput  # bench/, beside this script
from optikube_operator.kube import names
from optikube_testcluster import ControlPlane, FakeNode
from optikube_testcluster.kubelet import terminated_status_patch
from optikube_testcluster.operator_command import operator_argv
from optikube_testcluster.ports import free_ports

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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 50, 500])
    parser.add_argument("--progress-seconds", type=float, default=20.0)
    parser.add_argument("--progress-threads", type=int, default=8)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument(
        "--verbose", action="store_true", help="the operator logs every request it sends, with its time"
    )
    args = parser.parse_args()
    console = Console()
    with ControlPlane(nodes=bench_nodes(sum(args.jobs))) as plane:
        plane.install_crds(ROOT / "crds")
        progress_port, metrics = free_ports(2)
        log = RESULTS / "operator-bench.log"
        verbose = ["--verbose"] if args.verbose else []
        with log.open("w") as stream:
            operator = subprocess.Popen(
                operator_argv(plane.kubeconfig, progress_port, metrics, *verbose),
                stdout=stream,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        metrics_url = f"http://127.0.0.1:{metrics}/metrics"
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    metric_total(metrics_url, "optikube_reconciles_total")
                    break
                except OSError:
                    time.sleep(0.5)
            cpu_before = cpu_seconds(operator.pid)
            scenarios = []
            for count in args.jobs:
                scenarios.append(start_latency(plane, count, console, operator.pid))
                scenarios[-1]["operatorRssBytesAfter"] = rss_bytes(operator.pid)
            live = sum(args.jobs)
            time.sleep(10.0)
            cpu_start = cpu_seconds(operator.pid) - cpu_before
            # one scrape: the total and its breakdown are the same moment's
            burst_by_kind = requests_by_kind(metrics_url)
            burst = sum(burst_by_kind.values())
            served = apiserver_requests(plane)
            cpu_idle = cpu_seconds(operator.pid)
            # idle: every job waits on its running trials; only the resync runs
            time.sleep(args.idle_seconds)
            idle = metric_total(metrics_url, "optikube_apiserver_requests_total") - burst
            served_idle = apiserver_requests(plane) - served
            cpu_idle = cpu_seconds(operator.pid) - cpu_idle
            rss = rss_bytes(operator.pid)
            statuses = {plural: largest_status(plane, plural) for plural in (names.JOBS, names.TRIALS)}
            throughput = progress_throughput(
                plane,
                scenarios[-1]["namespace"],
                f"http://127.0.0.1:{progress_port}/v1/progress",
                args.progress_seconds,
                args.progress_threads,
            )
        finally:
            os.killpg(operator.pid, signal.SIGTERM)
            operator.wait(60)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "scenarios": scenarios,
        "operatorRssBytes": rss,
        "operatorCpuSecondsToStartAll": round(cpu_start, 1),
        "operatorIdleCpuPercent": round(100 * cpu_idle / args.idle_seconds, 1),
        "liveJobs": live,
        "apiserverRequestsPerStartedJob": round(burst / live, 1),
        "apiserverRequestsToStartAll": burst_by_kind,
        "idleApiserverRequestsPerJobMinute": round(idle / live / (args.idle_seconds / 60), 3),
        "idleServedRequestsPerJobMinute": round(served_idle / live / (args.idle_seconds / 60), 3),
        "largestStatusBytes": statuses,
        "progressEndpoint": throughput,
        "command": "python bench/operator_scale.py " + " ".join(sys.argv[1:]),
    }
    table = Table(title="optikube operator: apply -> first-wave trial Jobs (kwok nodes)")
    # the columns that show a scenario's value as it is, by key
    shown_as_is = {
        "jobs applied at once": "jobs",
        "started": "started",
        "p50 s": "p50Seconds",
        "p95 s": "p95Seconds",
        "p99 s": "p99Seconds",
        "max s": "maxSeconds",
    }
    derived = ("operator's share p50 / p99 s", "preflight Job p50 / p99 s", "RSS after, MiB")
    for column in (*shown_as_is, *derived):
        table.add_column(column, justify="right")
    for row in scenarios:
        share = row["operatorShare"]
        table.add_row(
            *(str(row[key]) for key in shown_as_is.values()),
            f"{share['p50Seconds']} / {share['p99Seconds']}",
            f"{row['preflightJobRoundTrip']['p50Seconds']} / {row['preflightJobRoundTrip']['p99Seconds']}",
            f"{row['operatorRssBytesAfter'] / 2**20:.1f}",
        )
    console.print(table)
    console.print(
        f"operator RSS {rss / 2**20:.1f} MiB with {live} jobs live, {cpu_start:.1f} CPU s to start them, "
        f"{result['operatorIdleCpuPercent']} % CPU idle; "
        f"{result['apiserverRequestsPerStartedJob']} apiserver requests per started job, "
        f"{result['idleApiserverRequestsPerJobMinute']} per job per minute idle "
        f"({result['idleServedRequestsPerJobMinute']} served on its resources, by anyone); "
        f"largest status {statuses} bytes; "
        f"progress endpoint {throughput['eventsPerSecond']} events/s ({throughput['threads']} clients; "
        f"trial pods by phase {throughput['trialPodsByPhase']})"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "operator.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
