"""Operator benchmark: how fast `kubectl apply` turns into trial Jobs, what the operator costs, and how
many progress messages per second its endpoint takes.

A fresh control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok nodes) on this
machine, the operator as a subprocess (`python -m optikube_operator operator`), and waves of
OptimizationJobs applied at once (each tuning with 2 parallel trials; by default 1, 50, 200, 249
and 250, so that 500 and then 750 jobs are live): the time from a job's create call to the moment
both of its first-wave trial Jobs exist (a watch sees them), p50/p95/p99/max; each job's preflight
comes first, and its pod is ended (passing) as soon as a watch sees it running, since kwok runs
nothing (`operator_waves`). That time is split into the operator's own share (create -> preflight
Job, and preflight pod ended -> both trial Jobs) and the preflight's round trip through the
control plane (Job controller, scheduler, kwok) in between. After each wave the benchmark waits
until its trial pods run (the kwok nodes have room for every one) and the operator is quiet, then
reads the operator's RSS. Then, with every job live: the operator's CPU time, the requests it sent
(its own count, by verb and resource) and the requests the apiserver served on the resources the
operator works with (everyone's: an upper bound), per job and minute while idle, the largest
status of an OptimizationJob and of an OptimizationTrial (etcd refuses objects over 1.5 MiB; the
target is 64 KiB), and the progress endpoint's throughput with every running trial pod sending
(`operator_progress`).

    .venv/bin/python bench/operator_scale.py                 # the full run (about 15 min on 2 cores)
    .venv/bin/python bench/operator_scale.py --jobs 1 50     # a quick look
    .venv/bin/python bench/operator_scale.py --jobs 1 200 --memory-probe   # where the memory goes

`--memory-probe` runs the operator under tracemalloc (`bench/memory_probe`) and appends what it
holds after each wave and when idle to `bench/results/operator-memory.txt`; its timings are not
the benchmark's, so it writes no `operator.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from operator_measures import (
    apiserver_requests,
    cpu_by_process,
    cpu_seconds,
    largest_status,
    machine_busy_seconds,
    metric_total,
    requests_by_kind,
    rss_bytes,
)
from operator_progress import progress_throughput  # bench/, beside this script
from operator_waves import FIRST_WAVE, RESULTS, ROOT, bench_nodes, settle, start_latency
from optikube_operator.kube import names
from optikube_testcluster import ControlPlane
from optikube_testcluster.operator_command import operator_argv
from optikube_testcluster.ports import free_ports

PROBE = ROOT / "bench" / "memory_probe"
# the targets (docs/benchmarks.md, "Operator at scale"): key -> (bound, at most?)
TARGETS = {
    "oneJobP50Seconds": (1.0, True),
    "jobs200AllStartedSeconds": (60.0, True),
    "rssMiBAt500Jobs": (150 * 10**6 / 2**20, True),  # 150 MB
    "reportsPerSecondAt1500Pods": (500.0, False),
    "idleCpuPercentAt750Jobs": (5.0, True),
}


def _scenario(scenarios: list[dict[str, Any]], key: str, value: int) -> dict[str, Any] | None:
    return next((row for row in scenarios if row[key] == value), None)


def headline(
    scenarios: list[dict[str, Any]], live: int, idle_cpu: float, progress: dict[str, Any]
) -> dict[str, Any]:
    """The five figures the targets are about, each None where this run did not measure it."""
    one, burst, at500 = (_scenario(scenarios, "jobs", 1), _scenario(scenarios, "jobs", 200),
                         _scenario(scenarios, "liveJobs", 500))  # fmt: skip
    return {
        "oneJobP50Seconds": one["p50Seconds"] if one else None,
        "jobs200AllStartedSeconds": burst["allStartedWithinSeconds"] if burst else None,
        "rssMiBAt500Jobs": round(at500["operatorRssBytesAfter"] / 2**20, 1) if at500 else None,
        "reportsPerSecondAt1500Pods": progress["acceptedPerSecond"] if progress["pods"] >= 1500 else None,
        "idleCpuPercentAt750Jobs": idle_cpu if live >= 750 else None,
    }


class Operator:
    """The operator subprocess, and the memory probe's reports when it runs under one."""

    def __init__(self, plane: ControlPlane, *, verbose: bool, probe: Path | None) -> None:
        self.progress_port, metrics = free_ports(2)
        self.metrics_url = f"http://127.0.0.1:{metrics}/metrics"
        self.progress_url = f"http://127.0.0.1:{self.progress_port}/v1/progress"
        self.probe = probe
        env = dict(os.environ)
        if probe is not None:
            probe.write_text("")
            env.update(PYTHONPATH=str(PROBE), OPTIKUBE_MEMORY_PROBE=str(probe))
        flags = ["--verbose"] if verbose else []
        with (RESULTS / "operator-bench.log").open("w") as stream:
            self.process = subprocess.Popen(
                operator_argv(plane.kubeconfig, self.progress_port, metrics, *flags),
                stdout=stream,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        self.pid = self.process.pid
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                metric_total(self.metrics_url, "optikube_reconciles_total")
                return
            except OSError:
                time.sleep(0.5)

    def requests(self) -> float:
        return metric_total(self.metrics_url, "optikube_apiserver_requests_total")

    def memory_report(self, label: str) -> None:
        if self.probe is not None:
            with self.probe.open("a") as out:
                out.write(f"##### {label}\n")
            os.kill(self.pid, signal.SIGUSR2)
            time.sleep(5)  # tracing every object takes a while

    def stop(self) -> None:
        os.killpg(self.pid, signal.SIGTERM)
        self.process.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 50, 200, 249, 250])
    parser.add_argument("--progress-seconds", type=float, default=20.0)
    parser.add_argument("--progress-connections", type=int, default=64)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--memory-probe", action="store_true", help="the operator under tracemalloc")
    parser.add_argument(
        "--verbose", action="store_true", help="the operator logs every request it sends, with its time"
    )
    args = parser.parse_args()
    console = Console(width=150)
    load_before = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    busy_before = machine_busy_seconds()
    with ControlPlane(nodes=bench_nodes(sum(args.jobs))) as plane:
        plane.install_crds(ROOT / "crds")
        probe = RESULTS / "operator-memory.txt" if args.memory_probe else None
        operator = Operator(plane, verbose=args.verbose, probe=probe)
        ours_before = sum(cpu_by_process(plane, operator.pid, children=True).values())
        try:
            operator.memory_report("started")
            cpu_before = cpu_seconds(operator.pid)
            scenarios = []
            live = 0
            for count in args.jobs:
                row = start_latency(plane, count, console, operator.pid)
                live += count
                row["liveJobs"] = live
                row["settledAfterSeconds"] = round(settle(plane, live * FIRST_WAVE, operator.requests), 1)
                row["operatorRssBytesAfter"] = rss_bytes(operator.pid)
                row["loadAverage"] = os.getloadavg()[0]
                scenarios.append(row)
                operator.memory_report(f"{live} jobs live")
            cpu_start = cpu_seconds(operator.pid) - cpu_before
            # one scrape: the total and its breakdown are the same moment's
            burst_by_kind = requests_by_kind(operator.metrics_url)
            burst = sum(burst_by_kind.values())
            served = apiserver_requests(plane)
            cpu_idle = cpu_seconds(operator.pid)
            # idle: every job waits on its running trials
            time.sleep(args.idle_seconds)
            idle = operator.requests() - burst
            served_idle = apiserver_requests(plane) - served
            cpu_idle = cpu_seconds(operator.pid) - cpu_idle
            rss = rss_bytes(operator.pid)
            operator.memory_report("idle")
            statuses = {plural: largest_status(plane, plural) for plural in (names.JOBS, names.TRIALS)}
            throughput = progress_throughput(
                plane,
                operator.progress_url,
                operator.metrics_url,
                operator.pid,
                args.progress_seconds,
                args.progress_connections,
            )
            operator.memory_report("after the progress load")
            ours = sum(cpu_by_process(plane, operator.pid, children=True).values()) - ours_before
        finally:
            operator.stop()
    others = max(machine_busy_seconds() - busy_before - ours, 0.0)
    idle_cpu = round(100 * cpu_idle / args.idle_seconds, 1)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        **headline(scenarios, live, idle_cpu, throughput),
        "targets": {
            key: {"atMost" if at_most else "atLeast": bound} for key, (bound, at_most) in TARGETS.items()
        },
        "loadAverageBefore": [round(value, 2) for value in load_before],
        # CPU seconds of the whole machine the run's own processes did not use: others' work
        "othersCpuSeconds": round(others, 1),
        "scenarios": scenarios,
        "operatorRssBytes": rss,
        "operatorCpuSecondsToStartAll": round(cpu_start, 1),
        "operatorIdleCpuPercent": idle_cpu,
        "liveJobs": live,
        "apiserverRequestsPerStartedJob": round(burst / live, 1),
        "apiserverRequestsToStartAll": burst_by_kind,
        "idleApiserverRequestsPerJobMinute": round(idle / live / (args.idle_seconds / 60), 3),
        "idleServedRequestsPerJobMinute": round(served_idle / live / (args.idle_seconds / 60), 3),
        "largestStatusBytes": statuses,
        "progressEndpoint": throughput,
        "command": "python bench/operator_scale.py " + " ".join(sys.argv[1:]),
    }
    print_tables(console, result)
    if args.memory_probe:
        console.print(
            f"memory probe: {probe}; no operator.json (the probe's timings are not the benchmark's)"
        )
    else:
        (RESULTS / "operator.json").write_text(json.dumps(result, indent=2) + "\n")


def print_tables(console: Console, result: dict[str, Any]) -> None:
    table = Table(title="optikube operator: apply -> first-wave trial Jobs (kwok nodes)")
    # the columns that show a scenario's value as it is, by key
    shown_as_is = {
        "jobs applied at once": "jobs",
        "live": "liveJobs",
        "started": "started",
        "p50 s": "p50Seconds",
        "p95 s": "p95Seconds",
        "p99 s": "p99Seconds",
        "max s": "maxSeconds",
    }
    derived = ("operator's share p50 / p99 s", "preflight Job p50 / p99 s", "RSS after, MiB")
    for column in (*shown_as_is, *derived):
        table.add_column(column, justify="right")
    for row in result["scenarios"]:
        share, preflight = row["operatorShare"], row["preflightJobRoundTrip"]
        table.add_row(
            *(str(row[key]) for key in shown_as_is.values()),
            f"{share['p50Seconds']} / {share['p99Seconds']}",
            f"{preflight['p50Seconds']} / {preflight['p99Seconds']}",
            f"{row['operatorRssBytesAfter'] / 2**20:.1f}",
        )
    console.print(table)
    targets = Table(title="against the targets")
    for column in ("key", "measured", "target"):
        targets.add_column(column, justify="right")
    for key, (bound, at_most) in TARGETS.items():
        targets.add_row(key, str(result[key]), f"{'<=' if at_most else '>='} {bound:.1f}")
    console.print(targets)
    progress = result["progressEndpoint"]
    console.print(
        f"operator RSS {result['operatorRssBytes'] / 2**20:.1f} MiB with {result['liveJobs']} jobs live, "
        f"{result['operatorCpuSecondsToStartAll']} CPU s to start them, {result['operatorIdleCpuPercent']} % "
        f"CPU idle; {result['apiserverRequestsPerStartedJob']} apiserver requests per started job, "
        f"{result['idleApiserverRequestsPerJobMinute']} per job per minute idle "
        f"({result['idleServedRequestsPerJobMinute']} served on its resources, by anyone); "
        f"largest status {result['largestStatusBytes']} bytes; progress endpoint "
        f"{progress['acceptedPerSecond']} messages/s from {progress['pods']} pods over "
        f"{progress['connections']} connections ({progress['messagesPerStatusWrite']} per status write); "
        f"load average before {result['loadAverageBefore']}, others' CPU {result['othersCpuSeconds']} s"
    )


if __name__ == "__main__":
    main()
