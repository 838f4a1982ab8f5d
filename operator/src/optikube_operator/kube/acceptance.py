"""Which spec a job runs with: its spec validated (an invalid one fails the job with reason
InvalidSpec, naming the field), checked against the spec the job was accepted with (a refused
change leaves the job on its accepted spec), and once, before anything runs, its Jobs checked by
the apiserver's own dry run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from optikube_operator.api import OptimizationJobSpec
from optikube_operator.api.status import OptimizationJobStatus
from optikube_operator.api.validation import FieldError, validate_manifest, validate_spec
from optikube_operator.core import JobSettings
from optikube_operator.kube.backend import KubernetesBackend
from optikube_operator.kube.client import ApiError
from optikube_operator.kube.records import JobRecords
from optikube_operator.kube.spec_changes import SpecDecision, accept_spec


@dataclass(frozen=True)
class AcceptedSpec:
    """What a generation of the spec runs with (cached on the job's records)."""

    generation: int | None
    spec: OptimizationJobSpec
    decision: SpecDecision
    settings: JobSettings


@dataclass(frozen=True)
class InvalidSpec:
    """The job's spec passed the CRD but not the typed model: the job failed, naming the field."""

    errors: tuple[FieldError, ...]

    @property
    def message(self) -> str:
        return "; ".join(str(error) for error in self.errors)


def accepted_spec(
    body: Mapping[str, Any], records: JobRecords, previous: OptimizationJobStatus | None
) -> AcceptedSpec | InvalidSpec:
    """The spec to run with, validated; cached per generation (validating costs more than the
    rest of a reconcile, and only a new generation can change it)."""
    generation = body["metadata"].get("generation")
    cached = records.accepted
    if cached is not None and cached.generation == generation:
        return cached
    errors = validate_manifest(body)
    if errors:
        return InvalidSpec(tuple(errors))
    current = OptimizationJobSpec.model_validate(body["spec"], by_alias=True, by_name=False).to_dict()
    decision = accept_spec(current, _accepted(previous))
    spec, problems = validate_spec(decision.spec)
    if spec is None:
        return InvalidSpec(tuple(problems))
    records.accepted = AcceptedSpec(generation, spec, decision, JobSettings.from_spec(spec, records.name))
    records.settings = records.accepted.settings
    return records.accepted


async def dry_run_refusal(
    backend: KubernetesBackend, body: Mapping[str, Any], spec: OptimizationJobSpec, settings: JobSettings
) -> InvalidSpec | None:
    """What the apiserver would refuse in the Jobs derived from the spec fails the job up front."""
    timeout = settings.trial_timeout.total_seconds() if settings.trial_timeout else None
    try:
        await backend.dry_run(body, spec, timeout)
    except ApiError as error:
        if error.status not in (400, 422):
            raise
        causes = error.details.get("causes") or []
        message = "; ".join(f"{c.get('field', '')}: {c.get('message', '')}" for c in causes) or error.message
        return InvalidSpec((FieldError("spec.resources", f"the apiserver refuses the trial Job: {message}"),))
    return None


def _accepted(previous: OptimizationJobStatus | None) -> dict[str, Any] | None:
    return (
        dict(previous.accepted_spec) if previous is not None and previous.accepted_spec is not None else None
    )
