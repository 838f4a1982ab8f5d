"""Publishing a job's state after a pass: its status (one replace, only when it changed), the
Event that announces its end, and its Prometheus series."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from optikube_operator.api import OptimizationJobSpec
from optikube_operator.api.status import OptimizationJobStatus
from optikube_operator.core import JobSettings
from optikube_operator.core.summary import summarize
from optikube_operator.kube.announce import Announcer
from optikube_operator.kube.backend import KubernetesBackend
from optikube_operator.kube.prometheus import OperatorMetrics
from optikube_operator.kube.records import JobRecords
from optikube_operator.kube.resources import artifacts_location
from optikube_operator.kube.status import ConditionUpdate, Outcome, build_status


class StatusPublisher:
    def __init__(self, backend: KubernetesBackend, metrics: OperatorMetrics, announcer: Announcer) -> None:
        self.backend = backend
        self.metrics = metrics
        self.announce = announcer

    async def publish(
        self,
        body: Mapping[str, Any],
        records: JobRecords,
        settings: JobSettings | None,
        previous: OptimizationJobStatus | None,
        outcome: Outcome | None,
        conditions: list[ConditionUpdate],
        spec_dict: Mapping[str, Any] | None,
        spec: OptimizationJobSpec | None,
        now: datetime,
    ) -> None:
        """Write the status when it changed (and announce a finish), then the job's metrics."""
        observed = records.observed()
        summary = summarize(settings, observed) if settings is not None else None
        if outcome is not None:
            kind = "Succeeded" if outcome.succeeded else "Failed"
            conditions = [*conditions, ConditionUpdate(kind, "True", outcome.reason, outcome.message)]
        status = build_status(
            settings=settings,
            observed=observed,
            summary=summary,
            outcome=outcome,
            previous=previous,
            conditions=conditions,
            generation=body["metadata"].get("generation"),
            accepted_spec=spec_dict,
            artifacts_location=artifacts_location(spec, records.name) if spec is not None else None,
            job_name=records.name,
            now=now,
        )
        if not records.is_written(status):
            await self.backend.write_job_status(body, status)
            records.record_written(status)
            if outcome is not None:
                await self.announce.finished(body, outcome)
        if summary is not None and settings is not None:
            best = summary.best
            value = best.values.get(settings.primary.metric) if best is not None else None
            self.metrics.publish_job(
                records.namespace,
                records.name,
                summary.counts,
                len(summary.running),
                (settings.primary.metric, value) if value is not None else None,
                observed.pipeline.results,
            )
