"""Fixtures of the Kubernetes tier: one operator for the session, a fresh namespace per test (the
CRDs fixture, `crds`, is in tests/conftest.py).

Each operator of this tier watches its own namespace pattern (the session's `kube-*`; modules that
start operators of their own use another prefix), so that no two operators ever act on one job."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from kube_harness import RunningOperator, Trainers, operator_running

from optikube_testcluster import ControlPlane

SESSION_PREFIX = "kube"


@pytest.fixture(scope="session")
def operator(crds: ControlPlane) -> Iterator[RunningOperator]:
    with operator_running(crds, namespaces=(f"{SESSION_PREFIX}-*",)) as running:
        yield running


@pytest.fixture
def namespace(crds: ControlPlane) -> str:
    return crds.create_namespace(f"{SESSION_PREFIX}-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def trainers(crds: ControlPlane, operator: RunningOperator, namespace: str) -> Iterator[Trainers]:
    """Trainers whose preflight pods pass as soon as they run, whatever the test waits for."""
    trainers = Trainers(crds, namespace, operator.progress_url)
    stop = threading.Event()

    def finish_preflights() -> None:
        while not stop.wait(0.5):
            try:
                trainers.finish_running_preflights()
            except Exception:  # the control plane may be restarting: the next round tries again
                continue

    finisher = threading.Thread(target=finish_preflights, daemon=True)
    finisher.start()
    yield trainers
    stop.set()
    finisher.join(10)
