"""The client's cluster backend: OptimizationJobs through the apiserver with the official
`kubernetes` client (imported only here: `import optikube` does not pay for it). The operator does
the work; this side creates, reads, watches, patches and deletes the job and reads its trials and
its pods' logs."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from optikube_operator.api.status import OptimizationJobStatus
from optikube_operator.api.trial import OptimizationTrialStatus
from optikube_operator.api.validation import lenient_status
from optikube_operator.client.errors import ClientError, ErrorReason, already_exists, not_found
from optikube_operator.client.records import JobSnapshot, TrialRecord
from optikube_operator.client.specs import Submission
from optikube_operator.kube import names

GROUP, VERSION = names.API_VERSION.split("/")
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
REQUEST_SECONDS = 30.0
RBAC_HINT = (
    "ask a cluster admin for a Role in that namespace granting get, list, watch, create, patch and"
    " delete on optimizationjobs.optikube.io, get, list and watch on optimizationtrials.optikube.io, and"
    " list on pods and get on pods/log (docs/client.md, Permissions); `kubectl auth can-i create"
    " optimizationjobs -n NAMESPACE` checks it"
)


def _in_a_pod() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and SERVICE_ACCOUNT_NAMESPACE.exists()


def trial_record(obj: Mapping[str, Any]) -> TrialRecord:
    spec = obj.get("spec") or {}
    raw = obj.get("status")
    try:
        status = OptimizationTrialStatus.model_validate(raw, by_alias=True, strict=False) if raw else None
    except ValidationError:
        status = None  # a status of another version: the trial still counts, without its values
    return TrialRecord.of(int(spec.get("number", 0)), spec.get("params") or {}, status)


class ClusterJobs:
    """Jobs in one namespace of one cluster."""

    def __init__(self, namespace: str | None = None, kubeconfig: str | Path | None = None) -> None:
        import urllib3
        from kubernetes import client, config

        configuration = client.Configuration()
        context_namespace: str | None = None
        try:
            if kubeconfig is None and _in_a_pod():
                config.load_incluster_config(client_configuration=configuration)
                context_namespace = SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
            else:
                path = str(kubeconfig) if kubeconfig is not None else None
                config.load_kube_config(config_file=path, client_configuration=configuration)
                _, active = config.list_kube_config_contexts(config_file=path)
                context_namespace = (active or {}).get("context", {}).get("namespace")
        except (config.ConfigException, OSError, ValueError, TypeError) as error:
            raise ClientError(
                ErrorReason.UNREACHABLE,
                f"no cluster to talk to: the Kubernetes configuration could not be loaded ({error})",
                "pass kubeconfig=PATH (optikube: --kubeconfig), set KUBECONFIG, or run inside a pod"
                " (in-cluster config); `kubectl cluster-info` reads the same configuration",
            ) from None
        # One quick retry of a refused connection, not urllib3's three with back-off; a busy
        # apiserver's 429 (or 503 while it starts) says when to come back, and it processed nothing.
        configuration.retries = urllib3.Retry(
            total=4,
            connect=1,
            read=0,
            redirect=0,
            status=3,
            status_forcelist=(429, 503),
            allowed_methods=None,
            backoff_factor=0.5,
            respect_retry_after_header=True,
        )
        self.server = str(configuration.host)
        self.namespace = namespace or context_namespace or "default"
        self.api_client = client.ApiClient(configuration)
        self.custom = client.CustomObjectsApi(self.api_client)
        self.core = client.CoreV1Api(self.api_client)

    @property
    def where(self) -> str:
        return f"namespace {self.namespace} of {self.server}"

    # --- errors -------------------------------------------------------------------------------

    def failure(self, error: BaseException, action: str, name: str | None = None) -> ClientError:
        """The ClientError of a failed request: what the apiserver said, and what to do."""
        import urllib3
        from kubernetes.client import ApiException

        if isinstance(error, ClientError):
            return error
        if isinstance(error, ApiException):
            return self._refused(int(error.status or 0), _status_body(error.body), action, name)
        if isinstance(error, urllib3.exceptions.MaxRetryError) and isinstance(
            error.reason, urllib3.exceptions.ResponseError
        ):
            return ClientError(
                ErrorReason.UNREACHABLE,
                f"the apiserver at {self.server} kept answering that it is busy ({error.reason})",
                "try again in a moment; `kubectl get --raw /readyz` shows whether it is ready",
            )
        if isinstance(error, urllib3.exceptions.HTTPError | OSError):
            return ClientError(
                ErrorReason.UNREACHABLE,
                f"no Kubernetes API server answered at {self.server} ({type(error).__name__}: {error})",
                "check that the cluster is up and that the kubeconfig names it (`kubectl cluster-info`);"
                " pass kubeconfig=PATH or set KUBECONFIG for another one",
            )
        raise error

    def _refused(self, code: int, body: Mapping[str, Any], action: str, name: str | None) -> ClientError:
        message = str(body.get("message") or body.get("reason") or code)
        where = f"namespace {self.namespace}"
        if code == 401:
            return ClientError(
                ErrorReason.FORBIDDEN,
                f"the cluster at {self.server} did not accept the kubeconfig's credentials: {message}",
                "log in again or renew the token in the kubeconfig (`kubectl get ns` fails the same way)",
            )
        if code == 403:
            return ClientError(
                ErrorReason.FORBIDDEN, f"not allowed to {action} in {where}: {message}", RBAC_HINT
            )
        if code == 404:
            details = body.get("details") or {}
            if name is not None and details.get("name") == name:
                return not_found(name, where, f"`optikube get -n {self.namespace}`")
            return ClientError(
                ErrorReason.NOT_FOUND,
                f"the cluster at {self.server} has no OptimizationJob API: {message}",
                "install optikube there first: `helm install optikube charts/optikube -n optikube-system"
                " --create-namespace` (or `kubectl apply -f crds/` for the CRDs alone)",
            )
        if code == 409 and name is not None:
            return already_exists(name, where, f"`optikube delete {name} -n {self.namespace}`")
        if code == 422:
            return ClientError(
                ErrorReason.INVALID_SPEC,
                f"the apiserver refused job {name}: {message}",
                "fix the field it names (`optikube validate FILE` checks the same rules offline)",
            )
        return ClientError(
            ErrorReason.UNREACHABLE,
            f"the apiserver at {self.server} answered {code} to {action}: {message}",
            "try again in a moment; if it persists, check the apiserver (`kubectl get --raw /readyz`)",
        )

    def call(
        self, action: str, name: str | None, request: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any:
        kwargs.setdefault("_request_timeout", REQUEST_SECONDS)
        try:
            return request(*args, **kwargs)
        except Exception as error:
            raise self.failure(error, action, name) from None

    # --- reading ------------------------------------------------------------------------------

    def list_objects(self, plural: str, action: str, name: str | None = None, **selectors: str) -> Any:
        return self.call(
            action,
            name,
            self.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            plural,
            **selectors,
        )

    def snapshot_of(self, job: Mapping[str, Any], trials: Iterable[Mapping[str, Any]]) -> JobSnapshot:
        status = lenient_status(job.get("status")) or OptimizationJobStatus()
        records = sorted(
            (trial_record(t) for t in trials if (t.get("spec") or {}).get("stage", "trial") == "trial"),
            key=lambda trial: trial.number,
        )
        return JobSnapshot(
            name=job["metadata"]["name"],
            where=self.where,
            status=status,
            trials=tuple(records),
            spec=dict(job.get("spec") or {}),
        )

    def trial_objects(self, name: str) -> list[dict[str, Any]]:
        listed = self.list_objects(
            names.TRIALS, "list optimizationtrials", label_selector=f"{names.JOB_LABEL}={name}"
        )
        return list(listed.get("items") or [])

    def snapshot(self, name: str) -> JobSnapshot:
        job = self.call(
            "get optimizationjobs",
            name,
            self.custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            names.JOBS,
            name,
        )
        return self.snapshot_of(job, self.trial_objects(name))

    def snapshots(self) -> list[JobSnapshot]:
        jobs = self.list_objects(names.JOBS, "list optimizationjobs").get("items") or []
        trials = self.list_objects(names.TRIALS, "list optimizationtrials").get("items") or []
        by_job: dict[str, list[dict[str, Any]]] = {}
        for trial in trials:
            by_job.setdefault(
                (trial.get("metadata", {}).get("labels") or {}).get(names.JOB_LABEL, ""), []
            ).append(trial)
        ordered = sorted(jobs, key=lambda job: job["metadata"]["name"])
        return [self.snapshot_of(job, by_job.get(job["metadata"]["name"], [])) for job in ordered]

    def watch(self, name: str, timeout: float | None) -> Iterator[JobSnapshot]:
        from optikube_operator.client.cluster_watch import watch_job

        return watch_job(self, name, timeout)

    def results_document(self, name: str) -> Mapping[str, Any] | None:
        return None  # results.json is in the job's volume (status.artifacts.results says where)

    # --- logs ---------------------------------------------------------------------------------

    def _pod(self, name: str, trial: int | None) -> str:
        run = names.PIPELINE if trial is None else names.trial_run(trial)
        labels = names.run_labels(name, run)
        selector = ",".join(f"{key}={value}" for key, value in labels.items())
        pods = self.call(
            "list pods", None, self.core.list_namespaced_pod, self.namespace, label_selector=selector
        ).items
        ranked = [
            pod
            for pod in pods
            if (pod.metadata.annotations or {}).get(names.COMPLETION_INDEX_ANNOTATION, "0") == "0"
        ]
        if not ranked:
            shown = "the final pipeline" if trial is None else f"trial {trial}"
            raise ClientError(
                ErrorReason.NOT_FOUND,
                f"{shown} of job {name} has no pod in namespace {self.namespace}: it has not started, or"
                " its pod was cleaned up (spec.cleanup.keepTrialPods keeps failed ones by default)",
                f"trials() shows what ran; `kubectl get pods -n {self.namespace} -l {names.JOB_LABEL}={name}`"
                " lists the pods that are left",
            )
        newest = max(ranked, key=lambda pod: pod.metadata.creation_timestamp)
        return str(newest.metadata.name)

    def _read_log(self, name: str, trial: int | None, **options: Any) -> Any:
        """The trainer container's log of the run's newest pod (`options`: the client's, e.g. follow)."""
        pod = self._pod(name, trial)
        read = self.core.read_namespaced_pod_log
        return self.call(
            "get pods/log", None, read, pod, self.namespace, container=names.CONTAINER, **options
        )

    def logs(self, name: str, trial: int | None) -> str:
        return str(self._read_log(name, trial))

    def follow_logs(self, name: str, trial: int | None) -> Iterator[str]:
        from kubernetes.watch.watch import iter_resp_lines

        response = self._read_log(name, trial, follow=True, _preload_content=False, _request_timeout=None)
        try:
            yield from iter_resp_lines(response)
        finally:
            response.release_conn()

    # --- changing -----------------------------------------------------------------------------

    def submit(self, submission: Submission) -> JobSnapshot:
        created = self.call(
            "create optimizationjobs",
            submission.name,
            self.custom.create_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            names.JOBS,
            submission.sent_manifest(self.namespace),
        )
        return self.snapshot_of(created, [])

    def _set_suspend(self, name: str, suspend: bool) -> None:
        self.call(
            "patch optimizationjobs",
            name,
            self.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            names.JOBS,
            name,
            {"spec": {"suspend": suspend}},
            _content_type="application/merge-patch+json",
        )

    def suspend(self, name: str) -> None:
        self._set_suspend(name, True)

    def resume(self, name: str) -> None:
        self._set_suspend(name, False)

    def delete(self, name: str, wait: bool) -> None:
        """Foreground deletion: the job goes once the garbage collector removed its trials, Jobs and
        pods, so `wait` waits for all of them (through a watch, like watch())."""
        self.call(
            "delete optimizationjobs",
            name,
            self.custom.delete_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            names.JOBS,
            name,
            propagation_policy="Foreground",
        )
        if wait:
            from optikube_operator.client.cluster_watch import wait_deleted

            wait_deleted(self, name)


def _status_body(body: Any) -> dict[str, Any]:
    try:
        parsed = json.loads(body) if body else {}
    except (TypeError, json.JSONDecodeError):
        return {"message": str(body)[:500]}
    return parsed if isinstance(parsed, dict) else {}
