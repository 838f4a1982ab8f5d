"""Pure builders of every object the operator creates: dicts, unit-tested without a cluster.

A run (a tuning trial or the final pipeline) is an Indexed Job of `workers` pods plus, with more
than one worker, a headless Service (stable DNS names for torchrun's rendezvous) and a ConfigMap
holding its run config;
a trial also has its OptimizationTrial, the durable record of what it did. The preflight is a run
of one pod without torchrun or Service: one process, `backoffLimit: 0`, a short deadline, on CPU,
otherwise the trials' pod (security context, scheduling, service account, volumes), so it sees
the data they will see.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from optikube_operator.api import OptimizationJobSpec
from optikube_operator.api.resources import GPU_RESOURCE
from optikube_operator.kube import names
from optikube_operator.kube.config import OperatorConfig
from optikube_operator.kube.names import PREFLIGHT, RunKind, RunRef, trial_run

# the preflight loads the data once and builds the models: minutes at most, even for a large set
PREFLIGHT_DEADLINE_SECONDS = 600

# The trainer pod's entry point: wait until pod 0's name resolves (its DNS record appears only once
# the pod exists), then hand over to torchrun. Values arrive as environment variables.
LAUNCH_SCRIPT = """\
deadline=$(( $(date +%s) + ${OPTIKUBE_DNS_TIMEOUT_SECONDS:-300} ))
until getent hosts "$OPTIKUBE_RDZV_HOST" >/dev/null 2>&1; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "rendezvous host $OPTIKUBE_RDZV_HOST did not resolve in time" >&2
    echo "rendezvous host $OPTIKUBE_RDZV_HOST did not resolve in time" > /dev/termination-log
    exit 1
  fi
  sleep 1
done
exec torchrun --nnodes "$OPTIKUBE_NNODES" --nproc-per-node "$OPTIKUBE_NPROC_PER_NODE" \\
  --node-rank "$JOB_COMPLETION_INDEX" --rdzv-backend c10d \\
  --rdzv-endpoint "$OPTIKUBE_RDZV_HOST:$OPTIKUBE_RDZV_PORT" --rdzv-id "$OPTIKUBE_RUN" \\
  -m optikube_trainer "$OPTIKUBE_STAGE" --config "$OPTIKUBE_CONFIG"
"""
# The preflight's: one process, no rendezvous.
PREFLIGHT_SCRIPT = 'exec python -m optikube_trainer "$OPTIKUBE_STAGE" --config "$OPTIKUBE_CONFIG"\n'


def owner_reference(owner: Mapping[str, Any]) -> dict[str, Any]:
    """A controller reference to ``owner`` (an object as the API returns it)."""
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _metadata(name: str, namespace: str, labels: dict[str, str], owner: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": labels,
        "ownerReferences": [owner_reference(owner)],
    }


def build_trial(job: Mapping[str, Any], number: int, params: Mapping[str, Any]) -> dict[str, Any]:
    """The OptimizationTrial of trial ``number`` of OptimizationJob ``job``."""
    meta = job["metadata"]
    return {
        "apiVersion": names.API_VERSION,
        "kind": "OptimizationTrial",
        "metadata": _metadata(
            names.run_name(meta["name"], trial_run(number)),
            meta["namespace"],
            names.run_labels(meta["name"], trial_run(number)),
            job,
        ),
        "spec": {
            "jobRef": {"name": meta["name"], "uid": meta["uid"]},
            "number": number,
            "params": dict(params),
            "stage": "trial",
        },
    }


def artifacts_root(spec: OptimizationJobSpec, job: str) -> str:
    """Where a job's outputs go inside the pods (the claim's subPath is mounted at /artifacts)."""
    return f"{names.ARTIFACTS_DIR}/{job}"


def output_dir(spec: OptimizationJobSpec, job: str, run: RunRef) -> str:
    root = artifacts_root(spec, job)
    return f"{root}/trials/{run.number}" if run.kind is RunKind.TRIAL else f"{root}/{run.kind.value}"


def artifacts_location(spec: OptimizationJobSpec, job: str) -> str | None:
    """Where a user finds the outputs: the claim and folder, or the object-storage prefix."""
    artifacts = spec.artifacts
    if artifacts is None:
        return None
    if artifacts.pvc is not None:
        folder = "/".join(part for part in (artifacts.pvc.sub_path, job) if part)
        return f"pvc://{artifacts.pvc.claim_name}/{folder}"
    return f"{artifacts.uri}/{job}" if artifacts.uri else None


def build_config_map(
    job: str, namespace: str, run: RunRef, run_config: Mapping[str, Any], owner: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(names.config_name(job, run), namespace, names.run_labels(job, run), owner),
        "data": {names.CONFIG_FILE: json.dumps(run_config, indent=1, sort_keys=True)},
    }


def has_peers(spec: OptimizationJobSpec, run: RunRef) -> bool:
    """Whether the run's pods must find each other (more than one worker): only then does it get a
    headless Service. A single worker's torchrun hosts its rendezvous itself, on localhost, and
    each Service would cost the cluster an Endpoints and an EndpointSlice kept up to date."""
    return run != PREFLIGHT and spec.resources.workers > 1


def build_service(job: str, namespace: str, run: RunRef, owner: Mapping[str, Any]) -> dict[str, Any]:
    """The headless Service whose DNS names the run's pods find each other by (not the preflight's:
    its one process has no rendezvous)."""
    labels = names.run_labels(job, run)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(names.run_name(job, run), namespace, labels, owner),
        "spec": {
            "clusterIP": "None",
            "selector": labels,
            # torchrun's workers must find pod 0 before it is Ready (it is Ready only once running)
            "publishNotReadyAddresses": True,
            "ports": [{"name": "rdzv", "port": names.RDZV_PORT, "targetPort": names.RDZV_PORT}],
        },
    }


def _env(job: str, run: RunRef, spec: OptimizationJobSpec, config: OperatorConfig) -> list[dict[str, Any]]:
    name = names.run_name(job, run)
    values = {
        "OPTIKUBE_RUN": name,
        "OPTIKUBE_STAGE": run.kind.value,
        "OPTIKUBE_CONFIG": f"{names.CONFIG_DIR}/{names.CONFIG_FILE}",
        "OPTIKUBE_NNODES": str(spec.resources.workers),
        "OPTIKUBE_NPROC_PER_NODE": str(spec.resources.processes_per_worker),
        # pod 0 of an Indexed Job is called <job name>-0; the Service is the pods' subdomain
        "OPTIKUBE_RDZV_HOST": f"{name}-0.{name}" if has_peers(spec, run) else "localhost",
        "OPTIKUBE_RDZV_PORT": str(names.RDZV_PORT),
        "OPTIKUBE_PROGRESS_URL": config.effective_progress_url,
        "OPTIKUBE_PROGRESS_TOKEN_FILE": f"{names.TOKEN_DIR}/{names.TOKEN_FILE}",
        "OPTIKUBE_METRICS_PORT": str(names.METRICS_PORT),
        "PYTHONUNBUFFERED": "1",
        # the root filesystem is read-only: caches go to the writable /tmp
        "HOME": "/tmp",
        "XDG_CACHE_HOME": "/tmp/.cache",
        "MPLCONFIGDIR": "/tmp/.matplotlib",
    }
    env: list[dict[str, Any]] = [{"name": key, "value": value} for key, value in values.items()]
    for key, path in (
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
        ("POD_IP", "status.podIP"),
    ):
        env.append({"name": key, "valueFrom": {"fieldRef": {"fieldPath": path}}})
    return env


def _resources(spec: OptimizationJobSpec, run: RunRef) -> dict[str, Any]:
    requests = {name: str(value) for name, value in spec.resources.requests.items()}
    limits = {name: str(value) for name, value in spec.resources.limits.items()}
    # the preflight runs on the CPU: it holds none of the GPUs the trials are waiting for
    gpus = 0 if run == PREFLIGHT else spec.resources.pod_gpus()
    if gpus:
        # extended resources must be equal in requests and limits
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(gpus)
    resources: dict[str, Any] = {}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    return resources


def _volumes(
    job: str, run: RunRef, spec: OptimizationJobSpec
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    artifacts: dict[str, Any] = {"name": "artifacts", "emptyDir": {}}
    artifacts_mount: dict[str, Any] = {"name": "artifacts", "mountPath": names.ARTIFACTS_DIR}
    pvc = spec.artifacts.pvc if spec.artifacts is not None else None
    if pvc is not None:
        artifacts = {"name": "artifacts", "persistentVolumeClaim": {"claimName": pvc.claim_name}}
        if pvc.sub_path:
            artifacts_mount["subPath"] = pvc.sub_path
    volumes: list[dict[str, Any]] = [
        {
            "name": "config",
            "configMap": {
                "name": names.config_name(job, run),
                "items": [{"key": names.CONFIG_FILE, "path": names.CONFIG_FILE}],
            },
        },
        {
            "name": "progress-token",
            "projected": {
                "sources": [
                    {
                        "serviceAccountToken": {
                            "audience": names.TOKEN_AUDIENCE,
                            "expirationSeconds": 3600,
                            "path": names.TOKEN_FILE,
                        }
                    }
                ]
            },
        },
        {"name": "tmp", "emptyDir": {}},
        {"name": "shm", "emptyDir": {"medium": "Memory"}},
        artifacts,
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "config", "mountPath": names.CONFIG_DIR, "readOnly": True},
        {"name": "progress-token", "mountPath": names.TOKEN_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "shm", "mountPath": "/dev/shm"},
        artifacts_mount,
    ]
    return volumes, mounts


def _scheduling(spec: OptimizationJobSpec, config: OperatorConfig) -> dict[str, Any]:
    defaults = config.trainer
    gpus = spec.resources.pod_gpus() > 0
    node_selector = {**defaults.node_selector, **(defaults.gpu_node_selector if gpus else {})}
    node_selector.update(spec.resources.node_selector)
    tolerations = [*defaults.tolerations, *(defaults.gpu_tolerations if gpus else ())]
    tolerations += [t.to_dict() for t in spec.resources.tolerations]
    scheduling: dict[str, Any] = {}
    if node_selector:
        scheduling["nodeSelector"] = node_selector
    if tolerations:
        scheduling["tolerations"] = tolerations
    if spec.resources.affinity:
        scheduling["affinity"] = dict(spec.resources.affinity)
    if spec.resources.priority_class_name:
        scheduling["priorityClassName"] = spec.resources.priority_class_name
    if defaults.runtime_class_name:
        scheduling["runtimeClassName"] = defaults.runtime_class_name
    if defaults.image_pull_secrets:
        scheduling["imagePullSecrets"] = [{"name": name} for name in defaults.image_pull_secrets]
    return scheduling


def build_pod_template(
    job: str, run: RunRef, spec: OptimizationJobSpec, config: OperatorConfig
) -> dict[str, Any]:
    """The trainer pods of one run: restricted security context, the progress token, the run config."""
    defaults = config.trainer
    preflight = run == PREFLIGHT
    volumes, mounts = _volumes(job, run, spec)
    container: dict[str, Any] = {
        "name": names.CONTAINER,
        "image": spec.resources.image or defaults.image,
        "command": ["/bin/sh", "-c", PREFLIGHT_SCRIPT if preflight else LAUNCH_SCRIPT],
        "env": _env(job, run, spec, config),
        "volumeMounts": mounts,
        "terminationMessagePath": names.TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
        },
    }
    if not preflight:
        container["ports"] = [
            {"name": "rdzv", "containerPort": names.RDZV_PORT},
            {"name": "metrics", "containerPort": names.METRICS_PORT},
        ]
    resources = _resources(spec, run)
    if resources:
        container["resources"] = resources
    pod_spec: dict[str, Any] = {"restartPolicy": "Never"}
    if has_peers(spec, run):
        pod_spec["subdomain"] = names.run_name(job, run)
    return {
        "metadata": {"labels": names.run_labels(job, run)},
        "spec": {
            **pod_spec,
            "serviceAccountName": spec.resources.service_account_name or defaults.service_account,
            # trainer pods talk to nobody but the progress endpoint: no API token at all
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": defaults.run_as_user,
                "runAsGroup": defaults.run_as_group,
                "fsGroup": defaults.fs_group,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
            "volumes": volumes,
            **_scheduling(spec, config),
        },
    }


def build_run_job(
    job: str,
    namespace: str,
    run: RunRef,
    spec: OptimizationJobSpec,
    config: OperatorConfig,
    owner: Mapping[str, Any],
    trial_timeout_seconds: float | None = None,
) -> dict[str, Any]:
    """The Indexed Job of one run: one pod per worker, pod k is torchrun's node rank k. The
    preflight's has one pod, is not retried (what it checks fails the same way again) and has
    a short deadline of its own."""
    labels = names.run_labels(job, run)
    queue = spec.resources.queue_name
    if queue:
        labels = {**labels, names.QUEUE_LABEL: queue}
    preflight = run == PREFLIGHT
    workers = 1 if preflight else spec.resources.workers
    if preflight:
        trial_timeout_seconds = PREFLIGHT_DEADLINE_SECONDS
    job_spec: dict[str, Any] = {
        "completionMode": "Indexed",
        "completions": workers,
        "parallelism": workers,
        "backoffLimit": 0 if preflight else spec.resources.backoff_limit,
        # a pod lost to its node (deleted, drained, preempted) is the cluster's failure, not the
        # run's: it is replaced without using up backoffLimit
        "podFailurePolicy": {
            "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]
        },
        "template": build_pod_template(job, run, spec, config),
    }
    if trial_timeout_seconds is not None:
        job_spec["activeDeadlineSeconds"] = max(1, int(trial_timeout_seconds))
    if queue:
        # Kueue admits a suspended Job as a whole, then unsuspends it
        job_spec["suspend"] = True
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(names.run_name(job, run), namespace, labels, owner),
        "spec": job_spec,
    }
