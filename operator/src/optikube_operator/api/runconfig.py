"""The run config (Contract 2): the one JSON document a trainer run reads.

The operator (or the local CLI) renders it with `optikube_operator.runconfig`; the trainer parses
it with `load_run_config`. Both use this model, and `spec` is the job's own OptimizationJobSpec with
the trial's parameter values applied, so there is exactly one definition of every field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from optikube_operator.api.base import ApiModel, FreeValue, Rule
from optikube_operator.api.formats import DNS_LABEL_PATTERN
from optikube_operator.api.job import OptimizationJob, OptimizationJobSpec
from optikube_operator.api.validation import FieldError, model_errors, rule_errors

Stage = Literal["preflight", "trial", "pipeline"]
# the preflight's exit code when the spec or its data cannot run; it has then written
# `<spec field>: <problem>` (its outcome file, stderr, the termination message)
PREFLIGHT_EXIT_REFUSED = 2
# the preflight's outcome, in its run's output directory: {"ok": true, "findings": PreflightFindings}
# or {"ok": false, "field": <spec field>, "message": <problem>}
PREFLIGHT_OUTCOME_FILE = "preflight.json"


class PreflightFindings(ApiModel):
    """What a preflight that passed found, as its outcome file and the operator's messages say it."""

    samples: int = Field(ge=0, description="Examples in the data set.")
    classes: int = Field(ge=0, description="Target classes in the data set.")
    input_shape: tuple[int, ...] = Field(description="The shape of one example as the model takes it.")
    parameters: int = Field(ge=0, description="Parameters of the model.")
    student_parameters: int | None = Field(None, ge=0, description="Parameters of the distillation student.")
    seconds: float = Field(ge=0, description="How long the preflight took.")


class JobIdentity(ApiModel):
    """Which OptimizationJob a run belongs to."""

    name: str = Field(pattern=DNS_LABEL_PATTERN, max_length=63, description="Name of the OptimizationJob.")
    namespace: str = Field("default", max_length=63, description="Its namespace.")
    uid: str = Field("", max_length=64, description="Its UID (empty in local mode).")

    @classmethod
    def of(cls, job: OptimizationJob, uid: str = "") -> JobIdentity:
        return cls(
            name=job.metadata.name or "optikube", namespace=job.metadata.namespace or "default", uid=uid
        )


class TrialAssignment(ApiModel):
    """The trial a run is, and the values sampled for it."""

    number: int = Field(ge=0, description="Trial number.")
    params: dict[str, FreeValue] = Field(default_factory=dict, description="Sampled values by search key.")


class RunConfig(ApiModel):
    """One trainer run: a tuning trial or the final pipeline."""

    api_version: Literal["optikube.io/v1alpha1"] = Field("optikube.io/v1alpha1", description="API version.")
    kind: Literal["RunConfig"] = Field("RunConfig", description="RunConfig.")
    stage: Stage = Field(
        description="preflight: load the data and build the models once, before any trial; trial: train"
        " and score one set of parameters; pipeline: the final run."
    )
    job: JobIdentity = Field(description="The OptimizationJob.")
    trial: TrialAssignment | None = Field(None, description="The trial (stage trial only).")
    spec: OptimizationJobSpec = Field(description="The job's spec with the trial's values applied.")
    output_dir: str = Field(min_length=1, description="Where the run writes checkpoints and results.")
    resume_from: str | None = Field(None, description="A previous attempt's output to resume from.")

    RULES = (
        Rule(
            cel=None,
            message="trial is set exactly when stage is trial",
            check=lambda s: (s.stage == "trial") == (s.trial is not None),
            field="trial",
        ),
    )

    @property
    def trial_number(self) -> int | None:
        return self.trial.number if self.trial is not None else None

    def to_json(self) -> dict[str, Any]:
        """The JSON document, with the spec's unset optional blocks left out."""
        document = self.model_dump(mode="json", by_alias=True, exclude={"spec"})
        document["spec"] = self.spec.to_dict()
        return document


class RunConfigError(ValueError):
    """A run config that cannot be used; the message names every offending field."""

    def __init__(self, errors: list[FieldError], source: str = "run config") -> None:
        self.errors = errors
        super().__init__(f"invalid {source}:\n" + "\n".join(f"  {error}" for error in errors))


def parse_run_config(raw: Any) -> RunConfig:
    """A validated RunConfig (schema and every cross-field rule); raises RunConfigError."""
    parsed, errors = model_errors(RunConfig, raw)
    if parsed is None:
        raise RunConfigError(errors)
    errors = list(rule_errors(parsed))
    if errors:
        raise RunConfigError(errors)
    assert isinstance(parsed, RunConfig)
    return parsed


def load_run_config(path: str | Path) -> RunConfig:
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise RunConfigError([FieldError("", f"cannot read {path}: {error}")]) from None
    return parse_run_config(raw)
