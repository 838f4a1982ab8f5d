"""Every pod the chart runs, in every mode of the values matrix, and the trainer pods the operator
builds from the chart's trainer defaults, pass the Pod Security "restricted" profile, as the real
apiserver's admission enforces it (a namespace labelled enforce=restricted, server-side dry run)."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_tools import MATRIX, ROOT, find, pod_templates, render

from optikube_operator.api import load_job
from optikube_operator.kube import names
from optikube_operator.kube.config import OperatorConfig, TrainerDefaults
from optikube_operator.kube.resources import build_pod_template
from optikube_testcluster import ControlPlane, KubectlError

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def restricted(control_plane: ControlPlane) -> str:
    name = control_plane.create_namespace(f"restricted-{uuid.uuid4().hex[:6]}")
    control_plane.kubectl(
        "label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted", "--overwrite"
    )
    # the ServiceAccount admission plugin wants the accounts pods name
    for account in ("optikube", "optikube-trainer"):
        control_plane.kubectl("create", "serviceaccount", account, "-n", name)
    return name


def _dry_run_pod(plane: ControlPlane, namespace: str, name: str, spec: dict[str, Any]) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
    plane.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(pod))


@pytest.mark.parametrize("case", sorted(MATRIX))
def test_every_pod_template_of_the_chart_is_admitted_by_the_restricted_profile(
    control_plane: ControlPlane, restricted: str, case: str
) -> None:
    templates = pod_templates(render(MATRIX[case], namespace=restricted))
    assert {"Deployment/optikube", "Pod/optikube-test"} <= set(templates)
    for name, spec in sorted(templates.items()):
        _dry_run_pod(control_plane, restricted, f"{case}-{name.split('/')[0].lower()}", spec)


def test_trainer_pods_built_from_the_chart_defaults_are_admitted_too(
    control_plane: ControlPlane, restricted: str, tmp_path: Path
) -> None:
    (defaults,) = find(render(), "ConfigMap", "optikube-trainer-defaults")
    path = tmp_path / "defaults.yaml"
    path.write_text(defaults["data"]["trainer-defaults.yaml"])
    config = OperatorConfig(trainer=TrainerDefaults.from_file(path))
    job = load_job(next(yaml.safe_load_all((ROOT / "examples" / "quickstart.yaml").read_text())))
    for run in (names.trial_run(0), names.PIPELINE, names.PREFLIGHT):
        template = build_pod_template("quickstart", run, job.spec, config)
        _dry_run_pod(control_plane, restricted, f"trainer-{names.run_name('q', run)}", template["spec"])


def test_the_check_refuses_a_pod_that_breaks_the_profile(
    control_plane: ControlPlane, restricted: str
) -> None:
    """The same check, on the Deployment's pod with root allowed back: refused, naming why."""
    spec = copy.deepcopy(pod_templates(render())["Deployment/optikube"])
    spec["securityContext"].pop("runAsNonRoot")
    spec["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    with pytest.raises(KubectlError) as refused:
        _dry_run_pod(control_plane, restricted, "too-loose", spec)
    message = str(refused.value)
    assert 'violates PodSecurity "restricted' in message and "allowPrivilegeEscalation" in message
