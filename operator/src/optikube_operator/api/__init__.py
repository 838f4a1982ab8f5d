"""The optikube API (group optikube.io, version v1alpha1): typed models, validation, CRD generation.

`load_job` and `validate_manifest` are what the CLI and the operator use; `apply_params` sets a
trial's sampled values into a spec.
"""

from optikube_operator.api.base import duration_seconds
from optikube_operator.api.job import API_VERSION, GROUP, VERSION, OptimizationJob, OptimizationJobSpec
from optikube_operator.api.params import apply_params
from optikube_operator.api.status import OptimizationJobStatus
from optikube_operator.api.trial import OptimizationTrial, OptimizationTrialSpec, OptimizationTrialStatus
from optikube_operator.api.validation import FieldError, SpecError, load_job, validate_manifest

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "FieldError",
    "OptimizationJob",
    "OptimizationJobSpec",
    "OptimizationJobStatus",
    "OptimizationTrial",
    "OptimizationTrialSpec",
    "OptimizationTrialStatus",
    "SpecError",
    "apply_params",
    "duration_seconds",
    "load_job",
    "validate_manifest",
]
