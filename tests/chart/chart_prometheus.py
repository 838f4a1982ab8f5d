"""A real Prometheus (Debian's /usr/bin/prometheus) as a pod on the process node, scraping what the
chart's ServiceMonitor and PodMonitor select.

There is no prometheus-operator here, so the rendered monitors are turned into the scrape configs
the prometheus-operator generates for them (keep rules from the selectors and the port name, `job`
from `jobLabel`, `honor_labels`, the namespace/pod/service/container target labels, the monitors'
relabelings). Debian builds Prometheus without Kubernetes discovery, so its targets come from
`file_sd_configs` files that chart_discovery writes from the API, with the same
`__meta_kubernetes_*` labels. The pod reaches every pod IP from inside the node's network; the
test reaches its HTTP API through a host-listen Service (127.0.0.1 of the host).
"""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from chart_discovery import Discovery

from optikube_testcluster import ControlPlane
from optikube_testcluster.processnode import HOST_LISTEN_ANNOTATION
from optikube_testcluster.processnode.testing import on_process_node

NAME = "prometheus"


def _meta(label: str) -> str:
    """A Kubernetes label as Prometheus's service discovery names it."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", label)


def _keep(prefix: str, match_labels: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {"action": "keep", "source_labels": [f"{prefix}{_meta(k)}"], "regex": re.escape(v)}
        for k, v in sorted(match_labels.items())
    ]


def _relabelings(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        rule: dict[str, Any] = {"source_labels": item["sourceLabels"], "target_label": item["targetLabel"]}
        if "regex" in item:
            rule["regex"] = item["regex"]
        out.append(rule)
    return out


TARGETS = "/etc/prometheus/targets"


def _namespaces(selector: dict[str, Any]) -> tuple[str, ...]:
    return () if selector.get("any") else tuple(selector["matchNames"])


def _file_sd(discovery: Discovery) -> list[dict[str, Any]]:
    return [{"files": [f"{TARGETS}/{discovery.file}"], "refresh_interval": "2s"}]


# the target labels both kinds of monitor give a pod's endpoint
_POD_TARGET_LABELS = [
    {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
    {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
    {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
]


def _scrape(
    kind: str,
    monitor: dict[str, Any],
    endpoint: dict[str, Any],
    relabel: list[dict[str, Any]],
    discovery: Discovery,
    interval: str,
) -> dict[str, Any]:
    """The scrape config of a ServiceMonitor's or PodMonitor's endpoint (``kind`` as the
    prometheus-operator names its jobs), whose own relabelings follow ``relabel``: `job` from the
    monitor's jobLabel, the endpoint (port) label, then the endpoint's relabelings."""
    spec, meta = monitor["spec"], monitor["metadata"]
    relabel = list(relabel)
    if spec.get("jobLabel"):
        source = "service" if kind == "serviceMonitor" else "pod"
        relabel.append(
            {
                "source_labels": [f"__meta_kubernetes_{source}_label_{_meta(spec['jobLabel'])}"],
                "target_label": "job",
                "regex": "(.+)",
            }
        )
    relabel += [{"target_label": "endpoint", "replacement": endpoint["port"]}]
    relabel += _relabelings(endpoint.get("relabelings", []))
    return {
        "job_name": f"{kind}/{meta['namespace']}/{meta['name']}/0",
        "honor_labels": bool(endpoint.get("honorLabels", False)),
        "metrics_path": endpoint.get("path", "/metrics"),
        "scrape_interval": interval,
        "file_sd_configs": _file_sd(discovery),
        "relabel_configs": relabel,
    }


def service_monitor_config(monitor: dict[str, Any], interval: str) -> tuple[dict[str, Any], Discovery]:
    spec = monitor["spec"]
    discovery = Discovery("endpointslice", _namespaces(spec["namespaceSelector"]), "service-monitor.json")
    (endpoint,) = spec["endpoints"]
    relabel = [
        *_keep("__meta_kubernetes_service_label_", spec["selector"]["matchLabels"]),
        {
            "action": "keep",
            "source_labels": ["__meta_kubernetes_endpointslice_port_name"],
            "regex": endpoint["port"],
        },
        *_POD_TARGET_LABELS,
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job"},
    ]
    return _scrape("serviceMonitor", monitor, endpoint, relabel, discovery, interval), discovery


def pod_monitor_config(monitor: dict[str, Any], interval: str) -> tuple[dict[str, Any], Discovery]:
    spec, meta = monitor["spec"], monitor["metadata"]
    discovery = Discovery("pod", _namespaces(spec["namespaceSelector"]), "pod-monitor.json")
    (endpoint,) = spec["podMetricsEndpoints"]
    relabel = [
        # finished pods are no targets (the prometheus-operator drops them too)
        {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)"},
        *_keep("__meta_kubernetes_pod_label_", spec["selector"]["matchLabels"]),
        {
            "action": "keep",
            "source_labels": ["__meta_kubernetes_pod_container_port_name"],
            "regex": endpoint["port"],
        },
        *_POD_TARGET_LABELS,
        {"target_label": "job", "replacement": f"{meta['namespace']}/{meta['name']}"},
    ]
    return _scrape("podMonitor", monitor, endpoint, relabel, discovery, interval), discovery


def prometheus_config(
    service_monitor: dict[str, Any], pod_monitor: dict[str, Any], interval: str
) -> tuple[str, list[Discovery]]:
    """The config file, and the discoveries whose files it reads."""
    scrapes = [service_monitor_config(service_monitor, interval), pod_monitor_config(pod_monitor, interval)]
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": ["/etc/prometheus/rules/*.yaml"],
        "scrape_configs": [scrape for scrape, _ in scrapes],
    }
    return yaml.safe_dump(config, sort_keys=False), [discovery for _, discovery in scrapes]


def manifests(namespace: str, config: str, rules: str, targets: Path, host_port: int) -> list[dict[str, Any]]:
    """The config and rules, the pod (its targets folder is the host's `targets`), and its
    host-listen Service."""
    labels = {"app.kubernetes.io/name": NAME}
    container = {
        "name": NAME,
        "image": "prom/prometheus",  # ignored by the process node: the host's binary runs
        "command": ["/usr/bin/prometheus"],
        "args": [
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/prometheus",
            "--storage.tsdb.retention.time=1d",
            "--web.listen-address=0.0.0.0:9090",
        ],
        "ports": [{"name": "web", "containerPort": 9090}],
        "readinessProbe": {"httpGet": {"path": "/-/ready", "port": "web"}, "periodSeconds": 1},
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/prometheus/prometheus.yml", "subPath": "prometheus.yml"},
            {"name": "rules", "mountPath": "/etc/prometheus/rules"},
            {"name": "targets", "mountPath": TARGETS, "readOnly": True},
            {"name": "data", "mountPath": "/prometheus"},
        ],
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    pod_spec = {
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534, "fsGroup": 65534},
        "containers": [container],
        "volumes": [
            {"name": "config", "configMap": {"name": NAME}},
            {"name": "rules", "configMap": {"name": f"{NAME}-rules"}},
            {"name": "targets", "hostPath": {"path": str(targets), "type": "Directory"}},
            {"name": "data", "emptyDir": {}},
        ],
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": NAME, "namespace": namespace},
            "data": {"prometheus.yml": config},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{NAME}-rules", "namespace": namespace},
            "data": {"optikube.rules.yaml": rules},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": NAME, "namespace": namespace, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": on_process_node(pod_spec)},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": NAME,
                "namespace": namespace,
                "annotations": {HOST_LISTEN_ANNOTATION: str(host_port)},
            },
            "spec": {"selector": labels, "ports": [{"name": "web", "port": 9090, "targetPort": "web"}]},
        },
    ]


def forward(namespace: str, name: str, selector: dict[str, str], port: int, host_port: int) -> dict[str, Any]:
    """A Service whose only use is the host's 127.0.0.1:host_port forwarded to the selected pod's port."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {HOST_LISTEN_ANNOTATION: str(host_port)},
        },
        "spec": {"selector": selector, "ports": [{"name": "forwarded", "port": port, "targetPort": port}]},
    }


def apply(plane: ControlPlane, objects: list[dict[str, Any]]) -> None:
    plane.kubectl("apply", "-f", "-", input="\n---\n".join(json.dumps(o) for o in objects))


def get(url: str, timeout: float = 10.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return str(answer.read().decode())


class PrometheusAPI:
    def __init__(self, base: str) -> None:
        self.base = base

    def _api(self, path: str, **params: Any) -> Any:
        body = json.loads(get(f"{self.base}/api/v1/{path}?{urllib.parse.urlencode(params)}", timeout=30))
        assert body["status"] == "success", body
        return body["data"]

    def ready(self) -> bool:
        try:
            return "Ready" in get(f"{self.base}/-/ready", timeout=2)
        except OSError:
            return False

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._api("query", query=expr)["result"]
        return result

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._api("query_range", query=expr, start=start, end=end, step=step)[
            "result"
        ]
        return result

    def targets(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._api("targets")["activeTargets"]
        return found

    def rules(self) -> list[dict[str, Any]]:
        return [rule for group in self._api("rules")["groups"] for rule in group["rules"]]


def promtool_check_metrics(text: str, scratch: Path) -> str:
    """`promtool check metrics` on an exposition; returns its complaints (empty when clean)."""
    import subprocess

    path = scratch / "metrics.txt"
    path.write_text(text)
    with path.open() as exposition:
        result = subprocess.run(
            ["promtool", "check", "metrics"], stdin=exposition, capture_output=True, text=True, check=False
        )
    return (
        (result.stdout + result.stderr).strip() if result.returncode or result.stdout or result.stderr else ""
    )
