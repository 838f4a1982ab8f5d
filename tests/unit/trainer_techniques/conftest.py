"""Fixtures for the in-process technique checks."""

from __future__ import annotations

import pytest
from _tiny import make_blobs
from torch import Tensor


@pytest.fixture
def blobs() -> tuple[Tensor, Tensor]:
    return make_blobs()
