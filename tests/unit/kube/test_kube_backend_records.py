"""KubernetesBackend's trial records: which writes a new, a sampled and a resumed trial cost."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, cast

from optikube_operator.core import ObservedTrial, TrialState
from optikube_operator.kube.backend import KubernetesBackend
from optikube_operator.kube.config import OperatorConfig
from optikube_operator.kube.records import JobRecords

JOB = {
    "apiVersion": "optikube.io/v1alpha1",
    "kind": "OptimizationJob",
    "metadata": {"name": "q", "namespace": "ns", "uid": "u"},
}


class RecordingClient:
    """The two calls a trial's record makes (create, status patch), recorded instead of sent."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []

    async def create(self, path: str, body: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        self.calls.append(("POST", path, body))
        return dict(body)

    async def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append((method, path, kwargs.get("body")))
        return {}


def _create(records: JobRecords, attrs: Mapping[str, Any]) -> tuple[ObservedTrial, RecordingClient]:
    client = RecordingClient()
    backend = KubernetesBackend(cast(Any, client), OperatorConfig())
    trial = asyncio.run(backend.create_trial(JOB, records, 0, {"training.learningRate": 0.01}, attrs))
    return trial, client


def test_a_new_trial_without_sampler_state_is_one_create_and_reads_pending() -> None:
    records = JobRecords("ns", "q", "u")
    trial, client = _create(records, {})
    assert [(method, path.rsplit("/", 1)[-1]) for method, path, _ in client.calls] == [
        ("POST", "optimizationtrials")
    ]
    assert trial.state is TrialState.PENDING and trial.attempts == 0
    assert records.trials[0] == trial


def test_sampler_state_is_written_before_the_trial_runs() -> None:
    """CMA-ES and NSGA-II keep state in a trial's attributes: the study rebuilt after a restart needs
    it, so it is on the OptimizationTrial before its Job exists."""
    records = JobRecords("ns", "q", "u")
    trial, client = _create(records, {"cma:generation": 0})
    assert [method for method, _, _ in client.calls] == ["POST", "PATCH"]
    _, path, patch = client.calls[1]
    assert path.endswith("/optimizationtrials/q-t0/status")
    assert patch[0]["value"]["samplerAttributes"] == {"cma:generation": 0}
    assert patch[0]["value"]["phase"] == "Pending" and records.trials[0] == trial


def test_a_resumed_trial_is_written_pending_again() -> None:
    records = JobRecords("ns", "q", "u")
    records.trials[0] = ObservedTrial(0, {}, TrialState.SUSPENDED, message="suspended", attempts=1)
    trial, client = _create(records, {})
    assert [method for method, _, _ in client.calls] == ["PATCH"]
    assert trial.state is TrialState.PENDING and trial.message == "" and trial.attempts == 1
