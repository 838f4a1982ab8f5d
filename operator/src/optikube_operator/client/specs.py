"""What `submit` takes (a path, YAML text, a dict or the API's model), validated with the rules of
`optikube validate` before anything is sent, and shrunk as `optikube run --smoke` does on request."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from optikube_operator.api import OptimizationJob, SpecError, load_job
from optikube_operator.api.manifests import Document, parse_documents, read_documents
from optikube_operator.api.smoke import SmokeSpec, smoke_spec
from optikube_operator.api.validation import FieldError, duplicate_errors
from optikube_operator.client.errors import ClientError, ErrorReason, invalid_spec

SpecSource = str | Path | dict[str, Any] | OptimizationJob


@dataclass(frozen=True)
class Submission:
    """A valid job to submit: `manifest` as the user wrote it, `job` as it runs (the smoke form
    when `smoked` is set)."""

    manifest: dict[str, Any]
    job: OptimizationJob
    smoked: SmokeSpec | None = None

    @property
    def name(self) -> str:
        return str(self.job.metadata.name)

    def sent_manifest(self, namespace: str) -> dict[str, Any]:
        """What goes to a cluster: the manifest, in `namespace`, with the smoke form's spec."""
        manifest = copy.deepcopy(self.manifest)
        manifest.setdefault("metadata", {})["namespace"] = namespace
        manifest.pop("status", None)
        if self.smoked is not None:
            manifest["spec"] = self.smoked.spec.to_dict()
        return manifest


def _looks_like_a_path(text: str) -> bool:
    """One line that is no YAML mapping: `examples/quickstart.yaml`, not `{...}` or `kind: ...`."""
    return bool(text.strip()) and "\n" not in text and ": " not in text and not text.lstrip().startswith("{")


def _job_document(documents: list[Document], source: str) -> dict[str, Any]:
    jobs = [d for d in documents if isinstance(d.value, dict) and d.value.get("kind") == "OptimizationJob"]
    if len(jobs) != 1:
        found = f"found {len(jobs)}" if jobs else "found none"
        raise invalid_spec([FieldError("kind", f"expected one OptimizationJob document, {found}")], source)
    duplicates = duplicate_errors(jobs[0])
    if duplicates:
        raise invalid_spec(duplicates, source)
    value: dict[str, Any] = jobs[0].value
    return value


def _manifest(spec: SpecSource) -> tuple[dict[str, Any], str | None]:
    if isinstance(spec, OptimizationJob):
        return spec.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"status"}), None
    if isinstance(spec, dict):
        return copy.deepcopy(spec), None
    if isinstance(spec, Path) or _looks_like_a_path(spec):
        path = Path(spec)
        try:
            documents = read_documents(path)
        except OSError as error:
            raise ClientError(
                ErrorReason.INVALID_SPEC,
                f"{path}: cannot read the job's file ({error.strerror or error})",
                "pass the path of an OptimizationJob YAML file, its YAML text, a dict or an OptimizationJob",
            ) from None
        except yaml.YAMLError as error:
            raise invalid_spec([FieldError("", f"not valid YAML: {error}")], str(path)) from None
        return _job_document(documents, str(path)), str(path)
    if isinstance(spec, str):
        try:
            documents = parse_documents(spec)
        except yaml.YAMLError as error:
            raise invalid_spec([FieldError("", f"not valid YAML: {error}")]) from None
        return _job_document(documents, "the YAML text"), None
    raise TypeError(
        f"submit takes a path, YAML text, a dict or an OptimizationJob, not {type(spec).__name__}"
    )


def prepare(spec: SpecSource, *, smoke: bool = False) -> Submission:
    """The validated submission of `spec`; raises ClientError (InvalidSpec) naming each field."""
    manifest, source = _manifest(spec)
    try:
        job = load_job(manifest)
        smoked = smoke_spec(job.spec) if smoke else None
    except SpecError as error:
        raise invalid_spec(error.errors, source) from None
    if smoked is not None:
        job = job.model_copy(update={"spec": smoked.spec})
    return Submission(manifest=manifest, job=job, smoked=smoked)
