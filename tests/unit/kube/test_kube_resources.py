"""The pure builders of the objects the operator creates (no cluster needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from optikube_operator.api import load_job
from optikube_operator.kube import names, resources
from optikube_operator.kube.config import OperatorConfig, TrainerDefaults

ROOT = Path(__file__).resolve().parents[3]
OWNER = {
    "apiVersion": "optikube.io/v1alpha1",
    "kind": "OptimizationJob",
    "metadata": {"name": "mn", "namespace": "team", "uid": "uid-1"},
}
CONFIG = OperatorConfig(
    progress_url="http://optikube.optikube-system.svc:8443/v1/progress",
    trainer=TrainerDefaults(image="reg/trainer:1", runtime_class_name="nvidia", image_pull_secrets=("pull",)),
)


def _spec(example: str, **resources: Any) -> Any:
    manifest = next(yaml.safe_load_all((ROOT / "examples" / f"{example}.yaml").read_text()))
    manifest["spec"].setdefault("resources", {}).update(resources)
    return load_job(manifest).spec


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_multi_node_gpu_job_is_an_indexed_job_of_gpu_pods_with_a_torchrun_rendezvous() -> None:
    spec = _spec("multi-node-gpu", queueName="research", backoffLimit=2)
    job = resources.build_run_job(
        "mn", "team", names.trial_run(3), spec, CONFIG, OWNER, trial_timeout_seconds=7200
    )
    assert job["metadata"]["name"] == "mn-t3"
    assert job["metadata"]["labels"] == {
        names.MANAGED_BY: "optikube",
        names.JOB_LABEL: "mn",
        names.RUN_LABEL: "trial",
        names.TRIAL_LABEL: "3",
        names.QUEUE_LABEL: "research",
    }
    assert job["metadata"]["ownerReferences"] == [resources.owner_reference(OWNER)]
    spec_ = job["spec"]
    assert (spec_["completionMode"], spec_["completions"], spec_["parallelism"]) == ("Indexed", 2, 2)
    assert spec_["backoffLimit"] == 2 and spec_["activeDeadlineSeconds"] == 7200 and spec_["suspend"] is True
    pod = spec_["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "ghcr.io/example/optikube-trainer:0.1.0"  # the spec's own image wins
    assert container["command"] == ["/bin/sh", "-c", resources.LAUNCH_SCRIPT]
    env = _env(container)
    assert env["OPTIKUBE_NNODES"] == "2" and env["OPTIKUBE_NPROC_PER_NODE"] == "4"
    assert env["OPTIKUBE_RDZV_HOST"] == "mn-t3-0.mn-t3" and env["OPTIKUBE_RUN"] == "mn-t3"
    assert env["OPTIKUBE_PROGRESS_URL"] == CONFIG.progress_url
    assert env["POD_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert pod["subdomain"] == "mn-t3" and pod["restartPolicy"] == "Never"
    # 4 processes x 1 GPU each, equal requests and limits; the spec's memory limit kept
    assert container["resources"]["limits"] == {"memory": "96Gi", "nvidia.com/gpu": "4"}
    assert container["resources"]["requests"] == {"cpu": "16", "memory": "64Gi", "nvidia.com/gpu": "4"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["runtimeClassName"] == "nvidia" and pod["imagePullSecrets"] == [{"name": "pull"}]
    assert pod["serviceAccountName"] == "optikube-trainer" and pod["automountServiceAccountToken"] is False


def test_trainer_pods_satisfy_the_restricted_profile_and_get_the_report_token() -> None:
    pod = resources.build_run_job("q", "team", names.trial_run(0), _spec("quickstart"), CONFIG, OWNER)[
        "spec"
    ]["template"]["spec"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "fsGroup": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = pod["containers"][0]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
    }
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    token = volumes["progress-token"]["projected"]["sources"][0]["serviceAccountToken"]
    assert token == {"audience": "optikube.io", "expirationSeconds": 3600, "path": "token"}
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    assert mounts == {
        "config": "/etc/optikube",
        "progress-token": "/var/run/secrets/optikube",
        "tmp": "/tmp",
        "shm": "/dev/shm",
        "artifacts": "/artifacts",
    }
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert "tolerations" not in pod  # no GPUs asked, no GPU toleration added
    assert _env(container)["OPTIKUBE_PROGRESS_TOKEN_FILE"] == "/var/run/secrets/optikube/token"


def test_artifacts_on_a_claim_are_mounted_with_their_sub_path_and_located_for_users() -> None:
    manifest = next(yaml.safe_load_all((ROOT / "examples" / "quickstart.yaml").read_text()))
    manifest["spec"]["artifacts"] = {"pvc": {"claimName": "models", "subPath": "runs"}}
    spec = load_job(manifest).spec
    pod = resources.build_run_job("q", "team", names.PIPELINE, spec, CONFIG, OWNER)["spec"]["template"][
        "spec"
    ]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["artifacts"] == {"name": "artifacts", "persistentVolumeClaim": {"claimName": "models"}}
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "artifacts")
    assert mount == {"name": "artifacts", "mountPath": "/artifacts", "subPath": "runs"}
    assert resources.artifacts_location(spec, "q") == "pvc://models/runs/q"
    assert resources.artifacts_location(_spec("quickstart"), "q") == "pvc://quickstart-artifacts/q"
    assert resources.artifacts_location(_spec("multi-objective"), "m") is None


def test_trial_service_and_config_map_are_named_and_owned_deterministically() -> None:
    trial = resources.build_trial(OWNER, 7, {"training.learningRate": 0.01})
    assert trial["metadata"]["name"] == "mn-t7" and trial["spec"] == {
        "jobRef": {"name": "mn", "uid": "uid-1"},
        "number": 7,
        "params": {"training.learningRate": 0.01},
        "stage": "trial",
    }
    service = resources.build_service("mn", "team", names.trial_run(7), OWNER)
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["selector"] == names.run_labels("mn", names.trial_run(7))
    pipeline = resources.build_config_map("mn", "team", names.PIPELINE, {"stage": "pipeline"}, OWNER)
    assert pipeline["metadata"]["name"] == "mn-pipeline-config"
    assert pipeline["metadata"]["labels"][names.RUN_LABEL] == "pipeline"


def test_names_fit_kubernetes_limits_for_the_longest_job_name() -> None:
    longest = "j" * 40  # metadata.name is at most 40 characters (a CRD rule)
    assert len(f"{names.run_name(longest, names.trial_run(9999))}-1023-abcde") <= 63  # pod names of the Job
    assert len(f"{names.run_name(longest, names.PIPELINE)}-1023") <= 63  # pipeline pod hostnames


def test_a_single_worker_run_hosts_its_rendezvous_on_localhost_without_a_service() -> None:
    """No peers to find: no headless Service (and its Endpoints, EndpointSlice) per trial."""
    spec = _spec("quickstart")
    assert spec.resources.workers == 1
    assert not resources.has_peers(spec, names.trial_run(0)) and not resources.has_peers(spec, names.PIPELINE)
    assert resources.has_peers(_spec("multi-node-gpu"), names.trial_run(0))
    assert not resources.has_peers(_spec("multi-node-gpu"), names.PREFLIGHT)
    job = resources.build_run_job(
        "q", "team", names.trial_run(0), spec, CONFIG, OWNER, trial_timeout_seconds=None
    )
    pod = job["spec"]["template"]["spec"]
    env = _env(pod["containers"][0])
    assert (
        "subdomain" not in pod and env["OPTIKUBE_RDZV_HOST"] == "localhost" and env["OPTIKUBE_NNODES"] == "1"
    )
    assert "--rdzv-backend c10d" in pod["containers"][0]["command"][-1]


def test_the_preflight_is_one_cpu_pod_without_retries_or_rendezvous_otherwise_a_trials_pod() -> None:
    spec = _spec("multi-node-gpu", queueName="research", backoffLimit=2)
    trial = resources.build_run_job(
        "mn", "team", names.trial_run(0), spec, CONFIG, OWNER, trial_timeout_seconds=7200
    )
    job = resources.build_run_job(
        "mn", "team", names.PREFLIGHT, spec, CONFIG, OWNER, trial_timeout_seconds=7200
    )
    assert job["metadata"]["name"] == "mn-preflight"
    assert job["metadata"]["labels"] == {
        names.MANAGED_BY: "optikube",
        names.JOB_LABEL: "mn",
        names.RUN_LABEL: "preflight",
        names.QUEUE_LABEL: "research",  # Kueue admits it like any run of the job
    }
    spec_ = job["spec"]
    assert (spec_["completions"], spec_["parallelism"], spec_["backoffLimit"]) == (1, 1, 0)
    assert spec_["activeDeadlineSeconds"] == resources.PREFLIGHT_DEADLINE_SECONDS and spec_["suspend"] is True
    pod, trial_pod = spec_["template"]["spec"], trial["spec"]["template"]["spec"]
    assert "subdomain" not in pod and trial_pod["subdomain"] == "mn-t0"
    container, trial_container = pod["containers"][0], trial_pod["containers"][0]
    assert container["command"] == ["/bin/sh", "-c", resources.PREFLIGHT_SCRIPT] and "ports" not in container
    assert "torchrun" not in resources.PREFLIGHT_SCRIPT and "$OPTIKUBE_STAGE" in resources.PREFLIGHT_SCRIPT
    assert _env(container)["OPTIKUBE_STAGE"] == "preflight"
    assert _env(container)["OPTIKUBE_RUN"] == "mn-preflight"
    # the preflight runs on the CPU: no GPU of the trials' is held, the rest is theirs
    assert "nvidia.com/gpu" not in container.get("resources", {}).get("limits", {})
    assert trial_container["resources"]["limits"]["nvidia.com/gpu"] == "4"
    for key in ("securityContext", "serviceAccountName", "automountServiceAccountToken", "tolerations"):
        assert pod.get(key) == trial_pod.get(key), key
    for key in ("nodeSelector", "runtimeClassName", "imagePullSecrets", "restartPolicy"):
        assert pod.get(key) == trial_pod.get(key), key
    assert container["securityContext"] == trial_container["securityContext"]
    assert container["image"] == trial_container["image"]
    assert [v["name"] for v in pod["volumes"]] == [v["name"] for v in trial_pod["volumes"]]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "mn-preflight-config"
    assert volumes["artifacts"] == {v["name"]: v for v in trial_pod["volumes"]}["artifacts"]
    assert container["volumeMounts"] == trial_container["volumeMounts"]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    config_map = resources.build_config_map("mn", "team", names.PREFLIGHT, {"stage": "preflight"}, OWNER)
    assert config_map["metadata"]["name"] == "mn-preflight-config"
    assert resources.output_dir(spec, "mn", names.PREFLIGHT) == "/artifacts/mn/preflight"
    assert resources.output_dir(spec, "mn", names.trial_run(4)) == "/artifacts/mn/trials/4"


def test_run_identities_round_trip_through_their_labels() -> None:
    for run in (names.trial_run(0), names.trial_run(12), names.PIPELINE, names.PREFLIGHT):
        assert names.run_of(names.run_labels("q", run)) == ("q", run)
    assert names.run_name("q", names.PREFLIGHT) == "q-preflight"
    assert (
        names.run_of({names.MANAGED_BY: "optikube", names.JOB_LABEL: "q", names.RUN_LABEL: "trial"}) is None
    )
    try:
        names.RunRef(names.RunKind.PIPELINE, 3)
    except ValueError:
        pass
    else:
        raise AssertionError("a pipeline run has no number")
