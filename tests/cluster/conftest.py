"""Fixtures of the cluster tier: clients of the session's control plane and a fresh namespace per
test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from optikube_testcluster import ControlPlane


@pytest.fixture
def api(control_plane: ControlPlane) -> Iterator[Any]:
    with control_plane.api_client() as api_client:
        yield api_client


@pytest.fixture
def core(api: Any) -> Any:
    return client.CoreV1Api(api)


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> str:
    """A new namespace named after the test module (`process-node-network-1a2b3c4d`), so that what
    a failed test left in the cluster says where it came from."""
    module = request.module.__name__.removeprefix("test_").replace("_", "-")
    return control_plane.create_namespace(f"{module}-{uuid.uuid4().hex[:8]}")
