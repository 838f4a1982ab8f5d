"""Fixtures of the Kubernetes tier: one operator for the session, a fresh namespace per test (the
CRDs fixture, `crds`, is in tests/conftest.py).

Each operator of this tier watches its own namespace pattern (the session's `kube-*`; modules that
start operators of their own use another prefix), so that no two operators ever act on one job."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kube_harness import RunningOperator, Trainers, operator_running

from optikube_operator.envtest import ControlPlane

SESSION_PREFIX = "kube"


@pytest.fixture(scope="session")
def operator(crds: ControlPlane) -> Iterator[RunningOperator]:
    with operator_running(crds, namespaces=(f"{SESSION_PREFIX}-*",)) as running:
        yield running


@pytest.fixture
def namespace(crds: ControlPlane) -> str:
    return crds.create_namespace(f"{SESSION_PREFIX}-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def trainers(crds: ControlPlane, operator: RunningOperator, namespace: str) -> Trainers:
    return Trainers(crds, namespace, operator.report_url)
