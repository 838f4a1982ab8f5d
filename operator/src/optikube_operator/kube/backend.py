"""KubernetesBackend: the core's actions carried out against the API.

Every write is idempotent: objects have deterministic names, so a create after a restart that finds
the object already there adopts it (AlreadyExists) instead of making a second one, and an attempt
is counted only when a run's Job was really created.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from optikube_operator.api import OptimizationJobSpec
from optikube_operator.api.runconfig import JobIdentity
from optikube_operator.api.trial import OptimizationTrialStatus
from optikube_operator.core import ObservedTrial, TrialState
from optikube_operator.core.records import trial_status
from optikube_operator.kube import names
from optikube_operator.kube.client import ApiError, KubeClient, resource_path
from optikube_operator.kube.config import OperatorConfig
from optikube_operator.kube.names import RunRef, trial_run
from optikube_operator.kube.records import JobRecords
from optikube_operator.kube.resources import (
    build_config_map,
    build_run_job,
    build_service,
    build_trial,
    has_peers,
    output_dir,
)
from optikube_operator.runconfig import render_run_config


def _path(kind: str, namespace: str, name: str | None = None, sub: str | None = None) -> str:
    api_version, plural = {
        "OptimizationJob": (names.API_VERSION, names.JOBS),
        "OptimizationTrial": (names.API_VERSION, names.TRIALS),
        "Job": ("batch/v1", "jobs"),
        "Service": ("v1", "services"),
        "ConfigMap": ("v1", "configmaps"),
        "Pod": ("v1", "pods"),
    }[kind]
    return resource_path(api_version, plural, namespace, name, sub)


class KubernetesBackend:
    def __init__(self, client: KubeClient, config: OperatorConfig) -> None:
        self.client = client
        self.config = config
        self._accounts: set[str] = set()

    async def ensure_trainer_account(self, namespace: str, spec: OptimizationJobSpec) -> None:
        """The default trainer ServiceAccount exists in every namespace jobs run in (once per
        operator run): it is bound to nothing and mounts no API token."""
        if spec.resources.service_account_name or namespace in self._accounts:
            return
        account = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": self.config.trainer.service_account,
                "namespace": namespace,
                "labels": {names.MANAGED_BY: names.MANAGER},
            },
            "automountServiceAccountToken": False,
        }
        await self._create_or_adopt(resource_path("v1", "serviceaccounts", namespace), account)
        self._accounts.add(namespace)

    # --- records --------------------------------------------------------------------------------

    async def load(self, records: JobRecords, status: Any) -> None:
        items = await self.client.list(
            _path("OptimizationTrial", records.namespace), names.selector(records.name)
        )
        records.load(items, status)

    async def write_trial(self, records: JobRecords, trial: ObservedTrial) -> None:
        """Write a trial's record to its OptimizationTrial status (the whole status, replaced)."""
        status = trial_status(trial).model_dump(mode="json", by_alias=True, exclude_none=True)
        await self.client.request(
            "PATCH",
            _path(
                "OptimizationTrial",
                records.namespace,
                names.run_name(records.name, trial_run(trial.number)),
                "status",
            ),
            body=[{"op": "add", "path": "/status", "value": status}],
            content_type="application/json-patch+json",
        )
        records.trial_written(trial)

    async def write_job_status(self, job: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        meta = job["metadata"]
        await self.client.request(
            "PATCH",
            _path("OptimizationJob", meta["namespace"], meta["name"], "status"),
            body=[{"op": "add", "path": "/status", "value": dict(status)}],
            content_type="application/json-patch+json",
        )

    async def create_trial(
        self,
        job: Mapping[str, Any],
        records: JobRecords,
        number: int,
        params: Mapping[str, Any],
        attrs: Mapping[str, Any],
    ) -> ObservedTrial:
        """Record trial ``number`` as Pending (a new OptimizationTrial, or a suspended one resumed)."""
        existing = records.trials.get(number)
        if existing is None:
            created = await self._create_or_adopt(
                _path("OptimizationTrial", records.namespace), build_trial(job, number, params)
            )
            record = ObservedTrial(number, dict(params), TrialState.PENDING, sampler_attrs=dict(attrs))
            if created and trial_status(record) == OptimizationTrialStatus():
                # A new OptimizationTrial without a status already reads as this record (Pending, no
                # attempt yet): the write would only cost the apiserver a request per trial.
                records.trial_written(record)
                return record
        else:
            record = replace(existing, state=TrialState.PENDING, message="", start_time=None, end_time=None)
        await self.write_trial(records, record)
        return record

    # --- runs -----------------------------------------------------------------------------------

    async def dry_run(self, job: Mapping[str, Any], spec: OptimizationJobSpec, timeout: float | None) -> None:
        """Ask the apiserver whether it would accept this job's trial Jobs (raises ApiError if not)."""
        meta = job["metadata"]
        body = build_run_job(meta["name"], meta["namespace"], trial_run(0), spec, self.config, job, timeout)
        await self.client.create(_path("Job", meta["namespace"]), body, dry_run=True)

    async def launch(
        self,
        job: Mapping[str, Any],
        spec_dict: Mapping[str, Any],
        spec: OptimizationJobSpec,
        run: RunRef,
        params: Mapping[str, Any],
        *,
        resume: bool,
        timeout: float | None,
    ) -> tuple[bool, dict[str, Any] | None]:
        """Create a run's ConfigMap, headless Service (not the preflight's) and Job. Returns whether
        the Job was created now (False: it already existed and is adopted) and the Job as the
        apiserver has it (None if it went again before it could be read)."""
        meta = job["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        out = output_dir(spec, name, run)
        config = render_run_config(
            job=JobIdentity(name=name, namespace=namespace, uid=meta["uid"]),
            spec=spec_dict,
            stage=run.kind.value,
            output_dir=out,
            trial_number=run.number,
            params=params,
            resume_from=out if resume else None,
        )
        config_map = build_config_map(name, namespace, run, config, job)
        service = build_service(name, namespace, run, job) if has_peers(spec, run) else None
        # the Job comes last (its pods mount the ConfigMap); the other two do not wait on each other
        await asyncio.gather(
            self._ensure_config_map(namespace, config_map),
            *([self._create_or_adopt(_path("Service", namespace), service)] if service is not None else []),
        )
        run_job = build_run_job(name, namespace, run, spec, self.config, job, timeout)
        try:
            return True, await self.client.create(_path("Job", namespace), run_job)
        except ApiError as error:
            if error.already_exists:
                return False, await self.client.get(_path("Job", namespace, run_job["metadata"]["name"]))
            raise

    async def _create_or_adopt(self, path: str, body: Mapping[str, Any]) -> bool:
        """Create the object; one already there under its deterministic name is adopted. Returns
        whether it was created now."""
        try:
            await self.client.create(path, body)
        except ApiError as error:
            if not error.already_exists:
                raise
            return False
        return True

    async def _ensure_config_map(self, namespace: str, config_map: Mapping[str, Any]) -> None:
        """The run config as it is now (a relaunch may carry a new one: resume, params)."""
        if not await self._create_or_adopt(_path("ConfigMap", namespace), config_map):
            path = _path("ConfigMap", namespace, config_map["metadata"]["name"])
            await self.client.merge_patch(path, {"data": config_map["data"]})

    async def delete_run(self, namespace: str, job: str, run: RunRef, spec: OptimizationJobSpec) -> None:
        """Delete a run's Job (its pods with it), Service and ConfigMap."""
        name = names.run_name(job, run)
        await self.client.delete(_path("Job", namespace, name), propagation="Background")
        if has_peers(spec, run):
            await self.client.delete(_path("Service", namespace, name))
        await self.client.delete(_path("ConfigMap", namespace, names.config_name(job, run)))

    async def delete_job(self, namespace: str, name: str) -> None:
        await self.client.delete(_path("OptimizationJob", namespace, name), propagation="Background")

    async def list_run_pods(self, namespace: str, job: str, run: RunRef) -> list[dict[str, Any]]:
        selector = ",".join(f"{key}={value}" for key, value in names.run_labels(job, run).items())
        return await self.client.list(_path("Pod", namespace), selector)

    async def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.client.get(_path("Pod", namespace, name))
