"""bench/memory_probe: what it writes names each allocation's module by where it was installed,
never by a path of the machine it was measured on."""

from __future__ import annotations

import dataclasses
import json
import sysconfig
from pathlib import Path
from types import ModuleType

import pytest
from _bench import bench_module


@pytest.fixture(scope="module")
def probe() -> ModuleType:
    return bench_module("memory_probe/sitecustomize")  # without OPTIKUBE_MEMORY_PROBE it traces nothing


def test_stdlib_and_installed_packages_are_named_relative_to_their_roots(probe: ModuleType) -> None:
    assert probe._source(dataclasses.__file__) == "stdlib/dataclasses.py"
    assert probe._source(json.__file__) == "stdlib/json/__init__.py"
    assert probe._source(pytest.__file__).startswith("site-packages/")
    assert sysconfig.get_paths()["stdlib"] not in probe._source(dataclasses.__file__)


def test_the_working_directory_is_left_out_and_other_paths_are_kept(probe: ModuleType) -> None:
    inside = str(Path.cwd() / "operator" / "kube.py")
    assert probe._source(inside) == "./operator/kube.py"
    assert probe._source("<frozen importlib._bootstrap>") == "<frozen importlib._bootstrap>"
