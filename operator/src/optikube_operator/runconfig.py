"""The run config a trainer process reads (Contract 2 of docs/architecture.md).

One JSON document per run: the job's spec with defaults filled in and the trial's parameter
values applied at their dotted paths, validated like any spec, so a sampled value that breaks a
rule fails here, naming the field, instead of inside a trainer pod.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from optikube_operator.api import API_VERSION, OptimizationJob, apply_params, load_job

Stage = Literal["trial", "pipeline"]


@dataclass(frozen=True)
class JobIdentity:
    name: str
    namespace: str = "default"
    uid: str = ""

    @classmethod
    def of(cls, job: OptimizationJob, uid: str = "") -> JobIdentity:
        return cls(
            name=job.metadata.name or "optikube", namespace=job.metadata.namespace or "default", uid=uid
        )


def resolved_spec(spec: Mapping[str, Any], params: Mapping[str, Any], job_name: str) -> dict[str, Any]:
    """The spec with ``params`` applied, validated, defaults filled in (raises SpecError)."""
    applied = apply_params(dict(spec), dict(params))
    manifest = {
        "apiVersion": API_VERSION,
        "kind": "OptimizationJob",
        "metadata": {"name": job_name},
        "spec": applied,
    }
    return load_job(manifest).spec.to_dict()


def render_run_config(
    *,
    job: JobIdentity,
    spec: Mapping[str, Any],
    stage: Stage,
    output_dir: str,
    trial_number: int | None = None,
    params: Mapping[str, Any] | None = None,
    resume_from: str | None = None,
) -> dict[str, Any]:
    if (stage == "trial") != (trial_number is not None):
        raise ValueError("a trial run config needs a trial number, and a pipeline run config has none")
    chosen = dict(params or {})
    return {
        "apiVersion": API_VERSION,
        "kind": "RunConfig",
        "stage": stage,
        "job": {"name": job.name, "namespace": job.namespace, "uid": job.uid},
        "trial": None if trial_number is None else {"number": trial_number, "params": chosen},
        "spec": resolved_spec(spec, chosen, job.name),
        "outputDir": output_dir,
        "resumeFrom": resume_from,
    }
