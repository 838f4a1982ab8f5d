"""Operator benchmark: how fast `kubectl apply` turns into trial Jobs, what the operator costs, and how
many reports per second its endpoint records.

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
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, watch
from rich.console import Console
from rich.table import Table

from optikube_operator.kube import names
from optikube_testcluster import ControlPlane, FakeNode
from optikube_testcluster.kubelet import terminated_status_patch
from optikube_testcluster.ports import free_ports

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
FIRST_WAVE = 2
TRIAL_CPU = 1  # what a quickstart trial pod requests
PODS_PER_NODE = 250
# what the operator reads and writes (watches excluded: one long request each, not a rate)
OPERATOR_RESOURCES = frozenset(
    {
        "optimizationjobs",
        "optimizationtrials",
        "jobs",
        "pods",
        "configmaps",
        "services",
        "events",
        "serviceaccounts",
        "tokenreviews",
        "persistentvolumeclaims",
    }
)


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


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def apiserver_requests(plane: ControlPlane) -> float:
    """Requests the apiserver has served on OPERATOR_RESOURCES (apiserver_request_total)."""
    text = plane.kubectl("get", "--raw", "/metrics").stdout
    total = 0.0
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(
            part.split("=", 1)
            for part in line[line.index("{") + 1 : line.rindex("}")].split(",")
            if "=" in part
        )
        resource = labels.get("resource", "").strip('"')
        if resource in OPERATOR_RESOURCES and labels.get("verb", "").strip('"') != "WATCH":
            total += float(line.rsplit(" ", 1)[1])
    return total


def largest_status(plane: ControlPlane, plural: str) -> int:
    """Bytes of the largest .status (as JSON) among every object of that kind."""
    with plane.api_client() as api:
        custom: Any = client.CustomObjectsApi(api)
        listed: dict[str, Any] = custom.list_cluster_custom_object("optikube.io", "v1alpha1", plural)
    return max((len(json.dumps(item.get("status") or {})) for item in listed["items"]), default=0)


def metric_total(url: str, name: str) -> float:
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    )


def requests_by_kind(url: str) -> dict[str, int]:
    """The operator's own apiserver request counter by verb and resource ("POST jobs": 400)."""
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        if line.startswith("optikube_apiserver_requests_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
            counts[f"{labels.get('verb')} {labels.get('resource')}"] += int(float(line.rsplit(" ", 1)[1]))
    return dict(counts.most_common())


class JobWatch(threading.Thread):
    """Records when each Job of a namespace is first seen."""

    def __init__(self, plane: ControlPlane, namespace: str) -> None:
        super().__init__(daemon=True)
        self.plane = plane
        self.namespace = namespace
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        with self.plane.api_client() as api:
            batch: Any = client.BatchV1Api(api)
            while not self.stop.is_set():
                stream = watch.Watch()
                for event in stream.stream(
                    batch.list_namespaced_job,
                    self.namespace,
                    label_selector=f"{names.MANAGED_BY}={names.MANAGER}",
                    timeout_seconds=5,
                    deserialize=False,
                ):
                    job = event["object"]
                    self.seen.setdefault(job["metadata"]["name"], time.monotonic())
                    if self.stop.is_set():
                        stream.stop()
                        break


class PreflightFinisher(threading.Thread):
    """Ends every running preflight pod of a namespace as a passing preflight does (exit 0), as the
    kubelets of its nodes would: side by side, each from the pod it watched (no read first)."""

    KUBELETS = 8

    def __init__(self, plane: ControlPlane, namespace: str) -> None:
        super().__init__(daemon=True)
        self.plane = plane
        self.namespace = namespace
        self.ended: dict[str, float] = {}  # job name -> when its preflight pod was ended
        self.stop = threading.Event()

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
            while not self.stop.is_set():
                stream = watch.Watch()
                for event in stream.stream(
                    core.list_namespaced_pod,
                    self.namespace,
                    label_selector=selector,
                    timeout_seconds=5,
                    # plain JSON: the client's model objects would cost cores the plane needs
                    deserialize=False,
                ):
                    pod = event["object"]
                    name = pod["metadata"]["name"]
                    if (pod.get("status") or {}).get("phase") == "Running" and name not in finished:
                        finished.add(name)
                        kubelets.submit(self._finish, core, pod)
                    if self.stop.is_set():
                        stream.stop()
                        break


def _summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50Seconds": None, "p95Seconds": None, "p99Seconds": None, "maxSeconds": None}
    return {
        "p50Seconds": round(statistics.median(values), 3),
        "p95Seconds": round(percentile(values, 0.95), 3),
        "p99Seconds": round(percentile(values, 0.99), 3),
        "maxSeconds": round(max(values), 3),
    }


def cpu_by_process(plane: ControlPlane, operator: int) -> dict[str, float]:
    """CPU seconds so far of each control-plane process, the operator and this benchmark (which
    plays the kubelet of the preflight pods and watches the Jobs): who shares the cores."""
    seconds = {component.name: cpu_seconds(component.pid) for component in plane.components}
    seconds["operator"] = cpu_seconds(operator)
    seconds["benchmark"] = cpu_seconds(os.getpid())
    return seconds


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
        **_summary(latencies),
        "allStartedWithinSeconds": round(everything, 3) if everything is not None else None,
        "operatorShare": _summary(operator_share),
        "preflightJobRoundTrip": _summary(preflight_round_trip),
        "namespace": namespace,
        "cpuSecondsByProcess": cpu,
    }


def report_throughput(
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 50, 500])
    parser.add_argument("--report-seconds", type=float, default=20.0)
    parser.add_argument("--report-threads", type=int, default=8)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument(
        "--verbose", action="store_true", help="the operator logs every request it sends, with its time"
    )
    args = parser.parse_args()
    console = Console()
    with ControlPlane(nodes=bench_nodes(sum(args.jobs))) as plane:
        plane.install_crds(ROOT / "crds")
        report, metrics = free_ports(2)
        log = RESULTS / "operator-bench.log"
        with log.open("w") as stream:
            operator = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "optikube_operator",
                    "operator",
                    f"--kubeconfig={plane.kubeconfig}",
                    f"--progress-bind=127.0.0.1:{report}",
                    f"--metrics-bind=127.0.0.1:{metrics}",
                    *(["--verbose"] if args.verbose else []),
                ],
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
            throughput = report_throughput(
                plane,
                scenarios[-1]["namespace"],
                f"http://127.0.0.1:{report}/v1/progress",
                args.report_seconds,
                args.report_threads,
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
        "reportEndpoint": throughput,
        "command": "python bench/operator_scale.py " + " ".join(sys.argv[1:]),
    }
    table = Table(title="optikube operator: apply -> first-wave trial Jobs (kwok nodes)")
    columns = ("jobs applied at once", "started", "p50 s", "p95 s", "p99 s", "max s")
    for column in (*columns, "operator's share p50 / p99 s", "preflight Job p50 / p99 s", "RSS after, MiB"):
        table.add_column(column, justify="right")
    for row in scenarios:
        share = row["operatorShare"]
        table.add_row(
            str(row["jobs"]),
            str(row["started"]),
            str(row["p50Seconds"]),
            str(row["p95Seconds"]),
            str(row["p99Seconds"]),
            str(row["maxSeconds"]),
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
