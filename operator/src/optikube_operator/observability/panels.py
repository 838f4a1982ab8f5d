"""What the dashboard shows: every panel as data (title, kind, PromQL), with no Grafana types.

The dashboard builder turns these into Grafana JSON, the PNG preview queries them against a
Prometheus, and the chart tests check that each expression returns data from a real run. Series
carry the labels the chart's monitors give them: operator series keep their own `namespace` and
`job` (the ServiceMonitor honours them), trainer series get the pod's namespace and, through the
PodMonitor's `jobLabel`, `job` = the OptimizationJob.
"""

from __future__ import annotations

from dataclasses import dataclass

# The dashboard's template variables, as the expressions use them.
NAMESPACE = 'namespace=~"$namespace"'
JOB = 'job=~"$job"'
SELECTED = f"{NAMESPACE}, {JOB}"
RATE = "$__rate_interval"
# the legend of a trainer series: the job, the run (trial or pipeline) and the trial it comes from
TRAINER = "{{job}} {{run}} {{trial}}"


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    kind: str  # timeseries | stat | bargauge
    targets: tuple[Target, ...]
    unit: str = "short"
    description: str = ""
    width: int = 8  # of Grafana's 24 columns
    height: int = 8
    stacked: bool = False


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


def _quantile(q: float, histogram: str, *by: str) -> str:
    labels = ", ".join(("le", *by))
    return f"histogram_quantile({q}, sum by ({labels}) (rate({histogram}_bucket[{RATE}])))"


def _baseline_vs_optimized(measure: str, gauge: str, unit: str) -> Panel:
    """A bar for each job's baseline and optimized model (the gauges' `model` label)."""
    target = Target(gauge, "{{job}} {{model}}")
    return Panel(f"{measure}: baseline vs optimized", "bargauge", (target,), unit=unit)


JOBS = Row(
    "Jobs",
    (
        Panel(
            "Jobs by phase",
            "timeseries",
            (Target("sum by (phase) (optikube_jobs)", "{{phase}}"),),
            description="OptimizationJobs the operator knows, by status.phase.",
            stacked=True,
        ),
        Panel(
            "Trials by state",
            "timeseries",
            (Target(f"sum by (state) (optikube_trials{{{SELECTED}}})", "{{state}}"),),
            description="Trials of the selected jobs by state, over time.",
            stacked=True,
        ),
        Panel(
            "Running trials",
            "timeseries",
            (
                Target(
                    f"sum by (namespace, job) (optikube_running_trials{{{SELECTED}}})",
                    "{{namespace}}/{{job}}",
                ),
            ),
            description="Trials whose pods run now, per job.",
        ),
        Panel(
            "Best objective",
            "stat",
            (
                Target(
                    f"max by (namespace, job, metric) (optikube_job_best_objective_value{{{SELECTED}}})",
                    "{{job}} {{metric}}",
                ),
            ),
            description="Primary objective of the best trial so far, per job.",
        ),
        Panel(
            "Trial durations",
            "timeseries",
            (
                Target(_quantile(0.5, "optikube_trial_duration_seconds", "state"), "p50 {{state}}"),
                Target(_quantile(0.9, "optikube_trial_duration_seconds", "state"), "p90 {{state}}"),
            ),
            unit="s",
            description="Wall time of trials that finished in the interval, by how they ended.",
        ),
        Panel(
            "Trial startup",
            "timeseries",
            (Target(_quantile(0.9, "optikube_trial_startup_seconds"), "p90"),),
            unit="s",
            description="From a trial's creation to its pods running (scheduling, image pull, start).",
        ),
    ),
)

PIPELINE = Row(
    "Pipeline and results",
    (
        Panel(
            "Stage durations",
            "bargauge",
            (
                Target(
                    "sum by (stage) (optikube_stage_duration_seconds_sum)"
                    " / sum by (stage) (optikube_stage_duration_seconds_count)",
                    "{{stage}}",
                ),
            ),
            unit="s",
            description="Mean duration of each pipeline stage since the operator started.",
        ),
        _baseline_vs_optimized("Model size", f"optikube_model_size_bytes{{{SELECTED}}}", "bytes"),
        _baseline_vs_optimized(
            "Latency (batch 1, p50)", f'optikube_model_latency_seconds{{{SELECTED}, batch="1"}}', "s"
        ),
        _baseline_vs_optimized(
            "Test accuracy", f"optikube_model_accuracy_ratio{{{SELECTED}}}", "percentunit"
        ),
    ),
)

TRAINERS = Row(
    "Trainers",
    (
        Panel(
            "Training throughput",
            "timeseries",
            (Target(f"optikube_trainer_samples_per_second{{{SELECTED}}}", TRAINER),),
            unit="short",
            description="Samples per second over all ranks, last epoch (rank 0's /metrics).",
        ),
        Panel(
            "Loss",
            "timeseries",
            (
                Target(f"optikube_trainer_train_loss{{{SELECTED}}}", f"train {TRAINER}"),
                Target(f"optikube_trainer_validation_loss{{{SELECTED}}}", f"validation {TRAINER}"),
            ),
        ),
        Panel(
            "Validation accuracy",
            "timeseries",
            (Target(f"optikube_trainer_validation_accuracy_ratio{{{SELECTED}}}", TRAINER),),
            unit="percentunit",
        ),
    ),
)

OPERATOR = Row(
    "Operator",
    (
        Panel(
            "Reconciles and reconcile errors",
            "timeseries",
            (
                Target(f"sum(rate(optikube_reconciles_total[{RATE}]))", "reconciles"),
                Target(f"sum by (kind) (rate(optikube_reconcile_errors_total[{RATE}]))", "errors {{kind}}"),
            ),
            unit="ops",
        ),
        Panel(
            "Progress endpoint",
            "timeseries",
            (Target(f"sum by (outcome) (rate(optikube_progress_requests_total[{RATE}]))", "{{outcome}}"),),
            unit="reqps",
            description="Progress messages from trainer pods, by outcome (accepted, unauthenticated, ...).",
        ),
        Panel(
            "Apiserver requests",
            "timeseries",
            (
                Target(
                    f"sum by (verb, code) (rate(optikube_apiserver_requests_total[{RATE}]))",
                    "{{verb}} {{code}}",
                ),
            ),
            unit="reqps",
        ),
    ),
)

ROWS: tuple[Row, ...] = (JOBS, PIPELINE, TRAINERS, OPERATOR)


def panels() -> list[Panel]:
    return [panel for row in ROWS for panel in row.panels]


def for_prometheus(expr: str, namespace: str = ".*", job: str = ".*", rate_interval: str = "1m") -> str:
    """An expression as Grafana sends it to Prometheus: the variables replaced by their values."""
    return (
        expr.replace("$namespace", namespace).replace("$job", job).replace("$__rate_interval", rate_interval)
    )
