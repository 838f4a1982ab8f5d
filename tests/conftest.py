"""Shared pytest configuration. Tier fixtures live next to the tests that need them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from optikube_testcluster import ControlPlane

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """One real control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok with
    2 CPU + 2 GPU fake nodes) on 127.0.0.1 for the whole session; stopped, no process left, at the end.

    Plus one process node, `process-0`, whose pods run as real local processes. It is tainted
    (PROCESS_NODE_TAINT), so only pods that select and tolerate it run there
    (`optikube_testcluster.processnode.testing.on_process_node`); it advertises no GPU, so
    the GPU nodes stay the kwok ones.

    Binaries come from OPTIKUBE_ASSETS or the project's build cache (`make controlplane`).
    """
    from optikube_testcluster import ControlPlane, ProcessNodeSpec

    with ControlPlane(process_nodes=[ProcessNodeSpec("process-0", taint=True)]) as plane:
        yield plane


@pytest.fixture(scope="session")
def crds(control_plane: ControlPlane) -> ControlPlane:
    """The control plane with the CRDs of crds/ applied (and Established)."""
    control_plane.install_crds(ROOT / "crds")
    return control_plane
