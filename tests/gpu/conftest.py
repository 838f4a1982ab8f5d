"""The GPU tier: every test here needs a CUDA device and is marked `gpu` (`make test-gpu`); without
a device each is skipped with the reason, and `make test` deselects them (`-m "not gpu"`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_environment import missing_reason


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = missing_reason()
    here = Path(__file__).resolve().parent
    if reason is None:
        return
    for item in items:
        if Path(str(item.fspath)).resolve().is_relative_to(here):
            item.add_marker(pytest.mark.skip(reason=reason))
