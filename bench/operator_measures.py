"""What the operator benchmark reads off the running processes and servers: RSS and CPU time from
/proc, request counts from the apiserver's and the operator's /metrics, the largest status, and
latency percentiles."""

from __future__ import annotations

import json
import os
import re
import statistics
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from kubernetes import client

from optikube_testcluster import ControlPlane

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


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """utime + stime; with ``children``, also that of its children it waited for."""
    fields = [int(value) for value in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[11:15]]
    return sum(fields if children else fields[:2]) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent on anything but idling since boot (/proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


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


def latency_summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50Seconds": None, "p95Seconds": None, "p99Seconds": None, "maxSeconds": None}
    return {
        "p50Seconds": round(statistics.median(values), 3),
        "p95Seconds": round(percentile(values, 0.95), 3),
        "p99Seconds": round(percentile(values, 0.99), 3),
        "maxSeconds": round(max(values), 3),
    }


def cpu_by_process(plane: ControlPlane, operator: int, *, children: bool = False) -> dict[str, float]:
    """CPU seconds so far of each control-plane process, the operator and this benchmark (which
    plays the kubelet of the preflight pods and watches the Jobs): who shares the cores. With
    ``children``, the benchmark's includes its children's (kubectl, the progress load)."""
    seconds = {component.name: cpu_seconds(component.pid) for component in plane.components}
    seconds["operator"] = cpu_seconds(operator)
    seconds["benchmark"] = cpu_seconds(os.getpid(), children=children)
    return seconds
