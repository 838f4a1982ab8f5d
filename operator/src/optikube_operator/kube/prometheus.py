"""The operator's Prometheus metrics (`/metrics`): `optikube_` prefix, units in names, bounded labels.

Per-job series (namespace, job) exist while the job does and are removed when it is deleted;
every other label has a fixed set of values. docs/observability.md lists each metric.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from optikube_operator.api.status import JobPhase
from optikube_operator.core import TrialState

PHASES: tuple[str, ...] = JobPhase.__args__  # type: ignore[attr-defined]
DURATION_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, float("inf"))
STARTUP_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, float("inf"))


def _job_gauge(registry: CollectorRegistry, name: str, documentation: str, *labels: str) -> Gauge:
    """A gauge of one job's series: labelled by its namespace and name, then ``labels``."""
    return Gauge(name, documentation, ["namespace", "job", *labels], registry=registry)


class OperatorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.jobs = Gauge("optikube_jobs", "OptimizationJobs by phase.", ["phase"], registry=r)
        self.trials = _job_gauge(r, "optikube_trials", "Trials of a job by state.", "state")
        self.running_trials = _job_gauge(r, "optikube_running_trials", "Trials running now, per job.")
        self.trial_duration = Histogram(
            "optikube_trial_duration_seconds",
            "Wall time of finished trials, by how they ended.",
            ["state"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.trial_startup = Histogram(
            "optikube_trial_startup_seconds",
            "Time from a trial's creation to its pods running.",
            buckets=STARTUP_BUCKETS,
            registry=r,
        )
        self.best_objective = _job_gauge(
            r, "optikube_job_best_objective_value", "Primary objective of the best trial so far.", "metric"
        )
        self.stage_duration = Histogram(
            "optikube_stage_duration_seconds",
            "Duration of pipeline stages.",
            ["stage"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.model_size = _job_gauge(r, "optikube_model_size_bytes", "Saved model size.", "model")
        self.model_latency = _job_gauge(
            r, "optikube_model_latency_seconds", "Median inference latency.", "model", "batch"
        )
        self.model_accuracy = _job_gauge(r, "optikube_model_accuracy_ratio", "Test-split accuracy.", "model")
        self.reconcile_errors = Counter(
            "optikube_reconcile_errors_total",
            "Reconciles that failed, by kind of error.",
            ["kind"],
            registry=r,
        )
        self.reconciles = Counter("optikube_reconciles_total", "Reconciles done.", registry=r)
        self.progress_requests = Counter(
            "optikube_progress_requests_total",
            "Progress endpoint requests by outcome.",
            ["outcome"],
            registry=r,
        )
        self.api_requests = Counter(
            "optikube_apiserver_requests_total",
            "Requests the operator sent to the apiserver.",
            ["verb", "resource", "code"],
            registry=r,
        )
        # the per-job series set, so that a deleted job's can be removed
        self._series: dict[tuple[str, str], set[tuple[Gauge, tuple[str, ...]]]] = {}
        for phase in PHASES:
            self.jobs.labels(phase=phase)
        # exported at 0 from the start, so that a rate of errors is 0 rather than no data
        self.reconcile_errors.labels(kind="background")
        for outcome in (
            "accepted",
            "unauthenticated",
            "forbidden",
            "invalid",
            "conflict",
            "tooLarge",
            "timeout",
            "unavailable",
        ):
            self.progress_requests.labels(outcome=outcome)

    def count_request(self, verb: str, resource: str, code: int) -> None:
        self.api_requests.labels(verb=verb, resource=resource, code=str(code)).inc()

    def publish_phases(self, phases: Mapping[str, int]) -> None:
        for phase in PHASES:
            self.jobs.labels(phase=phase).set(phases.get(phase, 0))

    def _set(self, gauge: Gauge, value: float, *labels: str) -> None:
        gauge.labels(*labels).set(value)
        self._series.setdefault((labels[0], labels[1]), set()).add((gauge, labels))

    def publish_job(
        self,
        namespace: str,
        job: str,
        counts: Mapping[TrialState, int],
        running: int,
        best: tuple[str, float] | None,
        results: Mapping[str, Any] | None,
    ) -> None:
        for state in TrialState:
            self._set(self.trials, counts.get(state, 0), namespace, job, state.value)
        self._set(self.running_trials, running, namespace, job)
        if best is not None:
            self._set(self.best_objective, best[1], namespace, job, best[0])
        for model in ("baseline", "optimized"):
            block = (results or {}).get(model)
            if not isinstance(block, Mapping):
                continue
            if block.get("sizeBytes") is not None:
                self._set(self.model_size, block["sizeBytes"], namespace, job, model)
            accuracy = (block.get("metrics") or {}).get("accuracy")
            if accuracy is not None:
                self._set(self.model_accuracy, accuracy, namespace, job, model)
            latency = block.get("latencyMs") or {}
            for batch, key in (("1", "batch1P50"), ("32", "batch32P50")):
                if latency.get(key) is not None:
                    self._set(self.model_latency, latency[key] / 1000.0, namespace, job, model, batch)

    def forget_job(self, namespace: str, job: str) -> None:
        """Drop every series of a deleted job, so label sets stay bounded by the jobs that exist."""
        for gauge, labels in self._series.pop((namespace, job), set()):
            gauge.remove(*labels)

    async def serve(self, host: str, port: int) -> web.AppRunner:
        async def metrics(_: web.Request) -> web.Response:
            return web.Response(
                body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
            )

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        return runner
