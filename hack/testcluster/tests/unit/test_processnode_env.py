"""A container's environment and command line on the process node, as the kubelet builds them."""

from __future__ import annotations

import base64
from fractions import Fraction
from typing import Any

import pytest

from optikube_testcluster.processnode.downward import (
    FieldError,
    NodeFacts,
    field_value,
    parse_quantity,
    resource_value,
)
from optikube_testcluster.processnode.envvars import (
    ConfigError,
    StartError,
    command_line,
    container_env,
    expand,
    runtime_env,
    service_env,
)

FACTS = NodeFacts(pod_ip="10.244.128.7", host_ip="10.244.128.1", allocatable={"cpu": "8", "memory": "32Gi"})


def pod(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "trial-0",
            "namespace": "ns",
            "uid": "u-1",
            "labels": {"app": "trial"},
            "annotations": {"batch.kubernetes.io/job-completion-index": "0"},
        },
        "spec": {"nodeName": "process-0", "serviceAccountName": "runner", **spec},
    }


def service(name: str, namespace: str, ip: str, ports: list[dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace}, "spec": {"clusterIP": ip, "ports": ports}}


CONFIG = {("ns", "settings"): {"data": {"MODE": "fast", "bad key": "x"}}}
SECRETS = {("ns", "creds"): {"data": {"TOKEN": base64.b64encode(b"s3cret").decode()}}}


def lookup(table: dict[tuple[str, str], dict[str, Any]]) -> Any:
    return lambda namespace, name: table.get((namespace, name))


def test_expand_replaces_defined_names_and_keeps_the_rest() -> None:
    env = {"A": "1", "B": "two"}
    assert expand("$(A)-$(B)-$(C)-$$(A)-$$-$", env) == "1-two-$(C)-$(A)-$-$"


def test_service_env_has_the_kubernetes_service_and_only_the_pods_namespace() -> None:
    services = [
        service("kubernetes", "default", "10.96.0.1", [{"name": "https", "port": 443}]),
        service("report-api", "ns", "10.96.3.4", [{"name": "http", "port": 8080}]),
        service("elsewhere", "other", "10.96.9.9", [{"port": 80}]),
        service("headless", "ns", "None", [{"port": 80}]),
    ]
    env = service_env(services, "ns")
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1" and env["KUBERNETES_SERVICE_PORT"] == "443"
    assert env["KUBERNETES_PORT"] == "tcp://10.96.0.1:443"
    assert env["REPORT_API_SERVICE_PORT_HTTP"] == "8080"
    assert env["REPORT_API_PORT_8080_TCP_ADDR"] == "10.96.3.4"
    assert not any(k.startswith(("ELSEWHERE_", "HEADLESS_")) for k in env)
    without_links = service_env(services, "ns", enable_links=False)
    assert "KUBERNETES_SERVICE_HOST" in without_links and "REPORT_API_SERVICE_HOST" not in without_links


def test_container_env_resolves_every_kind_of_source_in_order() -> None:
    container = {
        "name": "main",
        "envFrom": [
            {"configMapRef": {"name": "settings"}, "prefix": "CM_"},
            {"secretRef": {"name": "creds"}},
        ],
        "env": [
            {
                "name": "INDEX",
                "valueFrom": {
                    "fieldRef": {
                        "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"
                    }
                },
            },
            {"name": "RANK_NAME", "value": "rank-$(INDEX)"},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "MODE"}}},
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "TOKEN"}}},
            {
                "name": "MAYBE",
                "valueFrom": {"secretKeyRef": {"name": "absent", "key": "x", "optional": True}},
            },
            {"name": "CPUS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {"name": "K8S", "value": "$(KUBERNETES_SERVICE_HOST)"},
        ],
    }
    services = [service("kubernetes", "default", "10.96.0.1", [{"port": 443}])]
    env = container_env(
        pod(containers=[container]), container, FACTS, lookup(CONFIG), lookup(SECRETS), services
    )
    assert env["INDEX"] == "0" and env["RANK_NAME"] == "rank-0"
    assert (env["IP"], env["SA"], env["APP"]) == ("10.244.128.7", "runner", "trial")
    assert (env["MODE"], env["PASSWORD"], env["CM_MODE"], env["TOKEN"]) == (
        "fast",
        "s3cret",
        "fast",
        "s3cret",
    )
    assert "MAYBE" not in env and "CM_bad key" not in env
    assert env["CPUS"] == "8"  # no limit: the node's allocatable
    assert env["K8S"] == "10.96.0.1"


def test_missing_references_are_config_errors_unless_optional() -> None:
    missing_key = {
        "name": "main",
        "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "NOPE"}}}],
    }
    with pytest.raises(ConfigError, match="NOPE"):
        container_env(pod(), missing_key, FACTS, lookup(CONFIG), lookup(SECRETS), [])
    missing_map = {"name": "main", "envFrom": [{"configMapRef": {"name": "absent"}}]}
    with pytest.raises(ConfigError, match="absent"):
        container_env(pod(), missing_map, FACTS, lookup(CONFIG), lookup(SECRETS), [])
    optional = {"name": "main", "envFrom": [{"configMapRef": {"name": "absent", "optional": True}}]}
    assert container_env(pod(), optional, FACTS, lookup(CONFIG), lookup(SECRETS), []) == {}


def test_runtime_env_defaults_and_the_command_line() -> None:
    env = runtime_env({"A": "1"}, "trial-0", 1000, "/venv/bin")
    assert env["PATH"].startswith("/venv/bin:") and env["HOSTNAME"] == "trial-0" and env["HOME"] == "/"
    assert runtime_env({"PATH": "/mine"}, "h", 0, "/venv/bin")["PATH"] == "/mine"
    container = {"name": "c", "command": ["torchrun"], "args": ["--node-rank=$(INDEX)", "$$(INDEX)"]}
    assert command_line(container, {"INDEX": "1"}) == ["torchrun", "--node-rank=1", "$(INDEX)"]
    with pytest.raises(StartError, match="no command"):
        command_line({"name": "c", "args": ["x"]}, {})


def test_quantities_and_resource_fields() -> None:
    assert parse_quantity("500m") == Fraction(1, 2)
    assert parse_quantity("1Gi") == 2**30 and parse_quantity("1e3") == 1000 and parse_quantity("2k") == 2000
    with pytest.raises(FieldError):
        parse_quantity("lots")
    limited = pod(containers=[{"name": "main", "resources": {"limits": {"cpu": "1500m", "memory": "1Gi"}}}])
    assert resource_value(limited, "main", {"resource": "limits.cpu"}, FACTS) == "2"  # rounded up
    assert resource_value(limited, "main", {"resource": "limits.cpu", "divisor": "1m"}, FACTS) == "1500"
    assert resource_value(limited, "main", {"resource": "requests.memory", "divisor": "1Mi"}, FACTS) == "1024"
    assert resource_value(limited, "main", {"resource": "requests.cpu"}, FACTS) == "2"  # request = limit


def test_field_values_and_whole_maps_for_volumes() -> None:
    assert field_value(pod(), "metadata.uid", FACTS) == "u-1"
    assert field_value(pod(), "metadata.labels['missing']", FACTS) == ""
    assert field_value(pod(), "metadata.labels", FACTS, whole_maps=True) == 'app="trial"\n'
    with pytest.raises(FieldError):
        field_value(pod(), "metadata.labels", FACTS)
    with pytest.raises(FieldError):
        field_value(pod(), "spec.unknown", FACTS)
