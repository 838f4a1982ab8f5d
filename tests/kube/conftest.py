"""Fixtures of the Kubernetes tier: the CRDs installed once, one operator for the session, a fresh
namespace per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kube_harness import ROOT, RunningOperator, Trainers, operator_running

from optikube_operator.envtest import ControlPlane


@pytest.fixture(scope="session")
def crds(control_plane: ControlPlane) -> ControlPlane:
    control_plane.kubectl("apply", "-f", str(ROOT / "crds"))
    control_plane.kubectl(
        "wait",
        "--for=condition=Established",
        "crd/optimizationjobs.optikube.io",
        "crd/optimizationtrials.optikube.io",
    )
    return control_plane


@pytest.fixture(scope="session")
def operator(crds: ControlPlane) -> Iterator[RunningOperator]:
    with operator_running(crds) as running:
        yield running


@pytest.fixture
def namespace(crds: ControlPlane) -> str:
    return crds.create_namespace(f"kube-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def trainers(crds: ControlPlane, operator: RunningOperator, namespace: str) -> Trainers:
    return Trainers(crds, namespace, operator.report_url)
