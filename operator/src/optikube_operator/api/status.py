"""`status` of an OptimizationJob: written by the operator only, bounded so it always fits in etcd.

The full trial history lives in the OptimizationTrial objects; the status keeps counts, the best trial,
a bounded Pareto front and the trials running now.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from optikube_operator.api.base import ApiModel, FreeValue, Timestamp
from optikube_operator.api.export import Runtime

JobPhase = Literal[
    "Pending",
    "Tuning",
    "Training",
    "Compressing",
    "Quantizing",
    "Evaluating",
    "Succeeded",
    "Failed",
    "Suspended",
]
TERMINAL_PHASES: frozenset[str] = frozenset({"Succeeded", "Failed"})
MAX_PARETO_POINTS = 32
MAX_RUNNING_TRIALS = 64
MAX_CONDITIONS = 16
MAX_MESSAGE = 1024
MAX_RUNTIMES = 8
MAX_METRICS = 16
MAX_QUANTIZATION = 64
MAX_RUNTIME_ERROR = 256
MAX_SKIP_REASON = 512
MAX_SKIPPED_STAGES = 8

MetricValues = dict[str, float]


def metric_values(description: str) -> Any:
    """A field of at most MAX_METRICS values by metric name, empty unless set."""
    return Field(default_factory=dict, max_length=MAX_METRICS, description=description)


class Condition(ApiModel):
    """A Kubernetes-style condition (Ready, Succeeded, Failed, Suspended...)."""

    type: str = Field(max_length=64, description="Condition type, e.g. Succeeded.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(
        "",
        max_length=128,
        description="CamelCase reason, e.g. GoalReached, MaxTrialsReached, SearchSpaceExhausted,"
        " DeadlineExceeded,"
        " TooManyFailures.",
    )
    message: str = Field("", max_length=MAX_MESSAGE, description="Human-readable details.")
    last_transition_time: Timestamp | None = Field(None, description="When the status last changed.")
    observed_generation: int | None = Field(
        None, ge=0, description="The spec generation this condition is about."
    )


class TrialCounts(ApiModel):
    """Trials by state."""

    pending: int = Field(0, ge=0, description="Created, not yet running.")
    running: int = Field(0, ge=0, description="Running now.")
    succeeded: int = Field(0, ge=0, description="Finished with final values.")
    pruned: int = Field(0, ge=0, description="Stopped early by the pruner.")
    failed: int = Field(0, ge=0, description="Failed.")
    timed_out: int = Field(0, ge=0, description="Ran longer than tuning.trialTimeout.")
    stopped: int = Field(0, ge=0, description="Stopped because the search ended first.")
    suspended: int = Field(0, ge=0, description="Stopped by spec.suspend; they run again on resume.")
    completed: int = Field(
        0, ge=0, description="Finished trials: succeeded, pruned, failed, timed out or stopped."
    )


class TrialSummary(ApiModel):
    """A trial's parameters and objective values."""

    number: int = Field(ge=0, description="Trial number, from 0.")
    params: dict[str, FreeValue] = Field(
        default_factory=dict, max_length=32, description="Parameter values by search-space key."
    )
    values: MetricValues = metric_values("Objective values by metric.")


class BestTrial(TrialSummary):
    """The best trial so far."""

    objective_value: float | None = Field(
        None, description="Value of the primary objective (the Best column)."
    )


class RunningTrial(ApiModel):
    """A trial that is running now, with its latest intermediate values."""

    number: int = Field(ge=0, description="Trial number.")
    name: str = Field(max_length=253, description="Name of its OptimizationTrial.")
    start_time: Timestamp | None = Field(None, description="When it started running.")
    epoch: int = Field(0, ge=0, description="Latest reported epoch.")
    values: MetricValues = metric_values("Latest intermediate values.")


class Progress(ApiModel):
    """How far the job is."""

    percent: float = Field(0.0, ge=0, le=100, description="Estimated completion, 0-100.")
    eta_seconds: int | None = Field(None, ge=0, description="Estimated seconds to completion.")


class LatencyMs(ApiModel):
    """Inference latency in milliseconds."""

    batch1_p50: float | None = Field(None, ge=0, description="Median at batch size 1.")
    batch1_p90: float | None = Field(None, ge=0, description="90th percentile at batch size 1.")
    batch32_p50: float | None = Field(None, ge=0, description="Median at batch size 32.")
    batch32_p90: float | None = Field(None, ge=0, description="90th percentile at batch size 32.")


class ModelMeasurement(ApiModel):
    """Measurements of one model (the results.json shape)."""

    metrics: MetricValues = metric_values("Task metrics on the test split.")
    parameters: int | None = Field(
        None, ge=0, description="Parameter count (non-zero for unstructured pruning)."
    )
    size_bytes: int | None = Field(None, ge=0, description="Size of the saved model.")
    macs: int | None = Field(None, ge=0, description="Multiply-accumulates per example.")
    latency_ms: LatencyMs | None = Field(None, description="Inference latency.")


class RuntimeMeasurement(ApiModel):
    """The optimized model and the baseline measured the same way in one runtime."""

    runtime: Runtime = Field(description="eager, compiled or onnx.")
    quantization: str | None = Field(
        None,
        max_length=MAX_QUANTIZATION,
        description="What this runtime ran, e.g. onnxruntime int8 static QDQ.",
    )
    error: str | None = Field(
        None,
        max_length=MAX_RUNTIME_ERROR,
        description="Why this runtime could not run the model, if it could not.",
    )
    optimized: LatencyMs | None = Field(None, description="Latency of the optimized model here.")
    baseline: LatencyMs | None = Field(None, description="Latency of the baseline here.")
    accuracy: float | None = Field(
        None, ge=0, le=1, description="Test accuracy of the optimized model in this runtime."
    )
    within_budget: bool | None = Field(
        None, description="Whether it stays within compression.maxAccuracyDrop (validation split)."
    )
    shipped: bool | None = Field(None, description="true for the one the pipeline exported.")


class SkippedStage(ApiModel):
    """A compression or quantization stage the pipeline skipped: the model before it went on."""

    name: str = Field(max_length=64, description="The stage: distillation, pruning, lowRank, ...")
    check: Literal["accuracyBudget", "latency"] = Field(
        description="What skipped it: accuracyBudget (compression.maxAccuracyDrop) or latency (it"
        " made the shipped runtime slower, compression.skipSlowerStages)."
    )
    reason: str | None = Field(None, max_length=MAX_SKIP_REASON, description="The numbers behind it.")


class Results(ApiModel):
    """Baseline (trained, uncompressed) vs optimized model."""

    baseline: ModelMeasurement | None = Field(None, description="The trained model before compression.")
    optimized: ModelMeasurement | None = Field(None, description="The final optimized model.")
    size_ratio: float | None = Field(
        None, ge=0, description="optimized / baseline size on disk (Size ratio column)."
    )
    speedup: float | None = Field(
        None, ge=0, description="baseline / optimized batch-1 latency (Speedup column)."
    )
    speedup_vs_onnx_runtime: float | None = Field(
        None,
        ge=0,
        description="The baseline exported to ONNX Runtime as it is (fp32) / optimized batch-1"
        " latency: what the pipeline adds to exporting alone.",
    )
    runtime: Runtime | None = Field(None, description="The runtime the shipped model is exported for.")
    runtimes: list[RuntimeMeasurement] = Field(
        default_factory=list,
        max_length=MAX_RUNTIMES,
        description="Every runtime tried, with the optimized and baseline latency in each.",
    )
    accuracy_drop: float | None = Field(
        None, description="Points of the budget metric lost on the validation split (negative: gained)."
    )
    skipped_stages: list[SkippedStage] = Field(
        default_factory=list,
        max_length=MAX_SKIPPED_STAGES,
        description="The stages the pipeline skipped and why.",
    )


class ArtifactsStatus(ApiModel):
    """Where the outputs are."""

    location: str | None = Field(
        None, max_length=1024, description="Root folder or URI of this job's outputs."
    )
    model: str | None = Field(None, max_length=1024, description="The optimized model.")
    results: str | None = Field(None, max_length=1024, description="results.json.")
    report: str | None = Field(None, max_length=1024, description="The HTML report.")


PipelinePhase = Literal["NotStarted", "Pending", "Running", "Succeeded", "Failed", "Suspended"]
MAX_STAGES = 32


class StageRecord(ApiModel):
    """A pipeline stage as its progress messages told it."""

    name: str = Field(max_length=64, description="Stage name: train, distillation, pruning, ...")
    status: Literal["started", "completed", "retried", "skipped"] = Field(description="What happened.")
    duration_seconds: float | None = Field(None, ge=0, description="How long it took (completed stages).")


class PipelineStatus(ApiModel):
    """The final pipeline run: train with the chosen parameters, compress, quantize, evaluate, export."""

    phase: PipelinePhase = Field(
        "NotStarted", description="NotStarted, Pending, Running, Succeeded, Failed or Suspended."
    )
    trial_number: int | None = Field(None, ge=0, description="The trial whose parameters were chosen.")
    params: dict[str, FreeValue] = Field(
        default_factory=dict, max_length=32, description="The chosen parameter values."
    )
    search_ended: str | None = Field(
        None, max_length=64, description="Why the search ended, e.g. MaxTrialsReached."
    )
    stages: list[StageRecord] = Field(
        default_factory=list,
        max_length=MAX_STAGES,
        description="Each stage as its progress told it, oldest first.",
    )
    attempts: int = Field(0, ge=0, description="How many times the pipeline run was launched.")
    final_values: MetricValues = metric_values("The optimized model's objective values.")
    start_time: Timestamp | None = Field(None, description="When it started.")
    completion_time: Timestamp | None = Field(None, description="When it ended.")
    message: str | None = Field(None, max_length=MAX_MESSAGE, description="Why it failed.")


class PreflightStatus(ApiModel):
    """The preflight: the job's data loaded and its models built once, before the first trial (by
    optikube run's preflight process, or the operator's `<job>-preflight` Job). Recorded before it
    starts and never run twice; a failure fails the job with reason PreflightFailed, no trial run."""

    phase: Literal["Running", "Passed", "Failed"] = Field(description="Running, Passed or Failed.")
    message: str | None = Field(
        None, max_length=MAX_MESSAGE, description="Why it failed: `<spec field>: <problem>`."
    )
    start_time: Timestamp | None = Field(None, description="When it started.")
    completion_time: Timestamp | None = Field(None, description="When it ended.")


class OptimizationJobStatus(ApiModel):
    """Observed state of an OptimizationJob."""

    observed_generation: int | None = Field(None, ge=0, description="The spec generation last acted on.")
    phase: JobPhase = Field("Pending", description="Lifecycle phase.")
    stage: str | None = Field(
        None, max_length=64, description="The pipeline stage running now (Stage column)."
    )
    message: str | None = Field(
        None, max_length=MAX_MESSAGE, description="Human-readable summary of the state."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=MAX_CONDITIONS,
        description="Conditions, one per type.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    trial_counts: TrialCounts = Field(default_factory=TrialCounts, description="Trials by state.")
    best_trial: BestTrial | None = Field(None, description="The best trial so far.")
    pareto_front: list[TrialSummary] = Field(
        default_factory=list,
        max_length=MAX_PARETO_POINTS,
        description=f"Pareto-optimal trials (several objectives), at most {MAX_PARETO_POINTS}.",
    )
    running_trials: list[RunningTrial] = Field(
        default_factory=list, max_length=MAX_RUNNING_TRIALS, description="Trials running now."
    )
    preflight: PreflightStatus | None = Field(
        None,
        description="The preflight before the first trial, once started: the data loaded and the"
        " models built once (optikube run's preflight process, the operator's `<job>-preflight` Job);"
        " recorded before it starts and never run twice. A failure fails the job with reason"
        " PreflightFailed before any trial.",
    )
    pipeline: PipelineStatus | None = Field(None, description="The final pipeline run, once started.")
    progress: Progress | None = Field(None, description="Completion estimate.")
    results: Results | None = Field(None, description="Baseline vs optimized measurements.")
    artifacts: ArtifactsStatus | None = Field(None, description="Where the outputs are.")
    start_time: Timestamp | None = Field(None, description="When the job started.")
    completion_time: Timestamp | None = Field(None, description="When the job succeeded or failed.")
    accepted_spec: dict[str, FreeValue] | None = Field(
        None,
        max_length=16,
        description="The spec the job runs with. Later changes to suspend, tuning.maxTrials,"
        " tuning.parallelTrials, tuning.maxDuration and cleanup take effect; any other change is refused"
        " (condition SpecChangeRefused) and the job goes on with this spec.",
    )
