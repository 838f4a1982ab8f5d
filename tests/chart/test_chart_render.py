"""The chart renders what it should over its values matrix, with the real helm: lint is clean, the
CRDs are crds/ exactly, the schema refuses bad values naming them, and every mode's objects are
wired together (the operator's flags, its Service, the trainer defaults the operator parses)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_tools import CHART, MATRIX, RELEASE, ROOT, SYSTEM, find, render, run_helm, template_text

from optikube_operator.kube.config import DEFAULT_TRAINER_IMAGE, TrainerDefaults

pytestmark = pytest.mark.cluster  # helm is one of the control plane's binaries

CRD_FILES = sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))


@pytest.mark.parametrize("case", sorted(MATRIX))
def test_helm_lint_is_clean(case: str) -> None:
    result = run_helm(
        "lint", "--strict", str(CHART), f"--namespace={SYSTEM}", values=MATRIX[case], check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("name", CRD_FILES)
def test_rendered_crds_are_the_crds_folder_byte_for_byte(name: str) -> None:
    show = f"--show-only=templates/crds/{name}"
    plain = template_text({"crds": {"enabled": True, "keep": False}}, SYSTEM, show)
    header, source, body = plain.split("\n", 2)
    assert (header, source) == ("---", f"# Source: optikube/templates/crds/{name}")
    assert body == (ROOT / "crds" / name).read_text()
    kept = yaml.safe_load(template_text(None, SYSTEM, show))  # crds.keep is on by default
    expected = yaml.safe_load((ROOT / "crds" / name).read_text())
    assert kept["metadata"].pop("annotations") == {"helm.sh/resource-policy": "keep"}
    assert kept == expected


def test_crds_disabled_renders_no_crd() -> None:
    assert not find(render(MATRIX["crds-disabled"]), "CustomResourceDefinition")
    assert len(find(render(), "CustomResourceDefinition")) == len(CRD_FILES)


# Each bad values file, and the value helm's schema error must name (a JSON pointer).
BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"ports": {"progress": 70000}}, "/ports/progress"),
    ({"dashboard": {"labelValue": 1}}, "/dashboard/labelValue"),
    ({"watchNamespaces": ["Team_A"]}, "/watchNamespaces/0"),
    ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ({"crds": {"enabled": "yes"}}, "/crds/enabled"),
    ({"operator": {"runAsUser": 0}}, "/operator/runAsUser"),
    ({"trainer": {"tolerations": [{"key": "a", "operator": "Maybe"}]}}, "/trainer/tolerations/0/operator"),
    ({"metrics": {"serviceMonitor": {"interval": "30 seconds"}}}, "/metrics/serviceMonitor/interval"),
    ({"trainer": {"image": {"tag": "not a tag"}}}, "/trainer/image/tag"),
    ({"operator": {"resources": {"requests": {"cpu": "lots"}}}}, "/operator/resources/requests/cpu"),
    ({"operator": {"replicas": 2}}, "/operator"),
    ({"trainer": {"gpuNodeSelector": {"nvidia.com/gpu.present": True}}}, "/trainer/gpuNodeSelector"),
    ({"networkPolicy": {"metricsFrom": "everyone"}}, "/networkPolicy/metricsFrom"),
    ({"trainerServiceAccount": {"name": ""}}, "/trainerServiceAccount/name"),
    ({"trainer": {"fsGroup": -1}}, "/trainer/fsGroup"),
]


@pytest.mark.parametrize(("values", "pointer"), BAD_VALUES, ids=[p for _, p in BAD_VALUES])
def test_schema_rejects_a_bad_value_and_names_it(
    values: dict[str, Any], pointer: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(values))
    result = run_helm("template", RELEASE, str(CHART), f"--values={bad}", check=False)
    assert result.returncode != 0, f"accepted {values}"
    assert "don't meet the specifications of the schema" in result.stderr, result.stderr
    assert f"at '{pointer}" in result.stderr, result.stderr


def _operator_args(docs: list[dict[str, Any]]) -> list[str]:
    (deployment,) = find(docs, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "optikube_operator", "operator"]
    return list(container["args"])


def test_defaults_run_one_operator_cluster_wide_sending_progress_to_its_own_service(tmp_path: Path) -> None:
    docs = render()
    (deployment,) = find(docs, "Deployment", RELEASE)
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == RELEASE  # the release-named account of the RBAC
    args = _operator_args(docs)
    assert "--progress-bind=0.0.0.0:8443" in args and "--metrics-bind=0.0.0.0:8080" in args
    assert f"--progress-url=http://{RELEASE}.{SYSTEM}.svc:8443/v1/progress" in args
    assert not [a for a in args if a.startswith("--namespace")]
    (service,) = find(docs, "Service", RELEASE)
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"progress": 8443, "metrics": 8080}
    labels = spec["template"]["metadata"]["labels"]
    assert all(labels[k] == v for k, v in service["spec"]["selector"].items())
    container = pod["containers"][0]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert "--liveness=http://0.0.0.0:8081/healthz" in args
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    # the trainer defaults ConfigMap is what the operator's own parser reads
    config_map = volumes[mounts["/etc/optikube-operator"]]["configMap"]["name"]
    (defaults,) = find(docs, "ConfigMap", config_map)
    path = tmp_path / "trainer-defaults.yaml"
    path.write_text(defaults["data"]["trainer-defaults.yaml"])
    parsed = TrainerDefaults.from_file(path)
    assert "--trainer-defaults=/etc/optikube-operator/trainer-defaults.yaml" in args
    assert parsed.image == DEFAULT_TRAINER_IMAGE  # the chart's default is the operator's own
    assert parsed.service_account == "optikube-trainer"
    assert parsed.gpu_tolerations == (
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    )
    assert [d["kind"] for d in find(docs, "ClusterRole")] == ["ClusterRole"]


def test_trainer_values_reach_the_operator_through_its_defaults_file(tmp_path: Path) -> None:
    trainer = {
        "image": {"repository": "registry.example.com/ml/trainer", "tag": "1.2.3"},
        "nodeSelector": {"pool": "training"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}],
        "gpuNodeSelector": {"nvidia.com/gpu.present": "true"},
        "runtimeClassName": "nvidia",
        "imagePullSecrets": ["registry-credentials"],
    }
    docs = render({"trainer": trainer})
    (defaults,) = find(docs, "ConfigMap", f"{RELEASE}-trainer-defaults")
    path = tmp_path / "defaults.yaml"
    path.write_text(defaults["data"]["trainer-defaults.yaml"])
    parsed = TrainerDefaults.from_file(path)
    assert parsed.image == "registry.example.com/ml/trainer:1.2.3"
    assert parsed.node_selector == {"pool": "training"} and parsed.runtime_class_name == "nvidia"
    assert parsed.tolerations == tuple(trainer["tolerations"])
    assert parsed.gpu_node_selector == {"nvidia.com/gpu.present": "true"}
    assert parsed.image_pull_secrets == ("registry-credentials",)
    # a change of the defaults changes the pod template, so the operator restarts and rereads them
    before = find(render(), "Deployment")[0]["spec"]["template"]["metadata"]["annotations"]
    after = find(docs, "Deployment")[0]["spec"]["template"]["metadata"]["annotations"]
    assert before["checksum/trainer-defaults"] != after["checksum/trainer-defaults"]


def test_namespaced_mode_grants_roles_only_in_the_watched_namespaces() -> None:
    docs = render(MATRIX["namespaced"])
    assert [a for a in _operator_args(docs) if a.startswith("--namespace")] == [
        "--namespace=team-a",
        "--namespace=team-b",
    ]
    roles = find(docs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    assert sorted(b["metadata"]["namespace"] for b in find(docs, "RoleBinding")) == ["team-a", "team-b"]
    (cluster_role,) = find(docs, "ClusterRole")  # only the TokenReviews
    assert cluster_role["rules"] == [
        {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]}
    ]
    accounts = find(docs, "ServiceAccount", "optikube-trainer")
    assert sorted(a["metadata"]["namespace"] for a in accounts) == [SYSTEM, "team-a", "team-b"]
    assert all(a["automountServiceAccountToken"] is False for a in accounts)


def test_monitors_select_the_operator_service_and_the_trainer_pods_with_additional_labels() -> None:
    docs = render(MATRIX["monitors"])
    (service_monitor,) = find(docs, "ServiceMonitor")
    (pod_monitor,) = find(docs, "PodMonitor")
    (rule,) = find(docs, "PrometheusRule")
    for monitor in (service_monitor, pod_monitor, rule):
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (service,) = find(docs, "Service", RELEASE)
    assert service_monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert service_monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert service_monitor["spec"]["endpoints"][0]["honorLabels"] is True
    assert pod_monitor["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/managed-by": "optikube"}
    assert pod_monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    assert pod_monitor["spec"]["namespaceSelector"] == {"any": True}
    shipped = yaml.safe_load((CHART / "alerts" / "optikube.rules.yaml").read_text())
    assert rule["spec"]["groups"] == shipped["groups"]
    assert not find(render(), "ServiceMonitor") and not find(render(), "PodMonitor")


def test_network_policy_admits_only_trainer_pods_of_the_watched_namespaces_to_the_progress_port() -> None:
    (policy,) = find(render(MATRIX["network-policy"]), "NetworkPolicy")
    progress = next(
        r for r in policy["spec"]["ingress"] if r["ports"] == [{"port": "progress", "protocol": "TCP"}]
    )
    (peer,) = progress["from"]
    assert peer["podSelector"] == {"matchLabels": {"app.kubernetes.io/managed-by": "optikube"}}
    assert peer["namespaceSelector"]["matchExpressions"][0]["values"] == ["team-a"]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert not find(render(), "NetworkPolicy")


def test_dashboard_config_map_holds_the_dashboard_with_a_configurable_label() -> None:
    (default,) = find(render(), "ConfigMap", f"{RELEASE}-dashboard")
    assert default["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(default["data"]["optikube.json"]) == json.loads(
        (CHART / "dashboards" / "optikube.json").read_text()
    )
    (custom,) = find(
        render(
            {
                "dashboard": {
                    "label": "grafana.io/dashboard",
                    "labelValue": "optikube",
                    "namespace": "monitoring",
                }
            }
        ),
        "ConfigMap",
        f"{RELEASE}-dashboard",
    )
    assert custom["metadata"]["labels"]["grafana.io/dashboard"] == "optikube"
    assert custom["metadata"]["namespace"] == "monitoring"


def test_promtool_accepts_the_shipped_alert_rules() -> None:
    result = subprocess.run(
        ["promtool", "check", "rules", str(CHART / "alerts" / "optikube.rules.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 5 rules found" in result.stdout
