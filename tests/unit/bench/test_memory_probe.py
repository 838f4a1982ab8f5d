"""bench/memory_probe: what it writes names each allocation's module by where it was installed,
never by a path of the machine it was measured on."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sysconfig
from pathlib import Path
from types import ModuleType

import pytest
from _bench import BENCH


@pytest.fixture(scope="module")
def probe() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_memory_probe", BENCH / "memory_probe" / "sitecustomize.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # without OPTIKUBE_MEMORY_PROBE it traces nothing
    return module


def test_stdlib_and_installed_packages_are_named_relative_to_their_roots(probe: ModuleType) -> None:
    assert probe._source(dataclasses.__file__) == "stdlib/dataclasses.py"
    assert probe._source(json.__file__) == "stdlib/json/__init__.py"
    assert probe._source(pytest.__file__).startswith("site-packages/")
    assert sysconfig.get_paths()["stdlib"] not in probe._source(dataclasses.__file__)


def test_the_working_directory_is_left_out_and_other_paths_are_kept(probe: ModuleType) -> None:
    inside = str(Path.cwd() / "operator" / "kube.py")
    assert probe._source(inside) == "./operator/kube.py"
    assert probe._source("<frozen importlib._bootstrap>") == "<frozen importlib._bootstrap>"
