"""Rendering the chart with the real helm binary (the control plane's, `make controlplane`), and the
values sets the chart tests go over."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from optikube_testcluster.assets import find_assets

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "optikube"
RELEASE = "optikube"
SYSTEM = "optikube-system"

# The values matrix: every mode the chart renders differently in.
MATRIX: dict[str, dict[str, Any]] = {
    "defaults": {},
    "namespaced": {"watchNamespaces": ["team-a", "team-b"]},
    "monitors": {
        "metrics": {
            "serviceMonitor": {"enabled": True, "additionalLabels": {"release": "kube-prometheus-stack"}},
            "podMonitor": {"enabled": True, "additionalLabels": {"release": "kube-prometheus-stack"}},
            "prometheusRule": {"enabled": True, "additionalLabels": {"release": "kube-prometheus-stack"}},
        }
    },
    "network-policy": {"networkPolicy": {"enabled": True}, "watchNamespaces": ["team-a"]},
    "crds-disabled": {"crds": {"enabled": False, "keep": False}},
}


def helm() -> Path:
    return find_assets() / "helm"


def run_helm(
    *args: str, values: dict[str, Any] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    argv = [str(helm()), *args]
    if values:
        argv += ["--values", "-"]
    return subprocess.run(
        argv,
        input=yaml.safe_dump(values) if values else None,
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )


def template_text(values: dict[str, Any] | None = None, namespace: str = SYSTEM, *extra: str) -> str:
    return run_helm("template", RELEASE, str(CHART), f"--namespace={namespace}", *extra, values=values).stdout


def render(values: dict[str, Any] | None = None, namespace: str = SYSTEM) -> list[dict[str, Any]]:
    """Every object the chart renders (helm test hooks included)."""
    return [doc for doc in yaml.safe_load_all(template_text(values, namespace)) if doc]


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def pod_templates(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """kind/name -> pod spec, for every Pod and every workload's pod template."""
    found: dict[str, dict[str, Any]] = {}
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "Pod":
            found[name] = doc["spec"]
        elif doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            found[name] = doc["spec"]["template"]["spec"]
    return found
