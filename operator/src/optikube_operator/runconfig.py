"""Rendering the run config a trainer process reads (Contract 2, `optikube_operator.api.runconfig`).

The job's spec with the trial's parameter values applied at their dotted paths, validated like any
spec, so a sampled value that breaks a rule fails here, naming the field, instead of inside a
trainer pod.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optikube_operator.api import API_VERSION, OptimizationJobSpec, apply_params, load_job
from optikube_operator.api.runconfig import JobIdentity, RunConfig, Stage, TrialAssignment

__all__ = ["JobIdentity", "Stage", "render_run_config", "resolved_spec"]


def resolved_spec(spec: Mapping[str, Any], params: Mapping[str, Any], job_name: str) -> OptimizationJobSpec:
    """The spec with ``params`` applied, validated, defaults filled in (raises SpecError). The
    search space itself was checked when the job's spec was accepted; trying its every value again
    for each trial cost the operator most of a trial launch's CPU."""
    applied = apply_params(dict(spec), dict(params))
    manifest = {
        "apiVersion": API_VERSION,
        "kind": "OptimizationJob",
        "metadata": {"name": job_name},
        "spec": applied,
    }
    return load_job(manifest, search_space=False).spec


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
    """The run config document; ``spec`` is the job's camelCase spec (raises SpecError, ValueError)."""
    if (stage == "trial") != (trial_number is not None):
        raise ValueError("a trial run config needs a trial number, and a pipeline run config has none")
    chosen = dict(params or {})
    config = RunConfig(
        stage=stage,
        job=job,
        trial=None if trial_number is None else TrialAssignment(number=trial_number, params=chosen),
        spec=resolved_spec(spec, chosen, job.name),
        output_dir=output_dir,
        resume_from=resume_from,
    )
    return config.to_json()
